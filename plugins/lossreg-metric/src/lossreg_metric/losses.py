"""Contrastive loss (on pair distances) and center loss (on feature rows).

Both are shaped to fit lossreg's dispatcher, whose losses take ``(y_true, y_pred)`` of the
same shape and differentiate with respect to ``y_pred``:

* ``contrastive`` is element-wise. ``y_true[i]`` is 1 for a similar pair, 0 for a
  dissimilar one (soft labels in [0, 1] interpolate); ``y_pred[i] >= 0`` is the distance
  between the pair's two embeddings, computed by the caller (``pair_distances``). Per
  pair ``0.5*y*d**2 + 0.5*(1-y)*max(margin - d, 0)**2`` (Hadsell, Chopra & LeCun, CVPR
  2006). The gradient is with respect to d; chain it to the embeddings with
  ``(a - b) / d``.
* ``center`` works on rows. ``y_pred`` is the (n, D) matrix of deep features, ``y_true``
  the (n, D) matrix of the centers of each sample's class, ``centers[labels]``
  (``gather_centers``). Per row ``0.5 * ||x_i - c_{y_i}||**2`` (Wen et al., ECCV 2016);
  the gradient is ``x_i - c_{y_i}``. The paper trains it jointly with softmax loss,
  ``L = L_softmax + lambda * L_center``, and moves the centers with ``update_centers``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

import lossreg
from lossreg.kernels import elementwise_kernels, njit

FAMILY = "metric"
TASK = "embedding"


# -- contrastive ----------------------------------------------------------------------------

@njit
def contrastive_elem(t, p, margin):
    """(loss, d loss / d distance, d2 loss / d distance2) for one pair, in float64.

    The second derivative is y + (1 - y) [d < margin]: at d = margin, where the hinge
    term's curvature jumps, the outer side's 0 is taken.
    """
    y = np.float64(t)
    d = np.float64(p)
    gap = max(margin - d, 0.0)
    return (0.5 * (y * d * d + (1.0 - y) * gap * gap), y * d - (1.0 - y) * gap,
            y + (1.0 - y) * np.float64(gap > 0.0))


def contrastive_reference(y_true, y_pred, margin=1.0):
    y = np.asarray(y_true, np.float64)
    d = np.asarray(y_pred, np.float64)
    return 0.5 * y * d ** 2 + 0.5 * (1.0 - y) * np.maximum(margin - d, 0.0) ** 2


def contrastive_reference_hessian(y_true, y_pred, margin=1.0):
    y = np.asarray(y_true, np.float64)
    d = np.asarray(y_pred, np.float64)
    return y + (1.0 - y) * (d < margin)


def contrastive_sampler(rng, n, margin=1.0):
    """Hard 0/1 pair labels with distances spread across both sides of the margin."""
    return rng.integers(0, 2, size=n).astype(np.float64), rng.uniform(0.0, 2.0 * margin, n)


# -- center ---------------------------------------------------------------------------------

@njit(parallel=True)
def center_forward(y_true, y_pred, out):
    """out[i] = 0.5 * ||y_pred[i] - y_true[i]||^2, accumulated in float64."""
    for i in prange(y_pred.shape[0]):
        s = 0.0
        for j in range(y_pred.shape[1]):
            r = np.float64(y_pred[i, j]) - np.float64(y_true[i, j])
            s += r * r
        out[i] = 0.5 * s


@njit(parallel=True)
def center_gradient(y_true, y_pred, out):
    """out[i, j] = y_pred[i, j] - y_true[i, j] (feature minus its class center)."""
    for i in prange(y_pred.shape[0]):
        for j in range(y_pred.shape[1]):
            out[i, j] = np.float64(y_pred[i, j]) - np.float64(y_true[i, j])


@njit(parallel=True)
def center_hessian(y_true, y_pred, out):
    """out[i, j] = 1: d2/dx_ij2 of 0.5 ||x_i - c_i||^2."""
    for i in prange(y_pred.shape[0]):
        for j in range(y_pred.shape[1]):
            out[i, j] = 1.0


def center_reference_hessian(y_true, y_pred):
    return np.ones(np.shape(y_pred))


def center_reference(y_true, y_pred):
    r = np.asarray(y_pred, np.float64) - np.asarray(y_true, np.float64)
    return 0.5 * np.sum(r * r, axis=-1)


def center_sampler(rng, n, n_classes=5, dim=6):
    """Features scattered around ``n_classes`` centers; returns (centers[labels], features)."""
    centers = rng.normal(0.0, 3.0, size=(n_classes, dim))
    labels = rng.integers(0, n_classes, size=n)
    c = centers[labels]
    return c, c + rng.normal(0.0, 1.0, size=c.shape)


# -- helpers for users ----------------------------------------------------------------------

def gather_centers(centers, labels) -> np.ndarray:
    """``centers[labels]``: the ``y_true`` rows center loss expects, checked."""
    centers = np.asarray(centers)
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise lossreg.DomainError("labels must be a 1-D integer array", argument="labels",
                                  constraint="1-D integer")
    bad = np.flatnonzero((labels < 0) | (labels >= centers.shape[0]))
    if bad.size:
        i = int(bad[0])
        raise lossreg.DomainError(
            f"labels must be in [0, {centers.shape[0] - 1}]; first violation at index {i} "
            f"({labels[i]})", argument="labels", constraint=f"in [0, {centers.shape[0]})", index=i)
    return centers[labels]


def pair_distances(a, b) -> np.ndarray:
    """Euclidean distances between matching rows of two (n, D) embedding matrices."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise lossreg.ShapeError(f"a has shape {a.shape} but b has shape {b.shape}; "
                                 f"they must be equal")
    return np.sqrt(np.sum((a - b) ** 2, axis=-1))


@njit
def _update_centers(centers, features, labels, alpha):
    n_classes, dim = centers.shape
    delta = np.zeros((n_classes, dim))
    counts = np.zeros(n_classes)
    for i in range(features.shape[0]):
        k = labels[i]
        counts[k] += 1.0
        for j in range(dim):
            delta[k, j] += np.float64(centers[k, j]) - np.float64(features[i, j])
    for k in range(n_classes):
        for j in range(dim):
            centers[k, j] -= alpha * delta[k, j] / (1.0 + counts[k])


def update_centers(centers: np.ndarray, features, labels, alpha: float = 0.5) -> np.ndarray:
    """Wen et al.'s center update, in place: c_j -= alpha * sum_{y_i=j}(c_j - x_i) / (1 + n_j).

    ``alpha`` in [0, 1] is the centers' learning rate. Returns ``centers``.
    """
    if not isinstance(centers, np.ndarray) or centers.ndim != 2 \
            or centers.dtype.kind != "f" or not centers.flags.writeable:
        raise lossreg.DTypeError("centers must be a writeable 2-D float array (updated in place)",
                                 argument="centers", constraint="writeable 2-D float array")
    if not (isinstance(alpha, (int, float)) and 0.0 <= alpha <= 1.0):
        raise lossreg.HyperparameterError(f"alpha must be in [0, 1], got {alpha!r}")
    features = np.ascontiguousarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[1] != centers.shape[1]:
        raise lossreg.ShapeError(f"features have shape {features.shape} but centers have "
                                 f"shape {centers.shape}; expected (n, {centers.shape[1]})")
    labels = np.asarray(labels)
    gather_centers(centers, labels)  # validates the labels
    if labels.shape[0] != features.shape[0]:
        raise lossreg.ShapeError(f"labels have shape {labels.shape} but features have "
                                 f"{features.shape[0]} rows")
    _update_centers(centers, features, labels.astype(np.int64), float(alpha))
    return centers


# -- specs ----------------------------------------------------------------------------------

def specs() -> list[lossreg.LossSpec]:
    return [
        lossreg.LossSpec(
            name="contrastive", aliases=("contrastive_loss",), family=FAMILY, task=TASK,
            reference=contrastive_reference, sampler=contrastive_sampler,
            reference_hessian=contrastive_reference_hessian,
            kernels=elementwise_kernels(contrastive_elem),
            hyperparameters={"margin": lossreg.Hyperparameter(
                float, 1.0, lossreg.Interval(0.0, math.inf, closed_low=False),
                "distance beyond which dissimilar pairs cost nothing")},
            domains={
                "y_true": lossreg.Domain(lossreg.Interval(0.0, 1.0),
                                         doc="1 = similar pair, 0 = dissimilar (soft labels allowed)"),
                "y_pred": lossreg.Domain(lossreg.Interval(0.0, math.inf),
                                         doc="distance between the pair's embeddings"),
            },
            summary="Contrastive loss on pair distances: pull similar pairs in, push "
                    "dissimilar ones beyond a margin.",
            formula=r"\ell(y, d) = \tfrac12\, y\, d^2 + \tfrac12 (1 - y) \max(m - d, 0)^2",
            properties={"nonnegative", "smooth", "metric_learning"},
            notes="Inputs are pair labels and distances, not embeddings: compute d with "
                  "pair_distances(a, b) and chain the gradient with (a - b) / d. "
                  "Hadsell, Chopra & LeCun, 'Dimensionality Reduction by Learning an "
                  "Invariant Mapping', CVPR 2006 (their Y is 1 - y here).",
        ),
        lossreg.LossSpec(
            name="center", aliases=("center_loss",), family=FAMILY, task=TASK,
            layout="rows", forward=center_forward, gradient=center_gradient,
            hessian=center_hessian, reference_hessian=center_reference_hessian,
            reference=center_reference, sampler=center_sampler, serial_below=2048,
            summary="Center loss: half the squared distance of each feature row to its "
                    "class center.",
            formula=r"\ell(c_{y_i}, x_i) = \tfrac12 \lVert x_i - c_{y_i} \rVert_2^2",
            domains={
                "y_true": lossreg.Domain(doc="rows: the center of each sample's class, "
                                             "centers[labels], shape (n, D)"),
                "y_pred": lossreg.Domain(doc="rows: deep features, shape (n, D)"),
            },
            properties={"convex", "smooth", "nonnegative", "metric_learning"},
            notes="Used with softmax loss, L = L_softmax + lambda * L_center (Wen, Zhang, Li "
                  "& Qiao, 'A Discriminative Feature Learning Approach for Deep Face "
                  "Recognition', ECCV 2016). Build y_true with gather_centers(centers, "
                  "labels) and move the centers with update_centers(...) after each step.",
        ),
    ]


@lossreg.hookimpl
def register_losses(register):
    for spec in specs():
        register(spec)
