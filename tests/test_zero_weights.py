"""Terms of sample weight 0: the stand-in inputs (lossreg._zero_weights) are valid for
every registered loss, a spec's ``neutral`` replaces them, and the layout is kept (the
value equals the sum of the same terms in their places). No new kernels compiled here
beyond mse's."""

from __future__ import annotations

import math

import numpy as np
import pytest

import lossreg
from lossreg import Domain, Interval
from lossreg._zero_weights import interior, stand_in
from lossreg.errors import PluginError

from .conftest import ALL_NAMES


@pytest.mark.parametrize("name", ALL_NAMES)
def test_stand_ins_lie_in_the_domains(name):
    spec = lossreg.get(name)._plan.spec            # the configured domains
    for argument in ("y_true", "y_pred"):
        domain = spec.domain(argument)
        n_cols = None if spec.layout == "elementwise" else 3
        x = np.atleast_1d(stand_in(spec, argument, n_cols))
        assert all(v in domain.interval and math.isfinite(v) for v in x), (argument, x)
        if domain.integer:
            assert np.all(x == np.floor(x))
        if domain.row_sum is not None and n_cols:
            assert abs(x.sum() - domain.row_sum) <= domain.row_sum_tol


def test_interior_points():
    assert interior(Domain(Interval(0.0, 1.0))) == 0.5
    assert interior(Domain(Interval(0.0, math.inf, closed_low=False))) == 1.0
    assert interior(Domain(Interval(-math.inf, 0.0, closed_low=True))) == -1.0
    assert interior(Domain()) == 0.0
    assert interior(Domain(Interval(-1.0, 1.0), integer=True)) == 0.0
    assert interior(Domain(Interval(1.0, 2.0), integer=True)) == 1.0
    assert interior(Domain(Interval(3.0, 3.0))) == 3.0


def test_a_spec_can_name_its_neutral_term():
    spec = lossreg.spec("mse")
    from dataclasses import replace

    own = replace(spec, neutral=(2.0, -3.0))
    assert stand_in(own, "y_true", None) == 2.0 and stand_in(own, "y_pred", None) == -3.0
    assert np.array_equal(stand_in(own, "y_pred", 3), [-3.0] * 3)
    with pytest.raises(PluginError, match="neutral"):
        replace(spec, neutral=(1.0, math.nan)).validate()


def test_inputs_are_replaced_on_a_copy_and_every_term_keeps_its_place():
    """The caller's arrays are untouched, and every term stays in its reduction chunk:
    the sum over the whole equals the exact sum of the sums over each chunk alone (with
    the zero-weight terms dropped instead, the chunks of the whole would shift)."""
    from lossreg.kernels.reduce import CHUNK

    rng = np.random.default_rng(3)
    n = 2 * CHUNK + 5
    t, p, w = rng.random(n), rng.random(n) * 1e3, rng.random(n)
    w[: CHUNK // 2] = 0.0
    w[CHUNK + 3::7] = 0.0
    p[7] = 1e300                                   # zero weight over a huge term
    t0, p0 = t.copy(), p.copy()
    loss = lossreg.get("mse", reduction="sum")
    v = loss(t, p, w)
    assert np.array_equal(t, t0) and np.array_equal(p, p0)
    pieces = [slice(i, i + CHUNK) for i in range(0, n, CHUNK)]
    assert v == math.fsum(loss(t[s], p[s], w[s]) for s in pieces)
