"""Build a design matrix from the inputs the regression functions accept (not public API)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def _columns(X: Any) -> dict[str, np.ndarray] | None:
    """Column mapping for a dict or a polars/pandas DataFrame; None for a plain array."""
    if isinstance(X, Mapping):
        return {str(k): np.asarray(v, dtype=float) for k, v in X.items()}
    columns = getattr(X, "columns", None)
    if columns is not None and not isinstance(X, np.ndarray):
        return {str(c): np.asarray(X[c], dtype=float) for c in columns}
    return None


def design(
    X: Any,
    y: Any,
    names: Sequence[str] | None,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Return (X with a leading intercept column, y, term names), complete cases only.

    ``X`` is a mapping name -> 1-D array, a polars or pandas DataFrame, or a 2-D array (n x p).
    ``y`` is a 1-D 0/1 (or numeric) array, or the name of a column of ``X``.
    ``names`` selects the columns of a mapping/DataFrame (all but ``y`` when None), or labels the
    columns of an array (x1..xp when None). Rows with a missing value in any used column are
    dropped, as R's ``na.omit`` does.
    """
    cols = _columns(X)
    if cols is not None:
        if isinstance(y, str):
            yv = cols[y]
            pool = [k for k in cols if k != y]
        else:
            yv = np.asarray(y, dtype=float)
            pool = list(cols)
        use = list(names) if names is not None else pool
        missing = [k for k in use if k not in cols]
        if missing:
            raise KeyError(f"unknown variable(s): {missing}")
        mat = np.column_stack([cols[k] for k in use]) if use else np.empty((yv.size, 0))
    else:
        mat = np.asarray(X, dtype=float)
        if mat.ndim == 1:
            mat = mat[:, None]
        yv = np.asarray(y, dtype=float)
        use = list(names) if names is not None else [f"x{i + 1}" for i in range(mat.shape[1])]
        if len(use) != mat.shape[1]:
            raise ValueError("names must label every column of X")
    if mat.shape[0] != yv.size:
        raise ValueError("X and y have different numbers of rows")
    keep = ~np.isnan(yv) & ~np.isnan(mat).any(axis=1)
    mat, yv = mat[keep], yv[keep]
    Xd = np.column_stack([np.ones(yv.size), mat])
    return Xd, yv, ["(Intercept)", *use]
