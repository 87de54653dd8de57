"""What every analysis shares: the context it runs in, the shape of its result, its population.

An analysis is a function `f(ctx: Context) -> AnalysisResult`. It reads its population with
`ctx.population("<id>")`, which runs `analysis/sql/<id>.sql` on the connection prepared by the
runner (where `patient_summary` and `transfusion_il6` are the derived views of the store, already
restricted by `--center`/`--since`), calls the statistics of `ptrharmonize.stats`, and returns
the numbers for `results.json`, one table and, where the study drew one, a figure.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any

import duckdb
import numpy as np
import polars as pl

from ..db import frame
from ..stats.categorical import chi2_or_fisher
from ..stats.continuous import describe, mann_whitney

# Group keys used in results.json, tables and figure legends.
PTR_GROUPS = ("ptr", "non_ptr")
TREATMENT_GROUPS = ("car_t", "chemotherapy")
CRS_GROUPS = ("crs_le2", "crs_ge3")
GROUP_LABELS = {
    "ptr": "PTR",
    "non_ptr": "Non-PTR",
    "car_t": "CAR-T",
    "chemotherapy": "Chemotherapy",
    "crs_le2": "CRS grade <= 2",
    "crs_ge3": "CRS grade >= 3",
}
# Peak cytokines: results.json key -> patient_summary column, label.
CYTOKINES = {
    "IL6": ("peak_il6", "IL-6"),
    "IL10": ("peak_il10", "IL-10"),
    "IFNG": ("peak_ifng", "IFN-\u03b3"),
}


def population_sql(analysis_id: str) -> str:
    """The text of the analysis's population SQL (`sql/<analysis_id>.sql` beside its module)."""
    from .registry import _FOUND

    found = _FOUND.get(analysis_id)
    if found is not None and found.population_sql.is_file():
        return found.population_sql.read_text(encoding="utf-8")
    return (files("ptrharmonize.analysis") / "sql" / f"{analysis_id}.sql").read_text(
        encoding="utf-8"
    )


@dataclass
class Context:
    con: duckdb.DuckDBPyConnection
    definitions: dict[str, Any]

    @property
    def mann_whitney(self) -> str:
        """The Mann-Whitney variant in force (`analysis.mann_whitney`, `--mann-whitney`)."""
        return str(self.params.get("mann_whitney", "r"))

    @property
    def gee_corstr(self) -> str:
        """Working correlation of the GEE variants (`analysis.gee_corstr`)."""
        return str(self.params.get("gee_corstr", "exchangeable"))

    @property
    def params(self) -> dict[str, Any]:
        """The `analysis:` section of the definitions in force."""
        return self.definitions["analysis"]

    def population(self, analysis_id: str) -> pl.DataFrame:
        return frame(self.con, population_sql(analysis_id))


@dataclass
class AnalysisResult:
    data: dict[str, Any]
    table: pl.DataFrame
    # Draws the study's figure on a new matplotlib Figure and returns it; None: no figure.
    figure: Callable[[], Any] | None = None
    # Key results for the terminal summary: dicts with label, test, statistic, p_value, n.
    summary: list[dict[str, Any]] = field(default_factory=list)
    # "n = ... (k excluded: reason)" under the table and the figure (analysis/population.py)
    caption: str | None = None


def not_estimable(reason: str, **data: Any) -> AnalysisResult:
    """An analysis the data cannot support (a group empty after filtering, no events, a
    singular design...): `status: not_estimable` and the reason, never an exception."""
    return AnalysisResult(
        data={"status": "not_estimable", "reason": reason, **data},
        table=pl.DataFrame({"status": ["not_estimable"], "reason": [reason]}),
    )


def values(df: pl.DataFrame, column: str, mask: pl.Series | None = None) -> np.ndarray:
    """Non-missing values of a column (optionally of the rows where `mask` is true) as floats."""
    s = df[column] if mask is None else df.filter(mask)[column]
    return s.drop_nulls().cast(pl.Float64).to_numpy()


def split(df: pl.DataFrame, by: str, keys: Sequence[str]) -> dict[str, pl.DataFrame]:
    """Split on a boolean column: keys[0] is the rows where it is true, keys[1] where false.
    Rows where it is null belong to neither group."""
    return {keys[0]: df.filter(pl.col(by)), keys[1]: df.filter(~pl.col(by))}


def count_true(s: pl.Series) -> dict[str, int]:
    """`{n, N}`: patients with the characteristic, patients in whom it is known."""
    known = s.drop_nulls()
    return {"n": int(known.sum()), "N": int(known.len())}


def num(x: Any) -> Any:
    """A value fit for strict JSON: numpy scalars to Python, NaN to None (unknown), and an
    infinite value (an odds ratio under separation, R's Inf) to the string "Infinity" or
    "-Infinity", so it is neither lost as null nor invalid JSON; the entry says why."""
    if isinstance(x, dict):
        return {str(k): num(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [num(v) for v in x]
    if isinstance(x, np.ndarray):
        return [num(v) for v in x.tolist()]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if isinstance(x, float) and math.isnan(x):
        return None
    return x


def testable(x: np.ndarray, y: np.ndarray, min_n: int) -> bool:
    """Both groups have at least `min_n` values and not every value is the same (a rank or
    t-test of identical values is undefined: R returns NA)."""
    return len(x) >= min_n and len(y) >= min_n and np.ptp(np.concatenate([x, y])) > 0


def median_range(x: np.ndarray) -> tuple[float | None, list[float | None]]:
    if len(x) == 0:
        return None, [None, None]
    return float(np.median(x)), [float(np.min(x)), float(np.max(x))]


def as_float(x: Any) -> float | None:
    """A number of results.json as a table cell: a float (an infinite one from "Infinity"),
    None when unknown. Tables keep numbers as numbers; only Markdown formats them."""
    return None if x is None else float(x)


def fmt(x: Any, digits: int = 3) -> str:
    """A number for a table cell: empty when missing, `digits` significant figures otherwise."""
    if x in ("Infinity", "-Infinity"):
        return str(x)
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    if isinstance(x, float) and math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if isinstance(x, (bool, np.bool_)):
        return "yes" if x else "no"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    return f"{float(x):.{digits}g}" if abs(float(x)) < 1e6 else f"{float(x):.{digits}e}"


def fmt_p(p: Any) -> str:
    if p is None or (isinstance(p, float) and not math.isfinite(p)):
        return ""
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def headline(label: str, res: dict[str, Any], n: Any = None) -> dict[str, Any]:
    return {
        "label": label,
        "test": res.get("test"),
        "statistic": res.get("statistic"),
        "p_value": res.get("p_value"),
        "n": n,
    }


def binary_test(a: dict[str, int], b: dict[str, int], min_expected: float) -> dict[str, Any]:
    """Two groups' `{n, N}` compared as a 2x2 table (rows: groups; columns: yes, no) with the
    study's rule: Pearson chi-square without correction when every expected count is at least
    `min_expected`, else Fisher's exact. No test when a group is empty."""
    if a["N"] == 0 or b["N"] == 0:
        return {"test": None, "statistic": None, "p_value": None}
    table = [[a["n"], a["N"] - a["n"]], [b["n"], b["N"] - b["n"]]]
    return dict(chi2_or_fisher(table, min_expected=min_expected))


def compare_medians(
    x: dict[str, np.ndarray], order: Sequence[str], variant: str = "r"
) -> dict[str, Any]:
    """Median (range) and n per group, and the Mann-Whitney U test of `order[0]` vs `order[1]`
    (`statistic` is U of `order[0]`, R's W). No test when a group has no value."""
    out: dict[str, Any] = {"test": None, "statistic": None, "p_value": None}
    if testable(x[order[0]], x[order[1]], 1):
        out = dict(mann_whitney(x[order[0]], x[order[1]], variant=variant))
    out |= {"n": {g: len(x[g]) for g in order}, "median": {}, "range": {}, "first_group": order[0]}
    for g in order:
        out["median"][g], out["range"][g] = median_range(x[g])
    return num(out)


# --------------------------------------------------------------------------- center-aware


def center_ids(df: pl.DataFrame) -> list[str]:
    return sorted({str(c) for c in df["center_id"].drop_nulls().to_list()}) if "center_id" in df.columns else []


def estimable(fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run one center-aware test beside a pooled one: its result, or `{status: not_estimable,
    reason}` when the data cannot support it (the pooled result stands either way)."""
    from ..stats._common import NotEstimable

    try:
        return {"status": "ok", **fn()}
    except NotEstimable as exc:
        return {"status": "not_estimable", "reason": str(exc)}


def cmh_by_center(
    df: pl.DataFrame, row: str, column: str, params: dict[str, Any]
) -> dict[str, Any]:
    """The 2x2 of two boolean columns (rows: `row` true, false; columns: `column` true, false)
    stratified by center: Cochran-Mantel-Haenszel without continuity correction, the MH common
    odds ratio and Breslow-Day (Tarone) for heterogeneity between centers. A center where a
    row or column is empty adds nothing and is listed under `centers_dropped`."""
    from ..stats._common import NotEstimable
    from ..stats.categorical import cmh

    sub = df.filter(pl.col(row).is_not_null() & pl.col(column).is_not_null())
    tables, kept, dropped = [], [], []
    for c in center_ids(sub):
        s = sub.filter(pl.col("center_id") == c)
        r, k = s[row], s[column]
        t = [[int((r & k).sum()), int((r & ~k).sum())], [int((~r & k).sum()), int((~r & ~k).sum())]]
        if min(sum(t[0]), sum(t[1])) == 0:
            dropped.append(c)
        else:
            tables.append(t)
            kept.append(c)

    def run() -> dict[str, Any]:
        if len(kept) < 2:
            raise NotEstimable(
                f"{len(kept)} center(s) with patients in both rows: a test stratified by center "
                "needs at least two (the pooled test is the only one)")
        res = cmh(tables, correct=params["cmh_correct"], confidence=params["confidence"])
        return {**res, "centers": dict(zip(kept, tables, strict=True)), "centers_dropped": dropped,
                "heterogeneity": {"test": "breslow_day_tarone",
                                  "statistic": res.get("breslow_day_statistic"),
                                  "p_value": res.get("breslow_day_p_value")}}

    return estimable(run)


def continuous_by_center(df: pl.DataFrame, group: str, column: str) -> dict[str, Any]:
    """Heterogeneity between centers of a continuous characteristic's group difference: the F
    test of group x center in a linear model (`stats.heterogeneity.interaction_f`, R anova of
    lm(y ~ group * center)); the analogue of Breslow-Day for the categorical rows."""
    from ..stats.heterogeneity import interaction_f

    def run() -> dict[str, Any]:
        sub = df.filter(pl.col(group).is_not_null() & pl.col(column).is_not_null())
        return {"heterogeneity": interaction_f(sub[column].cast(pl.Float64).to_numpy(),
                                               sub[group].cast(pl.Float64).to_numpy(),
                                               sub["center_id"].cast(pl.Utf8).to_list())}

    if "center_id" not in df.columns or len(center_ids(df)) < 2:
        return {"status": "not_estimable", "reason": "one center: nothing to compare"}
    return estimable(run)


def binary_row(df: pl.DataFrame, by: str, groups: dict[str, pl.DataFrame], column: str,
               params: dict[str, Any]) -> dict[str, Any]:
    """A yes/no characteristic of Tables 1 and 3: `{n, N}` per group (`split(df, by, ...)`), the
    study's 2x2 test (`binary_test`) and, where the rows name their center, CMH stratified by
    center beside it (`cmh_by_center`, under `by_center`)."""
    counts = {g: count_true(part[column]) for g, part in groups.items()}
    row = counts | binary_test(*counts.values(), min_expected=params["min_expected"])
    if "center_id" in df.columns:
        row["by_center"] = cmh_by_center(df, by, column, params)
    return row


def continuous_row(groups: dict[str, pl.DataFrame], column: str,
                   test: Callable[[np.ndarray, np.ndarray], Any],
                   order: Sequence[str] | None = None) -> dict[str, Any]:
    """A continuous characteristic of Tables 1 and 3: `describe` of each group's known values and
    `test(first, second)` over the groups in `order` (default: the groups' own order), or no
    test when a group has fewer than two values or every value is the same."""
    x = {g: values(part, column) for g, part in groups.items()}
    first, second = (x[g] for g in (order or list(groups)))
    row: dict[str, Any] = {g: dict(describe(v)) for g, v in x.items()}
    if testable(first, second, 2):
        return row | dict(test(first, second))
    return row | {"test": None, "statistic": None, "p_value": None}


def characteristics_table(rows: list[dict[str, Any]], groups: Sequence[str]) -> pl.DataFrame:
    """Tables 1 and 3 as numbers: per group `n` (with the characteristic, or with a value),
    `N` (known), `pct`, and for continuous rows `mean`, `sd`, `median`, `min`, `max`; the test,
    statistic and p; where present the by-center CMH p and Breslow-Day p."""
    stats_cols = ("mean", "sd", "median", "min", "max")
    out = []
    for r in rows:
        row: dict[str, Any] = {"variable": r["variable"],
                               "characteristic": r["label"] + (f" ({r['unit']})" if r.get("unit") else ""),
                               "kind": r.get("kind", "categorical")}
        for g in groups:
            v = r.get(g) or {}
            if row["kind"] == "continuous":
                row |= {f"{g}_n": v.get("n"), f"{g}_N": v.get("n"), f"{g}_pct": None}
                row |= {f"{g}_{k}": as_float(v.get(k)) for k in stats_cols}
            else:
                n_, big_n = v.get("n"), v.get("N")
                row |= {f"{g}_n": n_, f"{g}_N": big_n,
                        f"{g}_pct": round(100 * n_ / big_n, 1) if big_n else None}
                row |= {f"{g}_{k}": None for k in stats_cols}
        bc = r.get("by_center") or {}
        het = bc.get("heterogeneity") or {}
        row |= {"test": r.get("test"), "statistic": as_float(r.get("statistic")),
                "p_value": as_float(r.get("p_value")),
                "by_center_cmh_p_value": as_float(bc.get("p_value")),
                "breslow_day_p_value": as_float(het.get("p_value"))
                if het.get("test") == "breslow_day_tarone" else None,
                "center_heterogeneity_test": het.get("test"),
                "center_heterogeneity_p_value": as_float(het.get("p_value"))}
        out.append(row)
    schema: dict[str, Any] = {"variable": pl.Utf8, "characteristic": pl.Utf8, "kind": pl.Utf8}
    for g in groups:
        schema |= {f"{g}_n": pl.Int64, f"{g}_N": pl.Int64, f"{g}_pct": pl.Float64}
        schema |= {f"{g}_{k}": pl.Float64 for k in stats_cols}
    schema |= {"test": pl.Utf8, "statistic": pl.Float64, "p_value": pl.Float64,
               "by_center_cmh_p_value": pl.Float64, "breslow_day_p_value": pl.Float64,
               "center_heterogeneity_test": pl.Utf8, "center_heterogeneity_p_value": pl.Float64}
    return pl.DataFrame(out, schema=schema)
