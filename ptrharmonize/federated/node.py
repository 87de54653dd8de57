"""What a node computes over its own store: aggregates only, each through the disclosure checks.

Every function here reads the populations of `run-analysis` (`analysis/sql/<id>.sql`, through
`analysis._common.Context`) on a connection prepared by `analysis.runner.open_store` (the
center's store, read-only, with the derived views and the definitions sent by the
coordinator), so a node computes exactly what the pooled run computes for its patients; it
returns counts, sums and moments, or `{"refused": reason}`. Nothing here knows about vantage6.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from ..analysis._common import CRS_GROUPS, CYTOKINES, PTR_GROUPS, TREATMENT_GROUPS, Context, split
from ..analysis.baseline import CATEGORICAL as BASELINE_BINARY
from ..analysis.baseline import CONTINUOUS as BASELINE_CONTINUOUS
from ..analysis.bleeding_cuminc import STATUS
from ..analysis.cart_characteristics import VARIABLES as TABLE3_VARIABLES
from ..analysis.platelet_dose import MEASURES as DOSE_MEASURES
from ..db import frame, scalar
from .disclosure import Policy, Refused, guarded
from .populations import node_populations

# --------------------------------------------------------------------------- building blocks


def binary_counts(s: pl.Series) -> dict[str, int]:
    """`{n, N}` as `analysis._common.count_true`: with the characteristic, known."""
    known = s.drop_nulls()
    return {"n": int(known.sum()), "N": int(known.len())}


def binary_row(groups: dict[str, pl.DataFrame], var: str, policy: Policy) -> dict[str, Any]:
    """Per group `{n, N}` of a yes/no variable; the cells yes, no and unknown checked."""
    out = {g: binary_counts(df[var]) for g, df in groups.items()}
    cells = []
    for g, c in out.items():
        cells += [c["n"], c["N"] - c["n"], groups[g].height - c["N"]]
    policy.counts(f"{var}: 2x2 table", cells)
    return out


def moments(x: np.ndarray, policy: Policy, what: str) -> dict[str, Any]:
    """n, mean and the sum of squared deviations (M2): what a pooled mean, SD and t-test need
    (combined exactly by `combine.pool_moments`)."""
    n = int(x.size)
    if n == 0:
        return {"n": 0, "mean": None, "m2": None}
    policy.patients(what, n)
    mean = float(np.mean(x))
    return {"n": n, "mean": mean, "m2": float(np.sum((x - mean) ** 2))}


def median_of(x: np.ndarray, policy: Policy, what: str) -> dict[str, Any]:
    """The center's median (released over at least min_count patients; never min or max, which
    are one patient's value)."""
    n = int(x.size)
    if n == 0:
        return {"n": 0, "median": None}
    policy.patients(what, n)
    return {"n": n, "median": float(np.median(x))}


def continuous_row(groups: dict[str, pl.DataFrame], var: str, policy: Policy) -> dict[str, Any]:
    """Per group: moments (exact pooling) and the center's median (approximate pooling)."""
    return {g: {**moments(_values(df, var), policy, f"{var} ({g})"),
                "median": median_of(_values(df, var), policy, f"{var} ({g})")["median"]}
            for g, df in groups.items()}


def medians_row(groups: dict[str, pl.DataFrame], column: str, key: str, policy: Policy
                ) -> dict[str, Any]:
    return {g: median_of(_values(df, column), policy, f"{key} ({g})") for g, df in groups.items()}


def dose_row(groups: dict[str, pl.DataFrame], var: str, top: int, policy: Policy
             ) -> dict[str, Any]:
    """Tocilizumab: any use per group, and the patients at 0, 1, ..., >= top doses."""
    out = binary_row(groups, var, policy)
    for g, df in groups.items():
        d = df["tocilizumab_doses"].drop_nulls().clip(upper_bound=top).to_list()
        out[g]["doses"] = [d.count(k) for k in range(top + 1)]
        policy.counts("tocilizumab doses", out[g]["doses"])
    return out


def _values(df: pl.DataFrame, column: str) -> np.ndarray:
    return df[column].drop_nulls().cast(pl.Float64).to_numpy()


def _sizes(groups: dict[str, pl.DataFrame], policy: Policy, what: str) -> dict[str, int]:
    n = {g: df.height for g, df in groups.items()}
    policy.counts(f"{what}: group sizes", n.values())
    return n


# --------------------------------------------------------------------------- per analysis


def ptr_by_group(ctx: Context, policy: Policy) -> dict[str, Any]:
    """Table 2 and its stratified version: the center's 2x2 (treatment x PTR)."""
    df = ctx.population("ptr_by_group")
    out = {}
    for g in TREATMENT_GROUPS:
        sub = df.filter(pl.col("treatment_type") == g)
        out[g] = {"ptr": int(sub["ptr"].sum()), "n": sub.height}
    policy.counts("PTR by treatment: 2x2 table",
                  [c for v in out.values() for c in (v["ptr"], v["n"] - v["ptr"])])
    return out


def cart_characteristics(ctx: Context, policy: Policy) -> dict[str, Any]:
    """Table 3 rows: counts per group for the yes/no rows, dose levels of tocilizumab, moments
    (and the center's median) of peak temperature. Each row released or refused on its own."""
    df = ctx.population("cart_characteristics")
    groups = split(df, "ptr", PTR_GROUPS)
    n = _sizes(groups, policy, "Table 3")
    top = int(ctx.params["tocilizumab_max_doses"])
    rows: dict[str, Any] = {}
    for var in TABLE3_VARIABLES:
        if var == "peak_temp_c":
            rows[var] = guarded(continuous_row, groups, var, policy)
        elif var == "tocilizumab":
            rows[var] = guarded(dose_row, groups, var, top, policy)
        else:
            rows[var] = guarded(binary_row, groups, var, policy)
    return {"n": n, "rows": rows}


def baseline(ctx: Context, policy: Policy) -> dict[str, Any]:
    """Table 1: counts of the yes/no rows; moments and medians of the continuous ones."""
    df = ctx.population("baseline").with_columns(car_t=pl.col("treatment_type") == "car_t")
    groups = split(df, "car_t", TREATMENT_GROUPS)
    n = _sizes(groups, policy, "Table 1")
    rows: dict[str, Any] = {}
    for var in BASELINE_CONTINUOUS:
        rows[var] = guarded(continuous_row, groups, var, policy)
    for var in BASELINE_BINARY:
        rows[var] = guarded(binary_row, groups, var, policy)
    return {"n": n, "rows": rows}


def _medians_by(df: pl.DataFrame, by: str, order: Sequence[str], columns: dict[str, str],
                policy: Policy, what: str) -> dict[str, Any]:
    groups = split(df, by, order)
    n = _sizes(groups, policy, what)
    out: dict[str, Any] = {"n": n}
    for key, column in columns.items():
        out[key] = guarded(medians_row, groups, column, key, policy)
    return out


def cytokines_by_crs(ctx: Context, policy: Policy) -> dict[str, Any]:
    df = ctx.population("cytokines_by_crs").with_columns(crs_le2=~pl.col("crs_grade_3plus"))
    return _medians_by(df, "crs_le2", CRS_GROUPS, {k: c for k, (c, _) in CYTOKINES.items()},
                       policy, "cytokines by CRS")


def cytokines_by_ptr(ctx: Context, policy: Policy) -> dict[str, Any]:
    return _medians_by(ctx.population("cytokines_by_ptr"), "ptr", PTR_GROUPS,
                       {k: c for k, (c, _) in CYTOKINES.items()}, policy, "cytokines by PTR")


def platelet_dose_by_ptr(ctx: Context, policy: Policy) -> dict[str, Any]:
    df = ctx.population("platelet_dose_by_ptr")
    out = _medians_by(df, "ptr", PTR_GROUPS, {k: c for k, (c, _) in DOSE_MEASURES.items()},
                      policy, "platelet dose")
    groups = split(df, "ptr", PTR_GROUPS)
    for key, (column, _label) in DOSE_MEASURES.items():
        if "released" in out[key]:
            for g in PTR_GROUPS:  # the total is a sum over >= min_count patients: exact
                out[key]["released"][g]["total"] = float(_values(groups[g], column).sum())
    return out


def cci_vs_il6(ctx: Context, policy: Policy) -> dict[str, Any]:
    """Figure 2B: n, means and centred cross-products of (IL-6, CCI): the sufficient statistics
    of least squares (pooled exactly by `combine.pool_comoments`)."""
    df = ctx.population("cci_vs_il6").drop_nulls(["cci", "il6_same_day"])
    x = df["il6_same_day"].cast(pl.Float64).to_numpy()
    y = df["cci"].cast(pl.Float64).to_numpy()
    n = int(x.size)
    if n == 0:  # none at this center (e.g. storage times or cytokines not collected): a zero
        return {"n": 0, "n_patients": 0, "mean_x": 0.0, "mean_y": 0.0, "sxx": 0.0, "syy": 0.0,
                "sxy": 0.0}
    n_patients = df.select(pl.struct("center_id", "patient_id").n_unique()).item()
    policy.patients("CCI vs IL-6", n_patients)
    mx, my = float(x.mean()), float(y.mean())
    return {"n": n, "n_patients": int(n_patients), "mean_x": mx, "mean_y": my,
            "sxx": float(np.sum((x - mx) ** 2)), "syy": float(np.sum((y - my) ** 2)),
            "sxy": float(np.sum((x - mx) * (y - my)))}


def event_table(time: np.ndarray, status: np.ndarray, policy: Policy, what: str
                ) -> tuple[list[list[float]], int]:
    """Counts by distinct time: `[time, bleeding, death, censored]`, released only at times
    where at least min_count of the group are at risk. Patients whose time falls in the tail
    (fewer at risk) are moved back to the last time that had enough at risk (their events and
    censorings counted there), which changes the estimate: the number moved is returned, and
    the coordinator marks the result approximate when it is not 0. A group with fewer than
    min_count patients is refused; an empty group releases nothing (a zero, as every count of
    0 is released), and is not a refusal."""
    if time.size == 0:
        return [], 0
    policy.patients(what, int(time.size))
    times = np.unique(time)
    at_risk = np.array([(time >= t).sum() for t in times])
    ok = times[at_risk >= policy.min_count]
    last_ok = float(ok.max())
    moved = int((time > last_ok).sum())
    t_rel = np.where(time > last_ok, last_ok, time)
    rows = []
    for t in np.unique(t_rel):
        at = t_rel == t
        rows.append([float(t)] + [int((status[at] == k).sum()) for k in (1, 2, 0)])
    return rows, moved


def bleeding_cuminc(ctx: Context, policy: Policy) -> dict[str, Any]:
    """Figure 3B: per group, the counts of bleeding, death and censoring at each time."""
    df = ctx.population("bleeding_cuminc").with_columns(
        status=pl.col("event_type").replace_strict(STATUS, default=None))
    if df["status"].null_count():
        raise ValueError("patient_summary.event_type has unknown values")
    out: dict[str, Any] = {}
    for g, sub in split(df, "ptr", PTR_GROUPS).items():
        rows, moved = event_table(sub["event_time_days"].cast(pl.Float64).to_numpy(),
                                  sub["status"].to_numpy(), policy, f"bleeding ({g})")
        out[g] = {"rows": rows, "moved_to_earlier_time": moved, "n": sub.height}
    return out


def qa(ctx: Context, policy: Policy) -> dict[str, Any]:
    """The center's active submissions (dates, status, issue and row counts) and their rule
    results (records checked and failed per rule): counts only, no values, no row numbers,
    no file names (docs/scale.md). Released as they are: they count records failing a data
    check, not patients with a clinical attribute."""
    del policy
    con = ctx.con
    has = scalar(con, "SELECT count(*) FROM duckdb_tables() WHERE database_name = 'store' "
                 "AND table_name IN ('rule_results', 'submissions')")
    if has < 2:
        return {"rule_results": [], "submissions": []}
    subs = frame(con, """
        SELECT submission_id, center_id, CAST(submitted_at AS VARCHAR) AS submitted_at, status,
               n_errors, n_warnings, CAST(row_counts AS VARCHAR) AS row_counts
        FROM store.submissions WHERE status = 'active' ORDER BY center_id, submitted_at""")
    df = frame(con, """
        SELECT r.submission_id, r.center_id, r.rule_id, r."table", r.category, r.severity,
               r.checked, r.failed, r.threshold, r.status, r.reason
        FROM store.rule_results r JOIN store.submissions s USING (submission_id)
        WHERE s.status = 'active' ORDER BY r.center_id, r.rule_id""")
    # what the center collects (issue 16): tables and columns submitted, absent from its files
    # or declared not collected in its mapping; no patient in it
    has_collection = scalar(con, "SELECT count(*) FROM duckdb_tables() WHERE database_name = "
                            "'store' AND table_name = 'collection'")
    collection = frame(con, """
        SELECT k.submission_id, k.center_id, k."table", k."column", k.collected, k.how
        FROM store.collection k JOIN store.submissions s USING (submission_id)
        WHERE s.status = 'active' ORDER BY k.center_id, k."table", k."column" NULLS FIRST
        """).to_dicts() if has_collection else []
    return {"submissions": subs.to_dicts(),
            "rule_results": [{k: (None if isinstance(v, float) and math.isnan(v) else v)
                              for k, v in r.items()} for r in df.to_dicts()],
            "collection": collection}


SECTIONS = {
    "qa": qa,
    "baseline": baseline,
    "ptr_by_group": ptr_by_group,
    "cart_characteristics": cart_characteristics,
    "cytokines_by_crs": cytokines_by_crs,
    "cytokines_by_ptr": cytokines_by_ptr,
    "cci_vs_il6": cci_vs_il6,
    "platelet_dose_by_ptr": platelet_dose_by_ptr,
    "bleeding_cuminc": bleeding_cuminc,
    "population": node_populations,
}


def summary(ctx: Context, policy: Policy, sections: Sequence[str] | None = None) -> dict[str, Any]:
    """Every one-round aggregate of the study, each section released or refused."""
    out = {}
    for name in sections or SECTIONS:
        try:
            out[name] = {"released": SECTIONS[name](ctx, policy)}
        except Refused as exc:
            out[name] = {"refused": str(exc)}
    return out


# --------------------------------------------------------------------------- regression


def _glm_check(X: np.ndarray, y: np.ndarray, model: Sequence[str], policy: Policy) -> None:
    """DataSHIELD-style checks of a logistic model: enough complete cases, few enough
    parameters, and every cell of outcome x binary covariate 0 or >= min_count (the gradient
    and information at the start reveal those cells)."""
    n = int(y.size)
    if n == 0:
        return
    policy.patients("logistic regression", n)
    if X.shape[1] > policy.glm_max_ratio * n:
        raise Refused(f"logistic regression: {X.shape[1]} parameters for {n} complete cases "
                      f"(at most {policy.glm_max_ratio:g} x n)")
    policy.counts("logistic regression: outcome", [int(y.sum()), int(n - y.sum())])
    for j, var in enumerate(model, start=1):
        col = X[:, j]
        if np.all((col == 0) | (col == 1)):
            cells = [int(((col == a) & (y == b)).sum()) for a in (0, 1) for b in (0, 1)]
            policy.counts(f"logistic regression: {var} x outcome", cells)


def sym3_indices(k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index arrays of the entries j <= k <= l of a symmetric k x k x k array."""
    idx = [(a, b, c) for a in range(k) for b in range(a, k) for c in range(b, k)]
    return tuple(np.array(i, dtype=int) for i in zip(*idx, strict=True))  # type: ignore[return-value]


def glm_parts(ctx: Context, policy: Policy, requests: Sequence[Mapping[str, Any]]
              ) -> list[dict[str, Any]]:
    """For each request `{model, complete_cases, beta, firth}`: over the center's patients of
    `sql/ptr_multivariable.sql` with the outcome and every `complete_cases` variable known,
    the log-likelihood, gradient X'(y - p) and information X'WX of the logistic model at
    `beta` (intercept first); with `firth`, also T[j,k,l] = sum_i w_i (1/2 - p_i) x_ij x_ik x_il,
    from which the coordinator gets the Firth score's hat-value term exactly,
    sum_i x_ij h_i (1/2 - p_i) = sum_kl T[j,k,l] A[k,l] with A the pooled inverse information
    (h_i = w_i x_i' A x_i, the hat values with the pooled information). Sums only."""
    df = ctx.population("ptr_multivariable")
    out: list[dict[str, Any]] = []
    checked: dict[tuple, str | None] = {}
    for req in requests:
        model, cc = list(req["model"]), list(req["complete_cases"])
        for v in {*model, *cc}:
            if v not in df.columns:
                raise ValueError(f"{v!r} is not a column of sql/ptr_multivariable.sql")
        sub = df.select(*dict.fromkeys([*cc, *model, "ptr"])).drop_nulls()
        X = np.column_stack([np.ones(sub.height)]
                            + [sub[v].cast(pl.Float64).to_numpy() for v in model])
        y = sub["ptr"].cast(pl.Float64).to_numpy()
        key = (tuple(model), tuple(cc))
        if key not in checked:
            try:
                _glm_check(X, y, model, policy)
                checked[key] = None
            except Refused as exc:
                checked[key] = str(exc)
        if checked[key] is not None:
            out.append({"refused": checked[key]})
            continue
        beta = np.asarray(req["beta"], dtype=float)
        eta = X @ beta
        p = 1.0 / (1.0 + np.exp(-eta))
        w = p * (1.0 - p)
        k = X.shape[1]
        part = {"n": int(y.size), "events": int(y.sum()),
                "loglik": float(np.sum(y * eta - np.logaddexp(0.0, eta))),
                "grad": (X.T @ (y - p)).tolist(),
                # symmetric: the upper triangle only (unpacked by logistic.unpack_info)
                "info": (X.T @ (X * w[:, None]))[np.triu_indices(k)].tolist()}
        if req.get("firth"):
            T = np.einsum("i,ij,ik,il->jkl", w * (0.5 - p), X, X, X)
            part["T"] = T[sym3_indices(k)].tolist()  # fully symmetric: j <= k <= l only
        out.append(part)
    return out
