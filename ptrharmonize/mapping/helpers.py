"""Intermediate expressions of a source block's plan, computed once as helper columns.

A plan writes the same intermediate many times over: the cleaned text of a column is read by
its recoding, its number, its raw fallback and the test of each; a measurement's unit factor
(a Python lookup per batch) by the scale, the shift and the unit written out. Polars' streaming
engine shares no common subexpressions, so each reference was evaluated again (the cleaned
text of a lab value ~20 times per cell, the unit lookup three times per batch). Kept here, each
is evaluated once into a helper column (`__h<n>`), in levels: a helper is added by the first
`with_columns` after the helpers it reads. The block's final `select` leaves them out, so the
values are the same, computed once (issue 22).
"""

from __future__ import annotations

from collections.abc import Hashable

import polars as pl

PREFIX = "__h"


class Helpers:
    """Helper columns of one plan, by level."""

    def __init__(self) -> None:
        self.levels: list[list[pl.Expr]] = []
        self._level: dict[str, int] = {}
        self._memo: dict[Hashable, pl.Expr] = {}

    def keep(self, expr: pl.Expr, key: Hashable | None = None) -> pl.Expr:
        """`expr` as a helper column (the same one for the same `key`); a constant stays as it is."""
        if key is not None and key in self._memo:
            return self._memo[key]
        roots = expr.meta.root_names()
        if not roots:
            return expr
        level = 1 + max((self._level.get(r, 0) for r in roots), default=0)
        name = f"{PREFIX}{len(self._level)}"
        self._level[name] = level
        while len(self.levels) < level:
            self.levels.append([])
        self.levels[level - 1].append(expr.alias(name))
        out = pl.col(name)
        if key is not None:
            self._memo[key] = out
        return out

    def apply(self, lf: pl.LazyFrame) -> pl.LazyFrame:
        """`lf` with every helper column, level after level."""
        for exprs in self.levels:
            lf = lf.with_columns(exprs)
        return lf


def same(expr: pl.Expr) -> pl.Expr:
    """No helper: the expression as it is (the default of the functions that can keep one)."""
    return expr
