"""The study's analyses, and any a registry adds: each a function `f(ctx) -> AnalysisResult`
marked `@analysis("<id>", order=N)` (analysis/registry.py) with its population in
`sql/<id>.sql`. They are found, not listed: every module of this folder, the
`ptrharmonize.analyses` entry points, and extra folders (a registry folder's `analyses/`,
`run-analysis --analyses DIR`). `ANALYSES` is the package's own, in run order;
`runner.run_analysis` is the entry point. docs/analyses.md "Adding an analysis" shows how."""

from __future__ import annotations

from collections.abc import Callable

from ._common import AnalysisResult, Context
from .registry import analysis, discover

ANALYSES: dict[str, Callable[[Context], AnalysisResult]] = {
    k: a.func for k, a in discover().items()
}

__all__ = ["ANALYSES", "AnalysisResult", "Context", "analysis", "discover"]
