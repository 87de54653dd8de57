"""Small helpers shared by the statistics modules (not public API)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


class NotEstimable(ValueError):
    """The data cannot support the estimate (too few events, an empty group, separation without
    a penalized fit, a singular design). Not a bug: the analysis reports `not_estimable` with
    this message as its reason, and the other analyses still run."""


# R's .Machine$double.eps
DBL_EPSILON = float(np.finfo(float).eps)


def as_table(table: Any) -> np.ndarray:
    """Return a contingency table as a 2-D int64 array, rejecting negative or fractional counts."""
    arr = np.asarray(table, dtype=float)
    if arr.ndim != 2 or min(arr.shape) < 2:
        raise ValueError(
            f"a contingency table needs at least 2 rows and 2 columns, got shape {arr.shape}"
        )
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError("contingency table counts must be finite and non-negative")
    if np.any(arr != np.round(arr)):
        raise ValueError("contingency table counts must be whole numbers")
    if arr.sum() == 0:
        raise NotEstimable("contingency table is empty")
    return arr.astype(np.int64)


def as_vector(x: Any, name: str = "x") -> np.ndarray:
    """Return a 1-D float array with missing values (None/NaN) dropped, as R's na.omit does."""
    arr = np.asarray(x, dtype=float)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    return arr[~np.isnan(arr)]


def fnum(value: float | np.floating | None) -> float | None:
    """Plain Python float (JSON-serialisable); NaN becomes None so the dict is strict JSON."""
    if value is None:
        return None
    v = float(value)
    if math.isnan(v):
        return None
    return v


def zeroin(
    f: Callable[[float], float],
    lower: float,
    upper: float,
    tol: float = DBL_EPSILON**0.25,
    maxiter: int = 1000,
) -> float:
    """Brent's root finder exactly as R's ``uniroot`` (R_zeroin2 in src/library/stats/src/zeroin.c).

    WHY a port instead of scipy.optimize.brentq: R's fisher.test reports the conditional MLE
    found by ``uniroot`` with its default tolerance (about 1.2e-4), so the printed odds ratio
    is R's *iterate*, not the exact root. Reproducing the same iterates is the only way to
    match R's number to more than four digits.
    """
    a, b = lower, upper
    fa, fb = f(a), f(b)
    c, fc = a, fa
    if fa == 0.0:
        return a
    if fb == 0.0:
        return b
    for _ in range(maxiter + 1):
        prev_step = b - a
        if abs(fc) < abs(fb):
            a, b, c = b, c, b
            fa, fb, fc = fb, fc, fb
        tol_act = 2 * DBL_EPSILON * abs(b) + tol / 2
        new_step = (c - b) / 2
        if abs(new_step) <= tol_act or fb == 0.0:
            return b
        if abs(prev_step) >= tol_act and abs(fa) > abs(fb):
            cb = c - b
            if a == c:
                t1 = fb / fa
                p = cb * t1
                q = 1.0 - t1
            else:
                q = fa / fc
                t1 = fb / fc
                t2 = fb / fa
                p = t2 * (cb * q * (q - t1) - (b - a) * (t1 - 1.0))
                q = (q - 1.0) * (t1 - 1.0) * (t2 - 1.0)
            if p > 0:
                q = -q
            else:
                p = -p
            if p < (0.75 * cb * q - abs(tol_act * q) / 2) and p < abs(prev_step * q / 2):
                new_step = p / q
        if abs(new_step) < tol_act:
            new_step = tol_act if new_step > 0 else -tol_act
        a, fa = b, fb
        b += new_step
        fb = f(b)
        if (fb > 0 and fc > 0) or (fb < 0 and fc < 0):
            c, fc = a, fa
    return b


def to_list(arr: np.ndarray | Sequence[Any]) -> list[Any]:
    """Nested Python lists of floats (NaN -> None) for JSON output."""
    a = np.asarray(arr, dtype=float)
    if a.ndim == 0:
        return fnum(a)  # type: ignore[return-value]
    return [to_list(row) if a.ndim > 1 else fnum(row) for row in a]
