"""Second derivatives of the probabilistic losses, checked at the kernel level.

The element functions (``elem(t, p, *hp) -> (loss, d/dp, d^2/dp^2)``) and the row impls
(``impl(t, p, w, scale, values, grad, hess, parallel, *hp)``) are called DIRECTLY, not
through the dispatcher, and compared with (a) the NumPy reference Hessians, (b) 4th-order
central finite differences of the kernels' own gradient and (c) PyTorch double backward
(when torch is importable), in float64 and for float32 inputs.

PyTorch is itself inexact in a few places, where these kernels are exact (documented in
the element functions): BCE's double backward numerator p^2 - 2 p y + y cancels for y = 1
and p near 1, and sigmoid's backward s (1 - s) rounds to 0 for |z| > ~37 (relative
error ~1e-16 / (1 - s) beyond |z| ~ 15). Those points are compared with the reference
Hessian only (``_torch_exact``); everywhere else the agreement is 1e-10 relative.
"""

from __future__ import annotations

import numpy as np
import pytest

from lossreg.losses import rows

try:
    from lossreg.losses import probabilistic as P
except ImportError:           # specs() is being rewired by the lead to the rows.py impls;
    # until then probabilistic.py still imports the removed *_forward/_gradient/_value_grad
    # kernels: placeholders let the module (its element functions) import.
    for _name in ("kl_forward kl_gradient kl_value_grad js_forward js_gradient "
                  "js_value_grad ce_forward ce_gradient ce_value_grad softmax_ce_forward "
                  "softmax_ce_gradient softmax_ce_value_grad softmax_ce_label_forward "
                  "softmax_ce_label_gradient softmax_ce_label_value_grad").split():
        setattr(rows, _name, getattr(rows, _name, None))
    from lossreg.losses import probabilistic as P

RNG = np.random.default_rng(20261202)
RTOL_TORCH = 1e-10

# -- element-wise losses --------------------------------------------------------------------

P_EXTREME = np.array([0.0, 1.0, 1e-300, 1e-50, 1e-13, 1e-9, 1 - 1e-9, 1 - 1e-13,
                      1 - 2.0 ** -53, 0.5])
Z_EXTREME = np.array([-1e4, 1e4, -800.0, 800.0, -745.0, 745.0, -40.0, 40.0, -20.0, 20.0,
                      0.0, 1e-10])
TARGETS = [0.0, 1.0, 0.3, 0.85]

# (name, elem, kernel hyperparameters, reference kwargs, torch term weights, logits?)
ELEM_CASES = []
for _alpha in (None, 0.25):
    _a, _b = P._weights_ab(_alpha)
    ELEM_CASES.append(("bce", P.bce_elem, (_a, _b), {"alpha": _alpha}, False))
    for _gamma in (0.0, 1.0, 1.5, 2.0, 3.0):
        ELEM_CASES.append(("focal", P.focal_elem, (_a, _b, _gamma, False),
                           {"alpha": _alpha, "gamma": _gamma}, False))
        ELEM_CASES.append(("sigmoid_focal", P.sigmoid_focal_elem, (_a, _b, _gamma, False),
                           {"alpha": _alpha, "gamma": _gamma}, True))
    for _gamma in (1.5, 2.0):   # the split form (split_terms=True)
        ELEM_CASES.append(("focal", P.focal_split_elem, (_a, _b, _gamma, True),
                           {"alpha": _alpha, "gamma": _gamma, "split_terms": True}, False))
        ELEM_CASES.append(("sigmoid_focal", P.sigmoid_focal_split_elem, (_a, _b, _gamma, True),
                           {"alpha": _alpha, "gamma": _gamma, "split_terms": True}, True))
for _alpha, _pw in ((None, None), (0.25, 3.0)):
    ELEM_CASES.append(("bce_logits", P.bce_logits_elem, P._weights_ab(_alpha, _pw),
                       {"alpha": _alpha, "pos_weight": _pw}, True))

REFERENCE = {"bce": P.bce_reference_hessian, "bce_logits": P.bce_logits_reference_hessian,
             "focal": P.focal_reference_hessian,
             "sigmoid_focal": P.sigmoid_focal_reference_hessian}


def _case_id(case):
    return f"{case[0]}-" + "-".join(f"{v}" for v in case[3].values())


def _inputs(logits):
    if logits:
        x = np.concatenate([Z_EXTREME, RNG.normal(0.0, 4.0, 12)])
    else:
        x = np.concatenate([P_EXTREME, RNG.uniform(1e-3, 1 - 1e-3, 12)])
    y = np.repeat(np.array(TARGETS + list(RNG.random(2))), x.size)
    return y, np.tile(x, y.size // x.size)


def _eval(elem, y, x, hp, dtype=np.float64):
    out = np.array([elem(dtype(a), dtype(b), *hp) for a, b in zip(y, x)])
    return out[:, 0], out[:, 1], out[:, 2]


def _close(ours, ref, rtol):
    same = ours == ref                        # also equal infinities
    err = np.abs(ours - ref) / np.maximum(np.abs(ref), 1e-300)
    return same | (err <= rtol), np.max(np.where(same, 0.0, err), initial=0.0)


@pytest.mark.parametrize("case", ELEM_CASES, ids=_case_id)
def test_elem_hessian_matches_reference_and_is_finite(case):
    name, elem, hp, kwargs, logits = case
    y, x = _inputs(logits)
    for dtype in (np.float64, np.float32):
        yy, xx = y.astype(dtype).astype(np.float64), x.astype(dtype).astype(np.float64)
        if not logits:
            xx = np.clip(xx, 0.0, 1.0)
        _, _, h = _eval(elem, yy, xx, hp, dtype)
        gamma = kwargs.get("gamma", 2.0)
        if not (0.0 < gamma < 1.0):
            assert np.all(np.isfinite(h)), (name, xx[~np.isfinite(h)])
        ok, worst = _close(h, REFERENCE[name](yy, xx, **kwargs), 1e-12)
        assert ok.all(), (name, dtype, worst, xx[~ok], yy[~ok])


@pytest.mark.parametrize("case", ELEM_CASES, ids=_case_id)
def test_elem_hessian_matches_finite_differences_of_the_gradient(case):
    name, elem, hp, kwargs, logits = case
    if logits:
        x = RNG.normal(0.0, 4.0, 30)
        d = np.full_like(x, 1e-3)
    else:                              # away from the 1e-12 bound of BCE's gradient
        x = RNG.uniform(0.02, 0.98, 30)
        d = 1e-3 * np.minimum(x, 1 - x)
    y = RNG.random(30)
    h = _eval(elem, y, x, hp)[2]

    def g(v):
        return _eval(elem, y, v, hp)[1]

    fd = (-g(x + 2 * d) + 8 * g(x + d) - 8 * g(x - d) + g(x - 2 * d)) / (12 * d)
    scale = np.abs(h) + np.abs(g(x)) / np.abs(d) * 1e-12 + 1e-12
    assert np.all(np.abs(fd - h) <= 1e-6 * scale), np.max(np.abs(fd - h) / scale)


def _torch_elem_loss(name, hp, F, torch):
    """The torch expression of each element-wise loss (as in the elem docstrings)."""
    if name == "bce":
        a, b = hp

        def f(y, p):
            return (a * y * F.binary_cross_entropy(p, torch.ones_like(p), reduction="none")
                    + b * (1 - y) * F.binary_cross_entropy(p, torch.zeros_like(p),
                                                           reduction="none"))
    elif name == "bce_logits":
        a, b = hp

        def f(y, z):
            if a == b:
                return a * F.binary_cross_entropy_with_logits(z, y, reduction="none")
            return F.binary_cross_entropy_with_logits(
                z, y, pos_weight=torch.tensor(a / b), reduction="none") * b
    elif name in ("focal", "sigmoid_focal") and not hp[3]:
        a, b, g, _ = hp               # torchvision's form (the default)

        def f(y, x):
            p = torch.sigmoid(x) if name == "sigmoid_focal" else x
            ce = (F.binary_cross_entropy_with_logits(x, y, reduction="none")
                  if name == "sigmoid_focal" else F.binary_cross_entropy(p, y, reduction="none"))
            p_t = p * y + (1 - p) * (1 - y)
            return (a * y + b * (1 - y)) * ce * (1 - p_t) ** g
    elif name == "focal":
        a, b, g, _ = hp

        def f(y, p):
            return (a * y * (1 - p) ** g * F.binary_cross_entropy(p, torch.ones_like(p),
                                                                   reduction="none")
                    + b * (1 - y) * p ** g * F.binary_cross_entropy(p, torch.zeros_like(p),
                                                                    reduction="none"))
    else:
        a, b, g, _ = hp

        def f(y, z):                  # the split form, with logsigmoid
            return (a * y * torch.sigmoid(-z) ** g * -F.logsigmoid(z)
                    + b * (1 - y) * torch.sigmoid(z) ** g * -F.logsigmoid(-z))
    return f


def _torch_exact(name, y, x, hp=()):
    """Points where PyTorch's own double backward is accurate (see the module doc).
    focal in torchvision's form (hp[3] False): torch's 1 - p_t = 1 - (1 - p) at y = 0
    also cancels for p near 0."""
    if name == "focal" and not hp[3]:
        return ~((y > 0.5) & (x > 1 - 1e-6)) & ~((y < 0.5) & (x < 1e-6))
    if name in ("bce", "focal"):
        return ~((y > 0.5) & (x > 1 - 1e-6))
    return (np.abs(x) <= 15.0) | (np.abs(x) >= 745.0)   # beyond 745: both exactly 0


def _torch_hessian_diag(f, y, x, torch):
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    loss = f(torch.tensor(y, dtype=torch.float64), xt).sum()
    (g,) = torch.autograd.grad(loss, xt, create_graph=True)
    (h,) = torch.autograd.grad(g.sum(), xt)
    return h.numpy()


WORST = {}


@pytest.mark.parametrize("case", ELEM_CASES, ids=_case_id)
def test_elem_hessian_matches_torch_double_backward(case):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    name, elem, hp, kwargs, logits = case
    y, x = _inputs(logits)
    if name == "bce_logits" and hp[0] != hp[1] and hp[1] == 0.0:
        pytest.skip("no torch form")
    th = _torch_hessian_diag(_torch_elem_loss(name, hp, F, torch), y, x, torch)
    h = _eval(elem, y, x, hp)[2]
    use = np.isfinite(th) & _torch_exact(name, y, x, hp)   # torch: NaN where pow's 0 * inf
    ok, worst = _close(h[use], th[use], RTOL_TORCH)
    WORST[_case_id(case)] = worst
    assert ok.all(), (worst, x[use][~ok], y[use][~ok], h[use][~ok], th[use][~ok])
    # where torch is NaN (focal, 1 < gamma < 2 at p in {0, 1}) we are finite
    assert np.all(np.isfinite(h[~np.isfinite(th)]))


# -- row losses -----------------------------------------------------------------------------

def _distributions(n, n_classes, zeros):
    t = RNG.dirichlet(np.full(n_classes, 0.7), size=n)
    if zeros:
        t[RNG.random(t.shape) < 0.25] = 0.0
        t[:, 0] += 0.05
        t /= t.sum(axis=1, keepdims=True)
    return t


ROW_CASES = [  # (name, impl, hp, reference, reference kwargs)
    ("kl", rows.kl_impl, (0.0,), P.kl_reference_hessian, {"eps": 0.0}),
    ("kl_eps", rows.kl_impl, (0.05,), P.kl_reference_hessian, {"eps": 0.05}),
    ("js", rows.js_impl, (), P.js_reference_hessian, {}),
    ("ce", rows.ce_impl, (), P.ce_reference_hessian, {}),
]


def _softmax_hp(ls, cw, ignore):
    return (ls, np.zeros(0) if cw is None else np.asarray(cw, dtype=np.float64),
            0 if ignore is None else ignore, ignore is not None)


SOFTMAX_CASES = [  # (labels?, label_smoothing, class_weight?, ignore_index)
    (False, 0.0, False, None), (False, 0.2, True, None),
    (True, 0.0, False, None), (True, 0.2, True, -100),
]


def _call(impl, t, p, w, scale, hp, want, parallel, dtype):
    n, n_classes = p.shape
    v = np.empty(n if "v" in want else 0, dtype)
    g = np.empty((n, n_classes) if "g" in want else (0, 0), dtype)
    h = np.empty((n, n_classes) if "h" in want else (0, 0), dtype)
    bad = impl(t, p, w, scale, v, g, h, parallel, *hp)
    return v, g, h, bad


def _row_inputs(kind, n, n_classes, labels=False):
    if kind == "softmax":
        z = RNG.normal(0.0, 3.0, (n, n_classes))
        z[0, 0] = 700.0
        if labels:
            lab = RNG.integers(0, n_classes, n)
            lab[1 % n] = -100
            return lab, z
        return _distributions(n, n_classes, True), z
    return _distributions(n, n_classes, True), 0.9 * _distributions(n, n_classes, False) \
        + 0.1 / n_classes


@pytest.mark.parametrize("n_classes", [4, 40])        # class-major and row-major softmax blocks
def test_row_outputs_are_bit_identical_across_subsets_and_loops(n_classes):
    n = 1501
    for name, impl, hp, *_ in ROW_CASES[:1] + ROW_CASES[2:3]:
        _identical(impl, *_row_inputs("dist", n, n_classes), hp)
    for labels, ls, cw, ignore in SOFTMAX_CASES:
        impl = rows.softmax_ce_label_impl if labels else rows.softmax_ce_impl
        hp = _softmax_hp(ls, np.linspace(0.5, 2.0, n_classes) if cw else None, ignore)
        _identical(impl, *_row_inputs("softmax", n, n_classes, labels), hp)


def _identical(impl, t, p, hp):
    w = RNG.random(p.shape[0]) + 0.1
    for dtype in (np.float64, np.float32):
        tt = t if t.ndim == 1 else t.astype(dtype)
        pp = p.astype(dtype)
        full = _call(impl, tt, pp, w, 0.25, hp, "vgh", False, dtype)
        for want in ("vgh", "v", "g", "h", "gh"):
            part = _call(impl, tt, pp, w, 0.25, hp, want, True, dtype)
            for k, key in enumerate("vgh"):
                if key in want:
                    assert np.array_equal(full[k], part[k], equal_nan=True), (want, key)
            assert part[3] == full[3]


def _torch_row_hessian(name, t, q, hp, torch):
    F = torch.nn.functional
    tt = torch.tensor(t, dtype=torch.float64)
    qt = torch.tensor(q, dtype=torch.float64, requires_grad=True)
    if name.startswith("kl"):
        loss = (torch.special.xlogy(tt, tt) - torch.special.xlogy(tt, qt)).sum()
    elif name == "js":
        m = (tt + qt) / 2
        loss = 0.5 * (torch.special.xlogy(tt, tt / m) + torch.special.xlogy(qt, qt / m)).sum()
    else:
        loss = -torch.special.xlogy(tt, qt).sum()
    (g,) = torch.autograd.grad(loss, qt, create_graph=True)
    (h,) = torch.autograd.grad(g.sum(), qt)      # separable per element: the diagonal
    return h.numpy()


@pytest.mark.parametrize("case", ROW_CASES, ids=[c[0] for c in ROW_CASES])
def test_row_hessian_elementwise_losses(case):
    name, impl, hp, reference, kwargs = case
    n, n_classes = 9, 5
    t, q = _row_inputs("dist", n, n_classes)
    w = RNG.random(n) + 0.1
    e0 = np.empty(0)
    for dtype in (np.float64, np.float32):
        tt, qq = t.astype(dtype), q.astype(dtype)
        ref = reference(tt, qq, **kwargs)
        h = _call(impl, tt, qq, w, 0.5, hp, "h", False, dtype)[2]
        np.testing.assert_allclose(h, ref * (w[:, None] * 0.5), rtol=1e-6 if dtype ==
                                   np.float32 else 1e-13, atol=0)
    h = _call(impl, t, q, e0, 1.0, hp, "h", False, np.float64)[2]
    np.testing.assert_allclose(h, reference(t, q, **kwargs), rtol=1e-13, atol=0)
    # finite differences of the impl's own gradient (q >= 0.1 / C: eps = 0.05 inactive)
    d = 1e-4 * q

    def g(v):
        return _call(impl, t, v, e0, 1.0, hp, "g", False, np.float64)[1]

    fd = (-g(q + 2 * d) + 8 * g(q + d) - 8 * g(q - d) + g(q - 2 * d)) / (12 * d)
    assert np.all(np.abs(fd - h) <= 1e-7 * (np.abs(h) + 1.0 / q)), np.max(np.abs(fd - h))
    # torch
    torch = pytest.importorskip("torch")
    th = _torch_row_hessian(name, t, q, hp, torch)
    if name == "kl_eps":
        th = np.where(q >= hp[0], th, 0.0)
    if name == "js":        # torch's xlogy(0, 0 / m) has a NaN derivative; the exact 0 here
        assert np.all(h[t == 0] == 0.0)
        th = np.where(t == 0, 0.0, th)
    ok, worst = _close(h, th, RTOL_TORCH)
    WORST["rows-" + name] = worst
    assert ok.all(), worst


def test_row_hessian_edge_values():
    t = np.array([[0.0, 0.5, 0.5, 0.0]])
    q = np.array([[0.0, 0.0, 0.5, 0.5]])
    e0 = np.empty(0)
    kl = _call(rows.kl_impl, t, q, e0, 1.0, (0.0,), "h", False, np.float64)[2]
    js = _call(rows.js_impl, t, q, e0, 1.0, (), "h", False, np.float64)[2]
    ce = _call(rows.ce_impl, t, q, e0, 1.0, (), "h", False, np.float64)[2]
    assert kl.tolist() == [[0.0, np.inf, 2.0, 0.0]]
    assert ce.tolist() == [[0.0, np.inf, 2.0, 0.0]]
    assert js.tolist() == [[0.0, np.inf, 0.5, 0.0]]       # t = q = 0: the right limit 0


def _torch_softmax_hessian(tg, z, ls, cw, ignore, labels, torch):
    F = torch.nn.functional
    out = np.empty_like(z)
    kw = {"label_smoothing": ls, "reduction": "sum"}
    if cw is not None:
        kw["weight"] = torch.tensor(cw)
    if labels and ignore is not None:
        kw["ignore_index"] = ignore
    for i in range(z.shape[0]):
        zi = torch.tensor(z[i:i + 1], requires_grad=True)
        (g,) = torch.autograd.grad(F.cross_entropy(zi, torch.tensor(tg[i:i + 1]), **kw), zi,
                                   create_graph=True)
        for j in range(z.shape[1]):
            (hj,) = torch.autograd.grad(g[0, j], zi, retain_graph=True)
            out[i, j] = hj[0, j].item()
    return out


@pytest.mark.parametrize("case", SOFTMAX_CASES, ids=lambda c: str(c))
@pytest.mark.parametrize("n_classes", [4, 40])
def test_softmax_hessian(case, n_classes):
    labels, ls, use_cw, ignore = case
    impl = rows.softmax_ce_label_impl if labels else rows.softmax_ce_impl
    cw = np.linspace(0.5, 2.0, n_classes) if use_cw else None
    hp = _softmax_hp(ls, cw, ignore)
    n = 7
    t, z = _row_inputs("softmax", n, n_classes, labels)
    if labels and ignore is None:
        t[1] = 0
    kwargs = {"label_smoothing": ls, "class_weight": cw, "ignore_index": ignore}
    e0 = np.empty(0)
    w = RNG.random(n) + 0.1
    for dtype in (np.float64, np.float32):
        tt = t if labels else t.astype(dtype)
        zz = z.astype(dtype)
        h = _call(impl, tt, zz, w, 0.5, hp, "h", False, dtype)[2]
        ref = P.softmax_ce_reference_hessian(tt, zz, **kwargs) * (w[:, None] * 0.5)
        np.testing.assert_allclose(h, ref, rtol=1e-6 if dtype == np.float32 else 1e-13,
                                   atol=1e-300)
    h = _call(impl, t, z, e0, 1.0, hp, "h", False, np.float64)[2]
    if labels and ignore is not None:
        assert np.all(h[1] == 0.0)                          # the ignored row
    zs = z.copy()
    zs[0, 0] = 3.0                                          # FD needs moderate logits
    hs = _call(impl, t, zs, e0, 1.0, hp, "h", False, np.float64)[2]
    d = 1e-3

    def g(v):
        return _call(impl, t, v, e0, 1.0, hp, "g", False, np.float64)[1]

    fd = np.empty_like(zs)
    for j in range(n_classes):                              # diagonal: perturb column j
        step = np.zeros_like(zs)
        step[:, j] = d
        fd[:, j] = ((-g(zs + 2 * step) + 8 * g(zs + step) - 8 * g(zs - step)
                     + g(zs - 2 * step)) / (12 * d))[:, j]
    assert np.all(np.abs(fd - hs) <= 1e-8 + 1e-6 * np.abs(hs))
    torch = pytest.importorskip("torch")
    th = _torch_softmax_hessian(t, z, ls, cw, ignore, labels, torch)
    ok, worst = _close(h, th, RTOL_TORCH)
    WORST[f"softmax-{case}-{n_classes}"] = worst
    assert ok.all(), worst


def test_invalid_label_rows_are_nan():
    z = RNG.normal(size=(3, 4))
    h = _call(rows.softmax_ce_label_impl, np.array([0, 9, 2]), z, np.empty(0), 1.0,
              _softmax_hp(0.0, None, None), "gh", False, np.float64)[2]
    assert np.all(np.isnan(h[1])) and np.all(np.isfinite(h[[0, 2]]))


def test_label_helpers_take_the_parallel_flag():
    labels = np.array([0, 3, -100, 5, 1])
    hp = _softmax_hp(0.0, np.array([1.0, 2.0, 3.0, 4.0]), -100)
    for parallel in (False, True):
        assert rows.softmax_ce_first_invalid(labels, 4, parallel, *hp) == 3
        out = np.empty(5)
        assert rows.softmax_ce_mean_weights(labels, 4, out, parallel, *hp)
        assert out.tolist() == [1.0, 4.0, 0.0, 0.0, 2.0]


def teardown_module(module):
    if WORST:
        print("\nworst relative error vs torch:")
        for key, value in sorted(WORST.items()):
            print(f"  {key}: {value:.3g}")
