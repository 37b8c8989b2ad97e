"""The codes of the public methods' operations, shared by ``Loss`` and the element-wise
fast path (``_elementcall``) without importing Numba (``import lossreg`` must not)."""

VALUE, GRAD, VALUE_GRAD, GRAD_HESS, HESS = range(5)
