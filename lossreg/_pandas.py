"""pandas Series and DataFrame inputs: unwrapped to arrays once per call, results
re-wrapped with y_pred's index (and columns).

lossreg never aligns: a y_true, y_pred or sample_weight whose index differs from the
others' is refused with a ShapeError, because silently aligning (pandas' habit) or
silently ignoring the index (NumPy's) would both compute a loss of mismatched rows.
pandas is never imported here unless a pandas object arrives.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import ShapeError


def is_pandas(x: Any) -> bool:
    return type(x).__module__.partition(".")[0] == "pandas"


def unwrap(y_true: Any, y_pred: Any, sample_weight: Any):
    """``(y_true, y_pred, sample_weight, like)``: pandas objects as NumPy arrays; ``like``
    is y_pred when it is a Series or DataFrame (the template of the results), else None."""
    named = [("y_pred", y_pred), ("y_true", y_true), ("sample_weight", sample_weight)]
    indexed = [(name, x) for name, x in named if is_pandas(x) and hasattr(x, "index")]
    for name, x in indexed[1:]:
        first_name, first = indexed[0]
        if not x.index.equals(first.index):
            raise ShapeError(f"{name} and {first_name} have different indexes "
                             f"({_short(x.index)} vs {_short(first.index)}); lossreg does "
                             f"not align them: reindex one to the other first")
    if all(hasattr(x, "columns") for x in (y_true, y_pred)) and is_pandas(y_true) \
            and is_pandas(y_pred) and not y_true.columns.equals(y_pred.columns):
        raise ShapeError(f"y_true and y_pred have different columns ({list(y_true.columns)} "
                         f"vs {list(y_pred.columns)}); lossreg does not align them")
    like = y_pred if is_pandas(y_pred) and hasattr(y_pred, "index") else None
    convert = (lambda x: x.to_numpy() if is_pandas(x) and hasattr(x, "to_numpy") else x)
    return convert(y_true), convert(y_pred), convert(sample_weight), like


def wrap(result: Any, like: Any) -> Any:
    """``result`` as a Series/DataFrame on ``like``'s index when it has one value per row
    of ``like`` (per-element values and derivatives, or per-row values); else as is."""
    if like is None or not isinstance(result, np.ndarray) or result.ndim == 0:
        return result
    import pandas as pd

    if result.shape == like.shape:
        if isinstance(like, pd.DataFrame):
            return pd.DataFrame(result, index=like.index, columns=like.columns)
        return pd.Series(result, index=like.index, name=like.name)
    if result.ndim == 1 and result.shape[0] == len(like.index):
        return pd.Series(result, index=like.index)
    return result


def _short(index) -> str:
    items = list(index[:3])
    return repr(items)[:-1] + (", ...]" if len(index) > 3 else "]")
