"""GLM family: PyTorch's poisson_nll and scikit-learn's Poisson, Gamma and Tweedie deviances.

Element-wise, scalar float64 functions (``elementwise_kernels``, "blocks" style: they
call ``vmath`` exp/log). The three deviances share ONE kernels object (``PowerKernels``;
poisson is power 1, gamma power 2): the general element function ``tweedie_elem``, and
for each loss's default (powers 1, 2 and 1.5 on the mean) a small branch-free one whose
loop LLVM vectorizes; each set compiles on first use. Hyperparameters are runtime kernel
arguments, never compile-time constants.

Log link: ``log_input=True`` (PyTorch's name in PoissonNLLLoss) takes y_pred as
eta = log(mu), the raw score of a gradient-boosting model or a linear model with a log
link; the derivatives are then with respect to eta. Domains follow the hyperparameters
(``LossSpec.domains_for``): scikit-learn's per power, and any real eta with log_input.

Deviance of power p in terms of mu (scikit-learn's ``mean_tweedie_deviance``):
  p = 0: (y - mu)^2;  p = 1: 2 (y log(y/mu) - y + mu);  p = 2: 2 (log(mu/y) + y/mu - 1);
  else:  2 (max(y, 0)^(2-p) / ((1-p)(2-p)) - y mu^(1-p) / (1-p) + mu^(2-p) / (2-p)).
For every p: d/dmu = 2 mu^-p (mu - y), d2/dmu2 = 2 mu^(-p-1) (p y + (1-p) mu); with the log
link d/deta = 2 mu^(1-p) (mu - y), d2/deta2 = 2 mu^(1-p) ((2-p) mu + (p-1) y).
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import HyperparameterError
from ..hookspecs import hookimpl
from ..kernels import (ElementwiseKernels, Job, Kernels, Outcome, elementwise_kernels, njit,
                       vmath)
from ..spec import NONNEGATIVE, POSITIVE, Domain, Hyperparameter, Interval, LossSpec

FAMILY = "glm"
HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)

REAL = Domain(doc="any finite real")
COUNTS = Domain(NONNEGATIVE, doc="non-negative targets (counts, amounts)")
POSITIVE_TARGETS = Domain(POSITIVE, doc="strictly positive targets")
MEANS = Domain(POSITIVE, doc="predicted means mu > 0")
RATES = Domain(NONNEGATIVE, doc="predicted rates mu >= 0")
LOG_MEANS = Domain(doc="log of the predicted mean, eta = log mu (any finite real)")


# -- element functions --------------------------------------------------------------------

@njit(error_model="numpy")
def poisson_nll_elem(t, x, log_input, full, eps):
    """PyTorch's poisson_nll_loss: exp(x) - y x (log_input) or x - y log(x + eps), plus
    Stirling's y log y - y + log(2 pi y)/2 where y > 1 when ``full``.
    Returns (loss, d/dx, d2/dx2): exp(x) - y, exp(x); or 1 - y/(x+eps), y/(x+eps)^2."""
    y = np.float64(t)
    z = np.float64(x)
    if log_input:
        e = vmath.exp(z)
        loss = e - y * z
        grad = e - y
        hess = e
    else:
        a = z + eps
        loss = z - (y * vmath.log(a) if y != 0.0 else 0.0)
        q = y / a
        grad = 1.0 - q
        hess = q / a if y != 0.0 else 0.0
    if full and y > 1.0:
        ly = vmath.log(y)
        loss += y * ly - y + 0.5 * ly + HALF_LOG_2PI
    return loss, grad, hess


@njit(error_model="numpy")
def tweedie_elem(t, x, power, log_input):
    """Tweedie deviance of power p (module docstring), y_pred mu or eta = log mu.

    One branch per power on a loop-invariant argument (predicted perfectly), each with
    only the transcendentals its formula needs, written as scikit-learn writes it:
    p = 0 none (log link: exp); p = 1 one log (y log(y/mu)) and a division; p = 2
    log(mu/y) and divisions; p = 3 divisions; any other p mu^(1-p) = exp((1-p) log mu)
    and y^(2-p) = exp((2-p) log y) (p = 1.5 on the mean: ``sqrt_mean_elem``). With
    m1 = mu^(1-p), the derivatives are 2 m1 (mu - y) and 2 m1 ((2-p) mu + (p-1) y) in eta,
    2 mu^-p (mu - y) and 2 mu^-p (p y/mu + 1 - p) in mu, with mu^-p = 1, 1/mu, 1/mu^2
    exactly for p = 0, 1, 2. Returns (loss, derivative, second derivative) with respect
    to y_pred.
    """
    y = np.float64(t)
    z = np.float64(x)
    p = power
    mu = vmath.exp(z) if log_input else z
    if p == 0.0:
        r = y - mu
        loss = r * r
        m1 = mu
        mp = 1.0
    elif p == 1.0:
        ylog = 0.0
        if y > 0.0:
            ylog = y * (vmath.log(y) - z if log_input else vmath.log(y / mu))
        loss = 2.0 * (ylog - y + mu)
        m1 = 1.0
        mp = 1.0 / mu
    elif p == 2.0:
        loss = 2.0 * ((z - vmath.log(y) if log_input else vmath.log(mu / y)) + y / mu - 1.0)
        m1 = 1.0 / mu
        mp = 1.0 / (mu * mu)
    else:
        if p == 3.0:
            m1 = 1.0 / (mu * mu)
            yp = 1.0 / y if y > 0.0 else 0.0                             # max(y, 0)^(2-p)
        else:
            m1 = vmath.exp((1.0 - p) * (z if log_input else vmath.log(z)))
            yp = vmath.exp((2.0 - p) * vmath.log(y)) if y > 0.0 else 0.0
        loss = 2.0 * (yp / ((1.0 - p) * (2.0 - p)) - y * m1 / (1.0 - p)
                      + mu * m1 / (2.0 - p))
        mp = m1 / mu
    if log_input:
        grad = 2.0 * m1 * (mu - y)
        hess = 2.0 * m1 * ((2.0 - p) * mu + (p - 1.0) * y)
    else:
        grad = 2.0 * mp * (mu - y)
        hess = 2.0 * mp * ((p * y / mu if p != 0.0 else 0.0) + (1.0 - p))
    return loss, grad, hess


# Each power's default form (on the mean) also has its own element function: a loop
# over one branch-free formula is vectorized by LLVM (vmath's exp/log four lanes at a
# time), while the general function's runtime branches on the power and the link keep
# its loop scalar (poisson_deviance's value 15 -> 5 ns per element). They take the same
# arguments and give tweedie_elem's results; ``PowerKernels`` picks one per call, and
# each compiles on first use only.

@njit(error_model="numpy")
def poisson_mean_elem(t, x, power, log_input):
    """tweedie_elem for power 1 on the mean: 2 (y log(y/mu) - y + mu), y log(y/mu) = 0
    at y = 0 by a select (log of 1) rather than a branch."""
    y = np.float64(t)
    mu = np.float64(x)
    loss = 2.0 * (y * vmath.log(y / mu if y > 0.0 else 1.0) - y + mu)
    mp = 1.0 / mu
    return loss, 2.0 * mp * (mu - y), 2.0 * mp * (1.0 * y / mu + 0.0)


@njit(error_model="numpy")
def gamma_mean_elem(t, x, power, log_input):
    """tweedie_elem for power 2 on the mean: 2 (log(mu/y) + y/mu - 1)."""
    y = np.float64(t)
    mu = np.float64(x)
    loss = 2.0 * (vmath.log(mu / y) + y / mu - 1.0)
    mp = 1.0 / (mu * mu)
    return loss, 2.0 * mp * (mu - y), 2.0 * mp * (2.0 * y / mu - 1.0)


@njit(error_model="numpy")
def sqrt_mean_elem(t, x, power, log_input):
    """tweedie_elem for power 1.5 (the default) on the mean: square roots, no log."""
    y = np.float64(t)
    mu = np.float64(x)
    m1 = 1.0 / math.sqrt(mu)
    yp = math.sqrt(y) if y > 0.0 else 0.0
    loss = 2.0 * (yp / ((1.0 - 1.5) * (2.0 - 1.5)) - y * m1 / (1.0 - 1.5)
                  + mu * m1 / (2.0 - 1.5))
    mp = m1 / mu
    return loss, 2.0 * mp * (mu - y), 2.0 * mp * (1.5 * y / mu + (1.0 - 1.5))


class PowerKernels(Kernels):
    """The deviances' kernels: one element-wise kernel set per specialised (power, link)
    (``special``: {power: kernels} on the mean scale) and the general set for the rest,
    picked per call from the kernel arguments (power, log_input). Every set fills
    partials and checks what the general one checks."""

    fills_partials = True

    def __init__(self, general: ElementwiseKernels, special: dict):
        self.general, self.special = general, special
        self.layout = general.layout
        self.has_hessian = general.has_hessian
        self.checks = general.checks
        self.serial_below = general.serial_below

    def describe(self) -> str:
        return (f"{self.general.describe()}; on the mean, power "
                + ", ".join(f"{p:g}" for p in self.special) + ": their own kernels")

    def for_args(self, args: tuple) -> ElementwiseKernels:
        """The set that runs every job with these kernel arguments."""
        power, log_input = args
        return self.general if log_input else self.special.get(power, self.general)

    def run(self, job: Job) -> Outcome:
        return self.for_args(job.args).run(job)


# -- NumPy references ------------------------------------------------------------------------

def _f64(x):
    return np.asarray(x, dtype=np.float64)


def poisson_nll_reference(y_true, y_pred, log_input=True, full=False, eps=1e-8):
    y, x = _f64(y_true), _f64(y_pred)
    with np.errstate(divide="ignore", invalid="ignore"):
        loss = np.exp(x) - y * x if log_input else x - np.where(y != 0, y * np.log(x + eps), 0.0)
        if full:
            ly = np.log(np.where(y > 1, y, 1.0))
            loss = loss + np.where(y > 1, y * ly - y + 0.5 * np.log(2 * np.pi * y), 0.0)
    return loss


def poisson_nll_reference_hessian(y_true, y_pred, log_input=True, full=False, eps=1e-8):
    y, x = _f64(y_true), _f64(y_pred)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.exp(x) if log_input else np.where(y != 0, y / (x + eps) ** 2, 0.0)


def tweedie_reference(y_true, y_pred, power=1.5, log_input=False):
    """scikit-learn's per-sample Tweedie deviance (``_mean_tweedie_deviance``'s ``dev``)."""
    y, mu = _f64(y_true), _f64(y_pred)
    mu = np.exp(mu) if log_input else mu
    p = float(power)
    with np.errstate(divide="ignore", invalid="ignore"):
        if p == 0:
            return (y - mu) ** 2
        if p == 1:
            return 2 * (np.where(y > 0, y * np.log(np.where(y > 0, y, 1.0) / mu), 0.0) - y + mu)
        if p == 2:
            return 2 * (np.log(mu / y) + y / mu - 1)
        return 2 * (np.where(y > 0, y, 0.0) ** (2 - p) / ((1 - p) * (2 - p))
                    - y * mu ** (1 - p) / (1 - p) + mu ** (2 - p) / (2 - p))


def tweedie_reference_hessian(y_true, y_pred, power=1.5, log_input=False):
    y, x = _f64(y_true), _f64(y_pred)
    p = float(power)
    if log_input:
        mu = np.exp(x)
        return 2 * mu ** (1 - p) * ((2 - p) * mu + (p - 1) * y)
    if p == 0:
        return np.full(np.broadcast(y, x).shape, 2.0)
    return 2 * x ** (-p) * (p * y / x + (1 - p))


def _fixed_power(p):
    def reference(y_true, y_pred, log_input=False):
        return tweedie_reference(y_true, y_pred, p, log_input)

    def reference_hessian(y_true, y_pred, log_input=False):
        return tweedie_reference_hessian(y_true, y_pred, p, log_input)

    reference.__qualname__ = reference.__name__ = f"power_{p:g}_reference"
    reference_hessian.__qualname__ = reference_hessian.__name__ = f"power_{p:g}_reference_hessian"
    return reference, reference_hessian


poisson_deviance_reference, poisson_deviance_reference_hessian = _fixed_power(1.0)
gamma_deviance_reference, gamma_deviance_reference_hessian = _fixed_power(2.0)


# -- samplers (valid, moderate inputs for tests and benchmarks) -------------------------------

def _sampler(power: float, log_input: bool):
    """Targets of the power's distribution (Poisson counts with zeros, Gamma amounts,
    signed values for power <= 0) and means of a few units, or their logs."""
    def sampler(rng, n, **hyper):
        p = float(hyper.get("power", power))
        mu = rng.gamma(2.0, 1.0, n) + 0.1
        if p <= 0:
            y = rng.normal(1.0, 2.0, n)
        elif p < 2:
            y = rng.poisson(mu).astype(np.float64)
        else:
            y = rng.gamma(2.0, mu / 2.0) + 1e-3
        return y, (np.log(mu) if hyper.get("log_input", log_input) else mu)

    sampler.__qualname__ = sampler.__name__ = f"sampler_power_{power:g}"
    return sampler


# -- hyperparameters: kernel arguments and domains -------------------------------------------

def _tweedie_args(hp):
    p = float(hp.get("power", 1.0))
    if 0.0 < p < 1.0:
        raise HyperparameterError(f"power must be in (-inf, 0] or [1, inf), got {p!r}: no "
                                  "Tweedie distribution has 0 < power < 1 (loss "
                                  "'tweedie_deviance', as scikit-learn)")
    return (p, bool(hp["log_input"]))


def _tweedie_domains(hp, power=None):
    """scikit-learn's domains per power; eta = log mu is any real with log_input."""
    p = float(hp["power"]) if power is None else power
    y_true = REAL if p <= 0 else COUNTS if p < 2 else POSITIVE_TARGETS
    y_pred = LOG_MEANS if hp["log_input"] else (REAL if p == 0 else MEANS)
    return {"y_true": y_true, "y_pred": y_pred}


def _poisson_nll_domains(hp):
    return {"y_pred": LOG_MEANS if hp["log_input"] else RATES}


def _log_input(default: bool = False) -> Hyperparameter:
    return Hyperparameter(bool, default, None, "y_pred is the log of the mean, eta = log mu "
                          "(a log link; derivatives with respect to eta)")


# -- specs ------------------------------------------------------------------------------------

DEVIANCE_NOTES = ("scikit-learn's mean_{name}: reduction='mean' averages the per-sample "
                  "deviance. log_input=True takes y_pred = log(mu) (the raw score of a "
                  "gradient-boosting or GLM model with a log link) and differentiates with "
                  "respect to it: the form to hand to a booster. The value is computed with "
                  "scikit-learn's formula, so near y = mu it carries the same rounding (it "
                  "may be a few ulps below 0).")


def specs() -> list[LossSpec]:
    tweedie_kernels = PowerKernels(                                         # shared by three
        elementwise_kernels(tweedie_elem, style="blocks"),
        {1.0: elementwise_kernels(poisson_mean_elem, style="blocks"),
         2.0: elementwise_kernels(gamma_mean_elem, style="blocks"),
         1.5: elementwise_kernels(sqrt_mean_elem, style="blocks")})
    return [
        LossSpec(
            name="poisson_nll", aliases=("poisson_nll_loss",), family=FAMILY,
            task="regression", reference=poisson_nll_reference,
            reference_hessian=poisson_nll_reference_hessian,
            kernels=elementwise_kernels(poisson_nll_elem, style="blocks"),
            hyperparameters={
                "log_input": _log_input(True),
                "full": Hyperparameter(bool, False, None,
                                       "add Stirling's term y log y - y + log(2 pi y)/2 "
                                       "where y > 1"),
                "eps": Hyperparameter(float, 1e-8, NONNEGATIVE,
                                      "added to y_pred inside the log when log_input=False")},
            domains={"y_true": COUNTS, "y_pred": LOG_MEANS},
            domains_for=_poisson_nll_domains, sampler=_sampler(1.0, True),
            summary="Poisson negative log-likelihood (PyTorch's poisson_nll_loss): rates or "
                    "log-rates.",
            formula=r"\ell(y, x) = e^{x} - y\,x \ \text{(log\_input)},\qquad "
                    r"\ell(y, \mu) = \mu - y \log(\mu + \epsilon)",
            properties={"convex", "smooth"},
            notes="PyTorch's semantics and defaults: log_input=True (y_pred is log(rate)), "
                  "full=False, eps=1e-8 (only used when log_input=False, where y_pred >= 0). "
                  "Up to a term in y alone this is poisson_deviance / 2. The Stirling term "
                  "of full=True does not depend on y_pred.",
        ),
        LossSpec(
            name="poisson_deviance", family=FAMILY, task="regression",
            reference=poisson_deviance_reference,
            reference_hessian=poisson_deviance_reference_hessian,
            kernels=tweedie_kernels,
            kernel_args=lambda hp: _tweedie_args({"power": 1.0, **hp}),
            hyperparameters={"log_input": _log_input()},
            domains=_tweedie_domains({"log_input": False}, 1.0),
            domains_for=lambda hp: _tweedie_domains(hp, 1.0), sampler=_sampler(1.0, False),
            summary="Poisson deviance (scikit-learn's mean_poisson_deviance), for counts.",
            formula=r"\ell(y, \mu) = 2\left(y \log\frac{y}{\mu} - y + \mu\right)",
            properties={"convex", "smooth"},
            notes=DEVIANCE_NOTES.format(name="poisson_deviance") + " y >= 0, mu > 0.",
        ),
        LossSpec(
            name="gamma_deviance", family=FAMILY, task="regression",
            reference=gamma_deviance_reference,
            reference_hessian=gamma_deviance_reference_hessian,
            kernels=tweedie_kernels,
            kernel_args=lambda hp: _tweedie_args({"power": 2.0, **hp}),
            hyperparameters={"log_input": _log_input()},
            domains=_tweedie_domains({"log_input": False}, 2.0),
            domains_for=lambda hp: _tweedie_domains(hp, 2.0), sampler=_sampler(2.0, False),
            summary="Gamma deviance (scikit-learn's mean_gamma_deviance), for positive "
                    "amounts with a constant coefficient of variation.",
            formula=r"\ell(y, \mu) = 2\left(\log\frac{\mu}{y} + \frac{y}{\mu} - 1\right)",
            properties={"smooth"},
            notes=DEVIANCE_NOTES.format(name="gamma_deviance") + " y > 0, mu > 0. Convex "
                  "in eta = log mu, not in mu (the curvature is negative for mu > 2y).",
        ),
        LossSpec(
            name="tweedie_deviance", family=FAMILY, task="regression",
            reference=tweedie_reference, reference_hessian=tweedie_reference_hessian,
            kernels=tweedie_kernels, kernel_args=_tweedie_args,
            hyperparameters={
                "power": Hyperparameter(float, 1.5, Interval(-100.0, 100.0), "Tweedie power p: (-inf, 0] or "
                                        "[1, inf); 0 normal, 1 Poisson, 2 Gamma, 3 inverse "
                                        "Gaussian, 1 < p < 2 compound Poisson-Gamma"),
                "log_input": _log_input()},
            domains=_tweedie_domains({"power": 1.5, "log_input": False}),
            domains_for=_tweedie_domains, sampler=_sampler(1.5, False),
            summary="Tweedie deviance of any power (scikit-learn's mean_tweedie_deviance).",
            formula=r"\ell(y, \mu) = 2\left(\frac{\max(y,0)^{2-p}}{(1-p)(2-p)} - "
                    r"\frac{y\,\mu^{1-p}}{1-p} + \frac{\mu^{2-p}}{2-p}\right)",
            properties={"smooth"},
            notes=DEVIANCE_NOTES.format(name="tweedie_deviance") + " Domains as "
                  "scikit-learn: power < 0: any y, mu > 0; power 0: any y and mu; "
                  "1 <= power < 2: y >= 0, mu > 0; power >= 2: y > 0, mu > 0; 0 < power < 1 "
                  "raises HyperparameterError; |power| <= 100 (beyond, mu^(1-p) "
                  "overflows a double for ordinary means). The default power is 1.5 (LightGBM's and "
                  "XGBoost's Tweedie default), not scikit-learn's 0 (which is squared error).",
        ),
    ]


@hookimpl
def register_losses(register):
    for spec in specs():
        register(spec)
