"""Values and gradients of the probabilistic family against PyTorch autograd.

PyTorch is an independent implementation (its own kernels, its own autodiff). Agreement is
required to 1e-10 relative in float64 and 1e-5 in float32, on random inputs and on
extremes: logits of +-1e4, probabilities exactly 0 and 1, one-hot targets, C = 1 and
C = 1000. Relative error of an array is max|ours - torch| / max|torch| (inf-norm); of a
reduced value |ours - torch| / |torch|. Non-finite entries must match exactly.

The torch references are ``lossreg.peers.PEERS[name].torch`` (the same functions
``lossreg bench`` times). Where PyTorch has no built-in (focal losses, alpha-weighted BCE,
JS), the reference is written with PyTorch primitives (binary_cross_entropy,
binary_cross_entropy_with_logits, logsigmoid, xlogy) and differentiated by autograd. The
worst errors per loss are printed by the last test (run with ``-s``).
"""

from __future__ import annotations

import numpy as np
import pytest

import lossreg
from lossreg.peers import PEERS

torch = pytest.importorskip("torch")
F = torch.nn.functional

TOL = {np.float64: 1e-10, np.float32: 1e-5}
WORST: dict[tuple[str, str], list[float]] = {}
REDUCTIONS = ("mean", "sum", "none")


def rel_err(ours, ref) -> float:
    a = np.asarray(ours, np.float64)
    b = np.asarray(ref, np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    fa, fb = np.isfinite(a), np.isfinite(b)
    assert np.array_equal(fa, fb), f"non-finite pattern differs: ours {a[fa != fb]} torch {b[fa != fb]}"
    assert np.array_equal(a[~fa], b[~fb]), "non-finite values differ"
    if not fb.any():
        return 0.0
    scale = float(np.max(np.abs(b[fb])))
    err = float(np.max(np.abs(a[fb] - b[fb])))
    return err / scale if scale > 0 else err


def torch_value_grad(name, t, p, reduction, hyper):
    pt = torch.tensor(p, requires_grad=True)
    tt = torch.from_numpy(np.array(t))
    value = PEERS[name].torch(tt, pt, reduction, **hyper)
    (value.sum() if reduction == "none" else value).backward()
    return value.detach().numpy(), pt.grad.numpy()


def compare(name, hyper, t, p, dtype, reductions=REDUCTIONS, torch_nan_grad_ok=False):
    """Our value and gradient vs torch's, for each reduction; record the worst errors.

    ``torch_nan_grad_ok``: where autograd's gradient is NaN (0 * inf of a derivative that
    is infinite at an endpoint, e.g. (1-p)^0.5 at p = 1), ours must be finite and is not
    compared.
    """
    t = np.asarray(t)
    t = t.astype(dtype) if t.dtype.kind == "f" else t
    p = np.asarray(p).astype(dtype)
    for reduction in reductions:
        loss = lossreg.get(name, reduction=reduction, **hyper)
        value, grad = loss.value_and_grad(t, p)
        assert np.all(np.isfinite(grad)) and np.all(np.isfinite(value)), (name, reduction)
        tv, tg = torch_value_grad(name, t, p, reduction, hyper)
        if torch_nan_grad_ok:
            tg, grad = tg[~np.isnan(tg)], grad[~np.isnan(tg)]
        ev, eg = rel_err(value, tv), rel_err(grad, tg)
        worst = WORST.setdefault((name, np.dtype(dtype).name), [0.0, 0.0])
        worst[0], worst[1] = max(worst[0], ev), max(worst[1], eg)
        tol = TOL[dtype]
        assert ev <= tol, f"{name} {hyper} {reduction}: value rel err {ev:.3g}"
        assert eg <= tol, f"{name} {hyper} {reduction}: gradient rel err {eg:.3g}"


# -- inputs ------------------------------------------------------------------------------------

RNG = np.random.default_rng(2024)


def dist_rows(n, c, zeros=False, floor=0.0):
    rows = RNG.dirichlet(np.full(c, 0.5), size=n)
    if zeros and c > 1:
        rows[RNG.random(rows.shape) < 0.3] = 0.0
        rows[np.arange(n), RNG.integers(0, c, n)] += 0.1
    rows = rows + floor
    return rows / rows.sum(axis=1, keepdims=True)


def one_hot(labels, c):
    out = np.zeros((len(labels), c))
    out[np.arange(len(labels)), labels] = 1.0
    return out


def row_cases():
    """(label, y_true, y_pred) with y_pred strictly positive (torch's log(0) gives NaN
    through 0 * -inf; the q = 0 cases are tested without torch in test_probabilistic)."""
    yield "random C=5", dist_rows(40, 5), dist_rows(40, 5, floor=1e-3)
    yield "zeros in target", dist_rows(40, 5, zeros=True), dist_rows(40, 5, floor=1e-3)
    yield "one-hot target", one_hot(RNG.integers(0, 6, 30), 6), dist_rows(30, 6, floor=1e-6)
    yield "C=1", np.ones((7, 1)), np.ones((7, 1))
    yield "C=1000", dist_rows(6, 1000, zeros=True), dist_rows(6, 1000, floor=1e-7)
    yield "single 1-D row", dist_rows(1, 8)[0], dist_rows(1, 8, floor=1e-3)[0]


def prob_cases():
    n = 200
    yield "random", RNG.random(n), RNG.uniform(0.01, 0.99, n)
    yield "hard labels", RNG.integers(0, 2, n).astype(float), RNG.uniform(0.001, 0.999, n)
    edges = np.array([0.0, 1.0, 1e-300, 1e-40, 1e-13, 1e-8, 0.5, 1 - 1e-8, 1 - 1e-16])
    y = np.repeat([0.0, 1.0, 0.3], edges.size)
    yield "p in {0, 1} and near", y, np.tile(edges, 3)


def logit_cases():
    n = 200
    yield "random", RNG.random(n), RNG.normal(0, 4, n)
    yield "hard labels", RNG.integers(0, 2, n).astype(float), RNG.normal(0, 10, n)
    edges = np.array([-1e4, -800.0, -40.0, -1e-3, 0.0, 1e-3, 40.0, 800.0, 1e4])
    y = np.repeat([0.0, 1.0, 0.3], edges.size)
    yield "logits +-1e4", y, np.tile(edges, 3)


def logit_rows(n, c, scale=3.0):
    return RNG.normal(0, scale, size=(n, c))


def extreme_logits(n, c):
    return RNG.choice([-1e4, 0.0, 1e4], size=(n, c)) + RNG.normal(0, 1, (n, c))


def softmax_cases():
    yield "labels C=5", RNG.integers(0, 5, 50), logit_rows(50, 5)
    yield "labels logits +-1e4", RNG.integers(0, 4, 40), extreme_logits(40, 4)
    yield "labels C=1", np.zeros(6, dtype=np.int64), logit_rows(6, 1)
    yield "labels C=1000", RNG.integers(0, 1000, 8), logit_rows(8, 1000)
    yield "soft targets", dist_rows(50, 5, zeros=True), logit_rows(50, 5)
    yield "one-hot targets +-1e4", one_hot(RNG.integers(0, 4, 40), 4), extreme_logits(40, 4)
    yield "soft C=1000", dist_rows(5, 1000), logit_rows(5, 1000)


HYPERS = {
    "kl_div": [{}, {"eps": 1e-3}],
    "js_div": [{}],
    "cross_entropy": [{}],
    "binary_cross_entropy": [{}, {"alpha": 0.25}],
    "binary_cross_entropy_with_logits": [{}, {"alpha": 0.25}, {"pos_weight": 3.0},
                                         {"alpha": 0.7, "pos_weight": 0.5}],
    "focal": [{}, {"alpha": None, "gamma": 0.0}, {"alpha": 0.5, "gamma": 1.0},
              {"gamma": 0.5}],
    "sigmoid_focal": [{}, {"alpha": None, "gamma": 0.0}, {"alpha": 0.5, "gamma": 1.0},
                      {"gamma": 0.5}],
}
CASES = {"kl_div": row_cases, "js_div": row_cases, "cross_entropy": row_cases,
         "binary_cross_entropy": prob_cases, "focal": prob_cases,
         "binary_cross_entropy_with_logits": logit_cases, "sigmoid_focal": logit_cases}
DTYPES = [np.float64, np.float32]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_agrees_with_torch(name, dtype):
    for label, t, p in CASES[name]():
        for hyper in HYPERS[name]:
            if name == "kl_div" and hyper.get("eps") and label == "C=1000":
                continue   # rows of 1000 probabilities sit on the clamp's kink at 1e-3
            # torch: 0 * inf in pow's backward where 1 - p_t is exactly 0 (p in {0, 1},
            # or a logit whose sigmoid rounds to 0 or 1) and 0 < gamma < 1
            nan_ok = name in ("focal", "sigmoid_focal") and 0 < hyper.get("gamma", 2.0) < 1
            compare(name, hyper, t, p, dtype, torch_nan_grad_ok=nan_ok)


SOFTMAX_LABEL_HYPERS = [{}, {"label_smoothing": 0.1}, {"ignore_index": 1},
                        {"class_weight": "random"},
                        {"label_smoothing": 0.2, "class_weight": "random", "ignore_index": 0}]
SOFTMAX_PROB_HYPERS = [{}, {"label_smoothing": 0.3}, {"class_weight": "random"},
                       {"label_smoothing": 0.1, "class_weight": "random"}]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
def test_softmax_cross_entropy_agrees_with_torch(dtype):
    for label, t, z in softmax_cases():
        labels = t.ndim == 1
        for hyper in SOFTMAX_LABEL_HYPERS if labels else SOFTMAX_PROB_HYPERS:
            hyper = dict(hyper)
            if hyper.get("class_weight") == "random":
                hyper["class_weight"] = RNG.uniform(0.1, 3.0, z.shape[1]).tolist()
            if hyper.get("ignore_index") is not None and z.shape[1] == 1:
                continue  # every row would be ignored
            compare("softmax_cross_entropy", hyper, t, z, dtype)


@pytest.mark.filterwarnings("ignore:reduction. .mean. divides")
def test_kl_batchmean_is_torch_batchmean_not_mean():
    """Our "mean" is PyTorch's reduction="batchmean"; its "mean" divides by n * C."""
    t, q = dist_rows(10, 7), dist_rows(10, 7, floor=1e-3)
    ours = lossreg.get("kl")(t, q)
    tt, tq = torch.from_numpy(t), torch.from_numpy(q)
    assert ours == pytest.approx(F.kl_div(tq.log(), tt, reduction="batchmean").item(), rel=1e-12)
    assert ours != pytest.approx(F.kl_div(tq.log(), tt, reduction="mean").item(), rel=1e-3)


def test_sigmoid_focal_matches_torchvision_formula_for_hard_labels():
    """torchvision.ops.sigmoid_focal_loss, written out (torchvision is not a dependency);
    its 1 - sigmoid(z) loses digits for large z, so moderate logits and a 1e-9 tolerance."""
    y = RNG.integers(0, 2, 300).astype(np.float64)
    z = RNG.normal(0, 3, 300).clip(-12, 12)
    for alpha, gamma in ((0.25, 2.0), (0.5, 1.0), (0.9, 0.0)):
        zt = torch.tensor(z, requires_grad=True)
        yt = torch.from_numpy(y)
        p = torch.sigmoid(zt)
        ce = F.binary_cross_entropy_with_logits(zt, yt, reduction="none")
        p_t = p * yt + (1 - p) * (1 - yt)
        ref = (alpha * yt + (1 - alpha) * (1 - yt)) * ce * (1 - p_t) ** gamma
        ref.sum().backward()
        loss = lossreg.get("sigmoid_focal", alpha=alpha, gamma=gamma, reduction="none")
        value, grad = loss.value_and_grad(y, z)
        assert rel_err(value, ref.detach().numpy()) < 1e-9
        assert rel_err(grad, zt.grad.numpy()) < 1e-9


def test_zzz_report_worst_relative_errors(capsys):
    """Print the worst relative error per loss (value, gradient) seen above."""
    if not WORST:
        pytest.skip("run with the agreement tests to collect errors")
    lines = [f"{'loss':34s} {'dtype':8s} {'value':>10s} {'gradient':>10s}"]
    for (name, dtype), (ev, eg) in sorted(WORST.items()):
        lines.append(f"{name:34s} {dtype:8s} {ev:10.2e} {eg:10.2e}")
    with capsys.disabled():
        print("\nworst relative error vs torch\n" + "\n".join(lines))
    for (name, dtype), errs in WORST.items():
        assert max(errs) <= TOL[np.dtype(dtype).type]
