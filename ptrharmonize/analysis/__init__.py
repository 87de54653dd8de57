"""The study's analyses, each a function `f(ctx) -> AnalysisResult` with its population in
`analysis/sql/<id>.sql`. `ANALYSES` is the registry `ptrh run-analysis` runs, in this order;
`runner.run_analysis` is the entry point."""

from __future__ import annotations

from collections.abc import Callable

from ._common import AnalysisResult, Context
from .baseline import baseline
from .bleeding_cuminc import bleeding_cuminc
from .cart_characteristics import cart_characteristics
from .cci_vs_il6 import cci_vs_il6
from .cytokines import cytokines_by_crs, cytokines_by_ptr
from .platelet_dose import platelet_dose_by_ptr
from .ptr_by_group import ptr_by_group, ptr_by_group_stratified
from .ptr_multivariable import ptr_multivariable

ANALYSES: dict[str, Callable[[Context], AnalysisResult]] = {
    "baseline": baseline,
    "ptr_by_group": ptr_by_group,
    "ptr_by_group_stratified": ptr_by_group_stratified,
    "cart_characteristics": cart_characteristics,
    "ptr_multivariable": ptr_multivariable,
    "cytokines_by_crs": cytokines_by_crs,
    "cytokines_by_ptr": cytokines_by_ptr,
    "cci_vs_il6": cci_vs_il6,
    "platelet_dose_by_ptr": platelet_dose_by_ptr,
    "bleeding_cuminc": bleeding_cuminc,
}

__all__ = ["ANALYSES", "AnalysisResult", "Context"]
