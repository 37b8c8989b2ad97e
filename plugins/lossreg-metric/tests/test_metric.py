"""lossreg-metric's own tests: the conformance kit plus the metric-learning behaviour."""

import numpy as np
import pytest

lossreg = pytest.importorskip("lossreg")
lossreg_metric = pytest.importorskip("lossreg_metric",
                                     reason="install lossreg-metric first (pip install .)")
from lossreg.testing import parametrize_checks  # noqa: E402


@pytest.mark.parametrize("check", parametrize_checks("contrastive") + parametrize_checks("center"))
def test_conformance(check):
    check()


def test_found_through_the_entry_point():
    for name in ("contrastive", "center_loss"):
        assert lossreg.spec(name).source.startswith("lossreg-metric ")


def test_contrastive_pulls_similar_and_pushes_dissimilar_within_margin():
    loss = lossreg.get("contrastive", margin=2.0, reduction="none")
    y = np.array([1.0, 1.0, 0.0, 0.0, 0.0])
    d = np.array([0.0, 1.5, 0.5, 2.0, 3.0])
    np.testing.assert_allclose(loss(y, d), [0.0, 1.125, 1.125, 0.0, 0.0])
    np.testing.assert_allclose(loss.grad(y, d), [0.0, 1.5, -1.5, 0.0, 0.0])


def test_contrastive_rejects_negative_distances_and_bad_labels():
    loss = lossreg.get("contrastive")
    with pytest.raises(lossreg.DomainError) as info:
        loss([1.0, 0.0], [0.5, -0.1])
    assert info.value.argument == "y_pred" and info.value.index == 1
    with pytest.raises(lossreg.DomainError, match="y_true"):
        loss([2.0, 0.0], [0.5, 0.1])


def test_contrastive_gradient_chains_to_embeddings():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    y = np.array([1.0, 0.0, 1.0, 0.0])
    loss = lossreg.get("contrastive", margin=3.0, reduction="sum")
    d = lossreg_metric.pair_distances(a, b)
    grad_a = loss.grad(y, d)[:, None] * (a - b) / d[:, None]
    h = 1e-6
    for i, j in [(0, 0), (1, 2), (3, 1)]:
        a2 = a.copy()
        a2[i, j] += h
        fd = (loss(y, lossreg_metric.pair_distances(a2, b)) - loss(y, d)) / h
        assert grad_a[i, j] == pytest.approx(fd, rel=1e-4, abs=1e-6)


def test_center_loss_with_softmax_and_center_updates():
    rng = np.random.default_rng(2)
    centers = np.zeros((3, 2))
    labels = np.array([0, 0, 1, 2, 2, 2])
    feats = rng.normal(size=(6, 2)) + np.array([[5, 0], [5, 0], [0, 5], [-5, 0], [-5, 0], [-5, 0]])
    center = lossreg.get("center")
    before = center(lossreg_metric.gather_centers(centers, labels), feats)
    for _ in range(20):
        lossreg_metric.update_centers(centers, feats, labels, alpha=0.5)
    after = center(lossreg_metric.gather_centers(centers, labels), feats)
    assert after < 0.2 * before
    # one sample in class 1: c <- c - alpha * (c - x) / (1 + 1), from c = 0, twenty times
    np.testing.assert_allclose(centers[1], feats[2] * (1 - 0.75 ** 20), rtol=1e-12)
    grad = center.grad(lossreg_metric.gather_centers(centers, labels), feats)
    np.testing.assert_allclose(grad, (feats - centers[labels]) / len(labels))


def test_gather_centers_checks_labels():
    with pytest.raises(lossreg.DomainError, match="index 1"):
        lossreg_metric.gather_centers(np.zeros((2, 3)), np.array([0, 2]))
