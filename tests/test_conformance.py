"""Every registered loss against its NumPy reference and finite differences.

Parametrized over ``lossreg.names()``: registering a loss is enough to test it.
"""

import numpy as np
import pytest

import lossreg
from lossreg import testing as T
from lossreg.spec import REDUCTIONS

from .conftest import ALL_NAMES

DTYPES = [np.float64, np.float32]


def cases():
    # Losses in reverse order: under ``pytest -n 2 --dist loadfile`` the other worker runs
    # files that walk ALL_NAMES forwards (test_properties, test_bad_input, the bridges) and
    # need the same kernels; walking it backwards here, the two workers meet once instead
    # of compiling the same cold kernels at the same time (~50 s of CPU in a cold run).
    for name in reversed(ALL_NAMES):
        spec = lossreg.spec(name)
        for hyper in T.hyper_cases(spec):
            yield pytest.param(spec, hyper, id=f"{name}-" + (
                ",".join(f"{k}={v}" for k, v in hyper.items()) or "defaults"))


@pytest.mark.parametrize("spec,hyper", list(cases()))
@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_forward_matches_reference(spec, hyper, dtype, reduction):
    T.check_forward(spec, dtype, reduction, hyper)


@pytest.mark.parametrize("spec,hyper", list(cases()))
@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_gradient_matches_finite_differences(spec, hyper, dtype, reduction):
    T.check_gradient(spec, dtype, reduction, hyper)


@pytest.mark.parametrize("spec,hyper", list(cases()))
@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_value_and_grad_and_out(spec, hyper, dtype, reduction):
    T.check_value_and_grad(spec, dtype, reduction, hyper)


@pytest.mark.parametrize("spec,hyper", list(cases()))
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_sample_weight(spec, hyper, reduction):
    T.check_sample_weight(spec, np.float64, reduction, hyper)


@pytest.mark.parametrize("spec,hyper", list(cases()))
@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_hessian_matches_finite_differences_and_reference(spec, hyper, dtype, reduction):
    """Losses with ``has_hessian``: hessian/grad_hess vs finite differences of the
    gradient and ``reference_hessian``; the others must raise LossError."""
    T.check_hessian(spec, dtype, reduction, hyper)
    labelled = T.label_variant(spec)
    if labelled is not None:
        T.check_hessian(labelled, dtype, reduction, hyper)


@pytest.mark.parametrize("spec,hyper", list(cases()))
@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
def test_layouts_noncontiguous_and_serial_path(spec, hyper, dtype):
    T.check_layouts(spec, dtype, hyper)


@pytest.mark.parametrize("spec,hyper", list(cases()))
def test_domain_violations_raise(spec, hyper):
    T.check_domains(spec, hyper)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_metadata_complete(name):
    T.check_metadata(lossreg.spec(name))


@pytest.mark.parametrize("name", ALL_NAMES)
def test_validate_false_gives_same_numbers(name, rng):
    spec = lossreg.spec(name)
    t, p = spec.sample(rng, 200)
    loss = lossreg.get(name)
    a = loss.value_and_grad(t, p)
    b = loss.value_and_grad(t, p, validate=False)
    assert a[0] == b[0]
    np.testing.assert_array_equal(a[1], b[1])


@pytest.mark.parametrize("name", ALL_NAMES)
def test_reductions_consistent(name, rng):
    spec = lossreg.spec(name)
    if set(spec.reductions) != set(REDUCTIONS):
        pytest.skip(f"{name} supports only {spec.reductions}")
    t, p = spec.sample(rng, 300)
    none = lossreg.get(name, reduction="none")(t, p)
    total = lossreg.get(name, reduction="sum")(t, p)
    mean = lossreg.get(name, reduction="mean")(t, p)
    assert total == pytest.approx(float(np.sum(none, dtype=np.float64)), rel=1e-12)
    assert mean == pytest.approx(total / none.size, rel=1e-12)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_reduction_bit_identical_across_thread_counts(name, rng):
    import numba

    spec = lossreg.spec(name)
    t, p = spec.sample(rng, 3 * (1 << 14) + 5)
    results = []
    for n in range(1, numba.config.NUMBA_NUM_THREADS + 1):
        loss = lossreg.get(name, n_threads=n)
        value, grad = loss.value_and_grad(t, p)
        results.append((value, grad.tobytes(), loss(t, p)))
    assert all(r == results[0] for r in results)
