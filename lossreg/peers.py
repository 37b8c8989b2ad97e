"""Counterparts of the built-in losses in NumPy, PyTorch and scikit-learn: one table.

``PEERS[name]`` is a :class:`Peer`. The tests check lossreg against these counterparts
(``tests/test_torch_agreement.py``, ``tests/test_bench.py``) and ``lossreg bench`` times
them, so what is compared and what is benchmarked is the same code.

* ``torch(t, p, reduction, **hyper) -> tensor``: the loss in PyTorch, reduced ("mean",
  "sum") or per term ("none"), differentiable by autograd. ``t`` and ``p`` are tensors
  (``t`` int64 for class labels). Every hyperparameter of the loss is supported.
* ``torch_native(**hyper) -> bool``: whether PyTorch ships this loss for these
  hyperparameters (a ``torch.nn.functional`` loss or a one-line composition of one).
  Where it does not (focal losses, JS, alpha-weighted BCE, Dice, Tversky), ``torch`` is
  an autograd reference written from primitives: a correctness check, not a benchmark
  peer.
* ``torch_fast(t, p, reduction, **hyper) -> tensor`` (optional): PyTorch's own kernel
  where ``torch`` is a composition of primitives kept for its double backward (the
  Hessian tests need one; ``F.multi_margin_loss`` has none). ``lossreg bench`` times
  this one when given.
* ``numpy(t, p, **hyper) -> float``: the "mean" value in plain NumPy, where it is worth
  more than the mean of ``spec.reference`` (see :func:`numpy_value`).
* ``numpy_grad(t, p, **hyper) -> ndarray | None``: closed-form gradient of the "mean"
  value, None for hyperparameters it does not cover.
* ``sklearn(t, p, **hyper) -> object | None``: a ``sklearn._loss.loss`` object computing
  ``sklearn_scale`` times our per-element loss (its gradients are those of the sum), or
  None where scikit-learn has no such loss for these inputs.

torch and sklearn are imported inside the functions only: importing this module (and
``import lossreg``) never imports either.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np


def _always(**_hyper: Any) -> bool:
    return True


def _never(**_hyper: Any) -> bool:
    return False


@dataclass(frozen=True)
class Peer:
    """The counterparts of one loss (None: that library has none)."""

    torch: Callable[..., Any] | None = None
    torch_native: Callable[..., bool] = _always
    numpy: Callable[..., float] | None = None
    numpy_grad: Callable[..., Any] | None = None
    sklearn: Callable[..., Any] | None = None
    sklearn_scale: float = 1.0
    torch_fast: Callable[..., Any] | None = None


def _F():
    import torch.nn.functional as F

    return F


def _reduce(terms, reduction):
    if reduction == "none":
        return terms
    return terms.sum() if reduction == "sum" else terms.mean()


def _ab(alpha):
    """Weights of the positive and negative terms of an alpha-weighted binary loss."""
    return (1.0, 1.0) if alpha is None else (alpha, 1.0 - alpha)


# -- PyTorch -------------------------------------------------------------------------------

def t_mse(t, p, reduction):
    return _F().mse_loss(p, t, reduction=reduction)


def t_rmse(t, p, reduction):
    import torch

    assert reduction == "mean", "rmse has only the 'mean' reduction"
    return torch.sqrt(_F().mse_loss(p, t))


def t_mae(t, p, reduction):
    return _F().l1_loss(p, t, reduction=reduction)


def t_huber(t, p, reduction, delta=1.0):
    return _F().huber_loss(p, t, reduction=reduction, delta=delta)


def t_smooth_l1(t, p, reduction, beta=1.0):
    return _F().smooth_l1_loss(p, t, reduction=reduction, beta=beta)


def t_kl(t, q, reduction, eps=0.0, log_pred=False, log_target=False):
    """KLDivLoss(log_target=...): its input is log q (ours when log_pred)."""
    if t.ndim == 1:   # one row for us; torch's batchmean would divide a 1-D input by C
        return t_kl(t[None], q[None], reduction, eps, log_pred,
                    log_target)[0 if reduction == "none" else ...]
    F = _F()
    qc = q.clamp(min=eps) if eps > 0 else q
    x = q if log_pred else qc.log()
    if reduction == "mean":
        return F.kl_div(x, t, reduction="batchmean", log_target=log_target)   # our "mean"
    return _reduce(F.kl_div(x, t, reduction="none", log_target=log_target).sum(-1),
                   reduction)


def t_js(t, q, reduction):
    import torch

    m = 0.5 * (t + q)
    x = torch.special.xlogy
    terms = 0.5 * (x(t, t) - x(t, m) + x(q, q) - x(q, m)).sum(-1)
    return _reduce(terms, reduction)


def t_ce(t, q, reduction):
    import torch

    return _reduce(-torch.special.xlogy(t, q).sum(-1), reduction)


def t_bce(y, p, reduction, alpha=None):
    import torch

    F = _F()
    if alpha is None:
        return F.binary_cross_entropy(p, y, reduction=reduction)
    a, b = _ab(alpha)
    terms = (a * y * F.binary_cross_entropy(p, torch.ones_like(p), reduction="none")
             + b * (1 - y) * F.binary_cross_entropy(p, torch.zeros_like(p), reduction="none"))
    return _reduce(terms, reduction)


def t_bce_logits(y, z, reduction, alpha=None, pos_weight=None):
    import torch

    F = _F()
    pw = None if pos_weight is None else torch.tensor(pos_weight, dtype=z.dtype)
    if alpha is None:
        return F.binary_cross_entropy_with_logits(z, y, pos_weight=pw, reduction=reduction)
    a, b = _ab(alpha)
    ones, zeros = torch.ones_like(z), torch.zeros_like(z)
    terms = (a * y * F.binary_cross_entropy_with_logits(z, ones, pos_weight=pw, reduction="none")
             + b * (1 - y) * F.binary_cross_entropy_with_logits(z, zeros, reduction="none"))
    return _reduce(terms, reduction)


def t_focal(y, p, reduction, alpha=0.25, gamma=2.0, split_terms=False):
    """torchvision's form alpha_t (1 - p_t)^gamma BCE(p, y) (its sigmoid_focal_loss body on
    probabilities); the split form with PyTorch's BCE per term when ``split_terms``."""
    import torch

    F = _F()
    a, b = _ab(alpha)
    if split_terms:
        pos = F.binary_cross_entropy(p, torch.ones_like(p), reduction="none")    # -clamp(log p)
        neg = F.binary_cross_entropy(p, torch.zeros_like(p), reduction="none")   # -clamp(log 1-p)
        terms = a * y * (1 - p) ** gamma * pos + b * (1 - y) * p ** gamma * neg
        return _reduce(terms, reduction)
    ce = F.binary_cross_entropy(p, y, reduction="none")
    p_t = p * y + (1 - p) * (1 - y)
    return _reduce((a * y + b * (1 - y)) * ce * (1 - p_t) ** gamma, reduction)


def t_sigmoid_focal(y, z, reduction, alpha=0.25, gamma=2.0, split_terms=False):
    """torchvision.ops.sigmoid_focal_loss written out (torchvision is not a dependency);
    the split form from log-sigmoids when ``split_terms``."""
    import torch

    F = _F()
    a, b = _ab(alpha)
    if split_terms:
        nlp, nlq = -F.logsigmoid(z), -F.logsigmoid(-z)      # -log p, -log(1 - p)
        terms = (a * y * torch.exp(-gamma * nlq) * nlp
                 + b * (1 - y) * torch.exp(-gamma * nlp) * nlq)
        return _reduce(terms, reduction)
    p = torch.sigmoid(z)
    ce = F.binary_cross_entropy_with_logits(z, y, reduction="none")
    p_t = p * y + (1 - p) * (1 - y)
    return _reduce((a * y + b * (1 - y)) * ce * (1 - p_t) ** gamma, reduction)


def t_softmax(t, z, reduction, label_smoothing=0.0, class_weight=None, ignore_index=None):
    import torch

    w = None if class_weight is None else torch.tensor(class_weight, dtype=z.dtype)
    ii = -100 if ignore_index is None else ignore_index
    return _F().cross_entropy(z, t, weight=w, ignore_index=ii,
                              label_smoothing=label_smoothing, reduction=reduction)


def t_nll(t, x, reduction, class_weight=None, ignore_index=None):
    """F.nll_loss on log-probabilities (its weighted mean: sum w_y l / sum w_y); with
    probability rows, -sum_j w_j t_j x_j per row (cross_entropy's soft-target rule)."""
    import torch

    w = None if class_weight is None else torch.tensor(class_weight, dtype=x.dtype)
    if t.is_floating_point():
        return _reduce(-(t * x * (1.0 if w is None else w)).sum(-1), reduction)
    ii = -100 if ignore_index is None else ignore_index
    return _F().nll_loss(x, t.to(torch.int64), weight=w, ignore_index=ii, reduction=reduction)


def t_poisson_nll(t, x, reduction, log_input=True, full=False, eps=1e-8):
    """F.poisson_nll_loss (y_pred is its ``input``, y_true its ``target``)."""
    return _F().poisson_nll_loss(x, t, log_input=log_input, full=full, eps=eps,
                                 reduction=reduction)


def t_cosine(t, p, reduction):
    """-F.cosine_similarity per row: Keras's cosine_similarity (torch's eps 1e-8 only
    matters for norms below it, where lossreg raises or rescales)."""
    return _reduce(-_F().cosine_similarity(p, t, dim=-1), reduction)


def _t_overlap(t, p, reduction, kappa, alpha, beta, smooth, eps):
    inter = (t * p).sum(-1)
    den = (kappa * inter + alpha * (t * (1 - p)).sum(-1) + beta * (p * (1 - t)).sum(-1)
           + smooth + eps)
    return _reduce(1 - (kappa * inter + smooth) / den, reduction)


def t_dice(t, p, reduction, smooth=0.0, eps=1e-7):
    """Keras's dice per row (axis=-1) with smooth, from torch primitives."""
    return _reduce(1 - (2 * (t * p).sum(-1) + smooth)
                   / (t.sum(-1) + p.sum(-1) + smooth + eps), reduction)


def t_tversky(t, p, reduction, alpha=0.5, beta=0.5, smooth=0.0, eps=1e-7):
    """Keras's tversky per row, from torch primitives (alpha on sum t (1 - p))."""
    return _t_overlap(t, p, reduction, 1.0, alpha, beta, smooth, eps)


def _class_weights(class_weight, x):
    import torch

    return None if class_weight is None else torch.tensor(class_weight, dtype=x.dtype)


def t_multi_margin(t, x, reduction, p=1, margin=1.0, class_weight=None):
    """PyTorch's MultiMarginLoss written with primitives (relu, gather, one_hot), so that
    autograd differentiates it twice; values and gradients are ``F.multi_margin_loss``'s
    (relu's gradient at 0 is 0, as the native kernel's test z > 0). Probability rows:
    sum_c t_c l(x, c)."""
    import torch

    n_classes = x.shape[-1]
    w = _class_weights(class_weight, x)

    def per_label(labels):
        z = torch.relu(margin - x.gather(-1, labels.unsqueeze(-1)) + x) ** p
        z = z * (1 - _F().one_hot(labels, n_classes).to(x.dtype))
        terms = z.sum(-1) / n_classes
        return terms if w is None else w[labels] * terms

    if not t.is_floating_point():
        return _reduce(per_label(t.to(torch.int64)), reduction)
    terms = sum(t[..., c] * per_label(torch.full(x.shape[:-1], c, dtype=torch.int64))
                for c in range(n_classes))
    return _reduce(terms, reduction)


def t_multi_margin_native(t, x, reduction, p=1, margin=1.0, class_weight=None):
    """``torch.nn.functional.multi_margin_loss`` itself (labels; probability rows as the
    sum over classes of its per-row losses)."""
    import torch

    w = _class_weights(class_weight, x)
    if not t.is_floating_point():
        return _F().multi_margin_loss(x, t, p=p, margin=margin, weight=w,
                                      reduction=reduction)
    terms = sum(t[..., c] * _F().multi_margin_loss(
        x, torch.full(x.shape[:-1], c, dtype=torch.int64), p=p, margin=margin, weight=w,
        reduction="none") for c in range(x.shape[-1]))
    return _reduce(terms, reduction)


# -- NumPy ---------------------------------------------------------------------------------

def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _plain_labels(t, hyper) -> bool:
    """Integer labels and no smoothing, class weights or ignored label."""
    return (t.ndim == 1 and not hyper.get("label_smoothing")
            and hyper.get("class_weight") is None and hyper.get("ignore_index") is None)


def np_rmse(t, p):
    return math.sqrt(float(np.mean((p - t) ** 2)))


def np_softmax(t, z, **hyper):
    if not _plain_labels(t, hyper):
        return None
    zs = z - z.max(axis=-1, keepdims=True)
    lse = np.log(np.exp(zs).sum(axis=-1))
    return float(np.mean(lse - zs[np.arange(z.shape[0]), t]))


def g_mse(t, p):
    return 2.0 * (p - t) / p.shape[0]


def g_rmse(t, p):
    r = p - t
    m = math.sqrt(float(np.mean(r * r)))
    return r / (p.shape[0] * m) if m > 0 else np.zeros_like(r)


def g_mae(t, p):
    return np.sign(p - t) / p.shape[0]


def g_huber(t, p, delta=1.0):
    return np.clip(p - t, -delta, delta) / p.shape[0]


def g_smooth_l1(t, p, beta=1.0):
    r = p - t
    return (np.sign(r) if beta == 0 else np.clip(r, -beta, beta) / beta) / p.shape[0]


def g_bce_logits(t, z, alpha=None, pos_weight=None):
    if alpha is not None or pos_weight is not None:
        return None
    return (1.0 / (1.0 + np.exp(-z)) - t) / z.shape[0]


def g_softmax(t, z, **hyper):
    if not _plain_labels(t, hyper):
        return None
    g = _softmax(z)
    g[np.arange(z.shape[0]), t] -= 1.0
    return g / z.shape[0]


# -- scikit-learn (its private sklearn._loss module) ----------------------------------------

def _skl():
    from sklearn._loss import loss

    return loss


def s_mse(t, p):
    return _skl().HalfSquaredError()


def s_mae(t, p):
    return _skl().AbsoluteError()


def s_huber(t, p, delta=1.0):
    return _skl().HuberLoss(delta=float(delta))


def s_bce_logits(t, p, alpha=None, pos_weight=None):
    return _skl().HalfBinomialLoss() if alpha is None and pos_weight is None else None


def s_softmax(t, p, **hyper):
    return _skl().HalfMultinomialLoss(n_classes=p.shape[1]) if _plain_labels(t, hyper) else None


# -- the table -------------------------------------------------------------------------------

PEERS: dict[str, Peer] = {
    "mse": Peer(torch=t_mse, numpy_grad=g_mse, sklearn=s_mse, sklearn_scale=0.5),
    "rmse": Peer(torch=t_rmse, numpy=np_rmse, numpy_grad=g_rmse),
    "mae": Peer(torch=t_mae, numpy_grad=g_mae, sklearn=s_mae),
    "huber": Peer(torch=t_huber, numpy_grad=g_huber, sklearn=s_huber),
    "smooth_l1": Peer(torch=t_smooth_l1, numpy_grad=g_smooth_l1),
    "kl_div": Peer(torch=t_kl, torch_native=lambda eps=0.0, **_: not eps),
    "js_div": Peer(torch=t_js, torch_native=_never),
    "cross_entropy": Peer(torch=t_ce),
    "binary_cross_entropy": Peer(torch=t_bce, torch_native=lambda alpha=None: alpha is None),
    "binary_cross_entropy_with_logits": Peer(
        torch=t_bce_logits, torch_native=lambda alpha=None, pos_weight=None: alpha is None,
        numpy_grad=g_bce_logits, sklearn=s_bce_logits),
    "focal": Peer(torch=t_focal, torch_native=_never),
    "sigmoid_focal": Peer(torch=t_sigmoid_focal, torch_native=_never),
    "nll": Peer(torch=t_nll),
    "poisson_nll": Peer(torch=t_poisson_nll),
    "cosine_similarity": Peer(torch=t_cosine),
    "dice": Peer(torch=t_dice, torch_native=_never),
    "tversky": Peer(torch=t_tversky, torch_native=_never),
    "softmax_cross_entropy": Peer(torch=t_softmax, numpy=np_softmax, numpy_grad=g_softmax,
                                  sklearn=s_softmax),
    "multi_margin": Peer(torch=t_multi_margin, torch_fast=t_multi_margin_native),
}

NONE = Peer()


def peer(name: str) -> Peer:
    """The counterparts of a loss (an empty Peer for a loss not in the table)."""
    return PEERS.get(name, NONE)


def numpy_value(spec, t, p, hyper) -> float:
    """The "mean" value in NumPy: the table's ``numpy`` or the mean of ``spec.reference``."""
    fn = peer(spec.name).numpy
    value = fn(t, p, **hyper) if fn is not None else None
    return float(np.mean(spec.reference(t, p, **hyper))) if value is None else value
