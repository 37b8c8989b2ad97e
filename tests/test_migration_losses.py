"""Losses and options people migrating from torch.nn, keras.losses and scikit-learn look up
(issue 20): hyperparameter variants and origin-specific semantics, on few kernels.

The all-loss parametrizations (conformance, bad input, Hessians, bridges) pick the new
losses up by themselves; agreement sweeps against torch for the probabilistic family live
in test_torch_agreement.py and test_hessian.py. This file checks what those do not: the
variants chosen by a hyperparameter, formulas re-implemented from the origin's docs, and
the errors the origin raises. Inputs are small (serial kernels), float64 unless a test
is about float32, so each test compiles few kernels.
"""

from __future__ import annotations

import numpy as np
import pytest

import lossreg
from lossreg.errors import HyperparameterError

RNG = np.random.default_rng(20)


# -- focal, sigmoid_focal: torchvision's form by default ---------------------------------------

def _torchvision_focal(y, p, alpha, gamma):
    """torchvision.ops.sigmoid_focal_loss's body on probabilities (numpy, from its docs)."""
    with np.errstate(divide="ignore"):
        ce = -(y * np.maximum(np.log(p), -100) + (1 - y) * np.maximum(np.log1p(-p), -100))
    p_t = p * y + (1 - p) * (1 - y)
    a_t = 1.0 if alpha is None else alpha * y + (1 - alpha) * (1 - y)
    return a_t * ce * (1 - p_t) ** gamma


def test_focal_default_is_torchvision_form_for_soft_targets():
    y = RNG.uniform(0, 1, 64)              # soft targets, e.g. after label smoothing
    p = RNG.uniform(0.01, 0.99, 64)
    z = np.log(p / (1 - p))
    for alpha, gamma in ((0.25, 2.0), (None, 1.0), (0.7, 0.0)):
        want = _torchvision_focal(y, p, alpha, gamma)
        got = lossreg.get("focal", alpha=alpha, gamma=gamma, reduction="none")(y, p)
        np.testing.assert_allclose(got, want, rtol=1e-12)
        got = lossreg.get("sigmoid_focal", alpha=alpha, gamma=gamma, reduction="none")(y, z)
        np.testing.assert_allclose(got, want, rtol=1e-9)


def test_focal_split_terms_keeps_the_article_form_and_agrees_on_hard_labels():
    y, p = RNG.uniform(0, 1, 32), RNG.uniform(0.01, 0.99, 32)
    split = lossreg.get("focal", split_terms=True, reduction="none")
    want = -(0.25 * y * (1 - p) ** 2 * np.log(p) + 0.75 * (1 - y) * p ** 2 * np.log1p(-p))
    np.testing.assert_allclose(split(y, p), want, rtol=1e-13)
    default = lossreg.get("focal", reduction="none")
    assert not np.allclose(default(y, p), split(y, p))           # soft targets: differ
    hard = np.round(y)
    np.testing.assert_allclose(default(hard, p), split(hard, p), rtol=1e-13)
    assert lossreg.get("focal").hyperparameters["split_terms"] is False


# -- softmax_cross_entropy: ignore_index is for labels only -------------------------------------

def test_softmax_ignore_index_with_probability_rows_raises_like_torch():
    z = RNG.normal(size=(5, 3))
    rows = RNG.dirichlet(np.ones(3), size=5)
    loss = lossreg.get("softmax_cross_entropy", ignore_index=1)
    with pytest.raises(HyperparameterError, match="ignore_index=1 applies to integer class"):
        loss(rows, z)
    with pytest.raises(HyperparameterError, match="ignore_index"):
        loss.grad(rows, z)
    assert np.isfinite(loss(np.array([0, 1, 2, 1, 0]), z))     # labels: fine
    torch = pytest.importorskip("torch")
    with pytest.raises(Exception):
        torch.nn.functional.cross_entropy(torch.tensor(z), torch.tensor(rows), ignore_index=1)
