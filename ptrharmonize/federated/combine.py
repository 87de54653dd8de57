"""The coordinator's side of the one-round analyses: per-center aggregates -> results.json.

Counts are combined by rebuilding, at the coordinator, a table of *pseudo-records* that has
exactly the released counts (per center and group: so many with PTR, so many without...;
no real record, no real value) and running the pooled analysis code of `ptrharmonize.analysis`
on it. The tests, their variants and the results.json entries are therefore those of
`run-analysis` by construction, and equal to the pooled run whenever the per-center counts
are (Table 2 with CMH and Breslow-Day, the yes/no rows of Tables 1 and 3, Figure 3B's
Aalen-Johansen curves and Gray's test from the event counts by time).

Means, SDs and Student's t come from per-center moments (n, mean, M2), combined exactly
(Chan et al.'s pairwise formula); Figure 2B's regression from per-center means and centred
cross-products. Medians, ranges and Mann-Whitney need every value: the federated result
gives each center's median and, as the pooled estimate, the median of the center medians
weighted by the centers' numbers of patients (McGrath et al. 2019, "One-sample aggregate data
meta-analysis of medians", Stat Med 38:969), marked `approximate: true`; the range (each end is
one patient's value) is withheld and the rank tests are refused with the reason.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl
from scipy import stats

from ..analysis import ANALYSES
from ..analysis._common import CRS_GROUPS, CYTOKINES, PTR_GROUPS, TREATMENT_GROUPS, Context
from ..analysis.baseline import CATEGORICAL as BASELINE_BINARY
from ..analysis.baseline import CONTINUOUS as BASELINE_CONTINUOUS
from ..analysis.cart_characteristics import VARIABLES as TABLE3_VARIABLES
from ..analysis.platelet_dose import MEASURES as DOSE_MEASURES
from ..analysis.runner import run_one

MEDIAN_METHOD = (
    "weighted median of the center medians, weights = patients per center "
    "(McGrath et al. 2019, Stat Med 38:969); approximate"
)
RANK_REFUSAL = (
    "Mann-Whitney needs the ranks of every value across centers, which would share row-level "
    "values; refused in federated mode"
)
RANGE_WITHHELD = "minimum and maximum are one patient's value each: withheld"

Released = Mapping[str, Mapping[str, Any]]  # center -> the section as the node released it


class PseudoContext(Context):
    """A Context whose populations are pseudo-records built from released counts."""

    def __init__(self, definitions: dict[str, Any], populations: dict[str, pl.DataFrame]):
        super().__init__(con=None, definitions=definitions)  # type: ignore[arg-type]
        self._pop = populations

    def population(self, analysis_id: str) -> pl.DataFrame:
        return self._pop[analysis_id]


def refusals(parts: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """Center -> reason, for the centers that refused this section."""
    return {c: p["refused"] for c, p in parts.items() if "refused" in p}


def refused(reason: str, centers: Mapping[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    return {"status": "refused", "reason": reason, "centers_refused": dict(centers or {}),
            "test": None, "statistic": None, "p_value": None, **extra}


# --------------------------------------------------------------------------- pseudo-records


def _bools(n_true: int, n_known: int, n_rows: int) -> list[bool | None]:
    return [True] * n_true + [False] * (n_known - n_true) + [None] * (n_rows - n_known)


def _pseudo_values(m: Mapping[str, Any], n_rows: int) -> list[float | None]:
    """Values with exactly the released n, mean and M2 (m +- sqrt(M2/2), the rest at the mean),
    padded with unknowns: every mean, SD and t-test over them is the released one."""
    n = int(m.get("n") or 0)
    if n == 0:
        return [None] * n_rows
    mean, a = float(m["mean"]), math.sqrt(max(float(m["m2"]), 0.0) / 2.0)
    vals = [mean] * n
    if n >= 2:
        vals[0], vals[1] = mean + a, mean - a
    return vals + [None] * (n_rows - n)


def ptr_by_group_population(parts: Released) -> pl.DataFrame:
    rows = []
    for center, p in parts.items():
        for g in TREATMENT_GROUPS:
            c = p[g]
            for flag in _bools(c["ptr"], c["n"], c["n"]):
                rows.append({"center_id": center, "treatment_type": g, "ptr": flag})
    return pl.DataFrame(rows, schema={"center_id": pl.Utf8, "treatment_type": pl.Utf8,
                                      "ptr": pl.Boolean})


def _group_frame(center: str, size: int, columns: dict[str, list[Any]], dtypes: dict) -> pl.DataFrame:
    data = {"center_id": [center] * size, **columns}
    return pl.DataFrame(data, schema={"center_id": pl.Utf8, **dtypes})


# --------------------------------------------------------------------------- analyses


def ptr_by_group(parts: Mapping[str, Mapping[str, Any]], definitions: dict[str, Any]
                 ) -> dict[str, dict[str, Any]]:
    """Table 2 and its CMH/Breslow-Day version, by the pooled analysis code."""
    no = refusals(parts)
    if no:
        r = refused("a center refused its 2x2 table", no)
        return {"ptr_by_group": r, "ptr_by_group_stratified": r}
    released = {c: p["released"] for c, p in parts.items()}
    pop = ptr_by_group_population(released)
    ctx = PseudoContext(definitions, {"ptr_by_group": pop, "ptr_by_group_stratified": pop})
    return {k: run_one(ANALYSES[k], ctx) for k in ("ptr_by_group", "ptr_by_group_stratified")}


def _rows_table(parts: Released, variables: Sequence[str], group_key: str,
                order: Sequence[str], continuous: Sequence[str], doses_top: int | None
                ) -> tuple[pl.DataFrame, dict[str, dict[str, str]]]:
    """Pseudo-records for a table of rows (Table 1 or 3); also the refusals per variable."""
    frames = []
    refused_rows: dict[str, dict[str, str]] = {}
    for center, p in parts.items():
        for var in variables:
            if "refused" in p["rows"][var]:
                refused_rows.setdefault(var, {})[center] = p["rows"][var]["refused"]
    for center, p in parts.items():
        for g in order:
            size = int(p["n"][g])
            cols: dict[str, list[Any]] = {group_key: [g == order[0]] * size}
            dtypes: dict[str, Any] = {group_key: pl.Boolean}
            for var in variables:
                rel = p["rows"][var].get("released")
                if var in continuous:
                    cols[var] = _pseudo_values(rel[g], size) if rel else [None] * size
                    dtypes[var] = pl.Float64
                else:
                    cols[var] = _bools(rel[g]["n"], rel[g]["N"], size) if rel else [None] * size
                    dtypes[var] = pl.Boolean
                if doses_top is not None and var == "tocilizumab":
                    # the patients a center released no dose count for are unknown, never 0
                    # (issue 16), as the pooled run reads them
                    levels = rel[g]["doses"] if rel else []
                    cols["tocilizumab_doses"] = [k for k, c in enumerate(levels) for _ in range(c)]
                    cols["tocilizumab_doses"] += [None] * (size - len(cols["tocilizumab_doses"]))
                    dtypes["tocilizumab_doses"] = pl.Int64
            frames.append(_group_frame(center, size, cols, dtypes))
    return pl.concat(frames) if frames else pl.DataFrame(), refused_rows


def _approx_median(parts: Released, var: str, groups: Sequence[str]) -> dict[str, Any]:
    """Per group: the pooled median estimate from the centers' medians, and those medians."""
    out: dict[str, Any] = {"median": {}, "center_medians": {}}
    for g in groups:
        meds, weights = [], []
        for center, p in parts.items():
            e = p[g]
            out["center_medians"].setdefault(center, {})[g] = e.get("median")
            if e.get("n") and e.get("median") is not None:
                meds.append(float(e["median"]))
                weights.append(int(e["n"]))
        out["median"][g] = weighted_median(meds, weights)
    return out


def weighted_median(values: Sequence[float], weights: Sequence[int]) -> float | None:
    """The smallest value whose cumulative weight reaches half the total; the mean of the two
    middle values when a cumulative weight equals half exactly (as the ordinary median)."""
    if not values:
        return None
    order = np.argsort(values, kind="stable")
    v = np.asarray(values, dtype=float)[order]
    w = np.asarray(weights, dtype=float)[order]
    cum, half = np.cumsum(w), w.sum() / 2.0
    k = int(np.searchsorted(cum, half))
    if math.isclose(cum[k], half) and k + 1 < v.size:
        return float((v[k] + v[k + 1]) / 2.0)
    return float(v[k])


def _continuous_row(row: dict[str, Any], parts: Released, var: str, groups: Sequence[str]
                    ) -> dict[str, Any]:
    """A continuous row of Table 1/3 from pooled moments: exact n, mean, SD (and, for the
    study's Student t rows, the test); median approximate; range withheld."""
    med = _approx_median({c: p["rows"][var]["released"] for c, p in parts.items()}, var, groups)
    for g in groups:
        if isinstance(row.get(g), dict):
            row[g] = {**row[g], "median": med["median"][g], "min": None, "max": None}
    row["center_medians"] = med["center_medians"]
    row["approximate"] = ["median"]
    row["median_method"] = MEDIAN_METHOD
    row["range_withheld"] = RANGE_WITHHELD
    return row


def table_rows(kind: str, parts: Mapping[str, Mapping[str, Any]], definitions: dict[str, Any]
               ) -> dict[str, Any]:
    """Table 1 (`baseline`) or Table 3 (`cart_characteristics`) by the pooled analysis code
    over pseudo-records; rows a center refused are replaced by the refusal."""
    no = refusals(parts)
    if no:
        return refused("a center refused the table's group sizes", no)
    released = {c: p["released"] for c, p in parts.items()}
    if kind == "cart_characteristics":
        variables, order, key, cont = TABLE3_VARIABLES, PTR_GROUPS, "ptr", ("peak_temp_c",)
        top = int(definitions["analysis"]["tocilizumab_max_doses"])
    else:
        variables = (*BASELINE_CONTINUOUS, *BASELINE_BINARY)
        order, key, cont, top = TREATMENT_GROUPS, "car_t", tuple(BASELINE_CONTINUOUS), None
    pop, refused_rows = _rows_table(released, variables, key, order, cont, top)
    if kind == "baseline":
        pop = pop.with_columns(treatment_type=pl.when(pl.col("car_t")).then(pl.lit("car_t"))
                               .otherwise(pl.lit("chemotherapy"))).drop("car_t")
    res = run_one(ANALYSES[kind], PseudoContext(definitions, {kind: pop}))
    rows = []
    for row in res.data.get("rows", []):
        var = row["variable"]
        if var in refused_rows:
            row = {"variable": var, "label": row.get("label"), "kind": row.get("kind"),
                   **refused("a center refused this row", refused_rows[var])}
        elif var in cont:
            row = _continuous_row(row, released, var, order)
            if kind == "baseline":  # Shapiro-Wilk chooses t or Mann-Whitney: needs the values
                row |= {"test": None, "statistic": None, "p_value": None,
                        "test_refused": "the study's rule picks Student t or Mann-Whitney by "
                        "Shapiro-Wilk, which needs every value; refused in federated mode"}
                for k in ("normality", "chosen", "df", "mean_x", "mean_y", "variant"):
                    row.pop(k, None)
        rows.append(row)
    res.data["rows"] = rows
    return res


def medians(kind: str, parts: Mapping[str, Mapping[str, Any]], definitions: dict[str, Any]
            ) -> dict[str, Any]:
    """Figures 1, 2A and 3A: per-center medians, an approximate pooled median, no rank test."""
    del definitions
    no = refusals(parts)
    if no:
        return refused("a center refused its group sizes", no)
    released = {c: p["released"] for c, p in parts.items()}
    if kind == "platelet_dose_by_ptr":
        keys, order = list(DOSE_MEASURES), PTR_GROUPS
    else:
        keys, order = list(CYTOKINES), (CRS_GROUPS if kind == "cytokines_by_crs" else PTR_GROUPS)
    n = {g: sum(p["n"][g] for p in released.values()) for g in order}
    data: dict[str, Any] = {"n": n, "groups_order": list(order)}
    for key in keys:
        no = {c: p[key]["refused"] for c, p in released.items() if "refused" in p[key]}
        if no:
            data[key] = refused("a center refused its medians", no)
            continue
        per = {c: p[key]["released"] for c, p in released.items()}
        med = _approx_median(per, key, order)
        entry = {"test": None, "statistic": None, "p_value": None, "test_refused": RANK_REFUSAL,
                 "n": {g: sum(per[c][g]["n"] for c in per) for g in order},
                 "median": med["median"], "range": {g: [None, None] for g in order},
                 "first_group": order[0], "center_medians": med["center_medians"],
                 "approximate": ["median"], "median_method": MEDIAN_METHOD,
                 "range_withheld": RANGE_WITHHELD}
        if kind == "platelet_dose_by_ptr":
            entry["total"] = {g: float(sum(per[c][g]["total"] for c in per)) for g in order}
        data[key] = entry
    return {"status": "ok", **data}


def pool_comoments(parts: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """n, means and centred sums of squares and cross-products of several groups, pooled
    exactly (Chan, Golub & LeVeque's pairwise update)."""
    n = mx = my = sxx = syy = sxy = 0.0
    for p in parts:
        nb = float(p["n"])
        if nb == 0:
            continue
        dx, dy = p["mean_x"] - mx, p["mean_y"] - my
        tot = n + nb
        sxx += p["sxx"] + dx * dx * n * nb / tot
        syy += p["syy"] + dy * dy * n * nb / tot
        sxy += p["sxy"] + dx * dy * n * nb / tot
        mx += dx * nb / tot
        my += dy * nb / tot
        n = tot
    return {"n": n, "mean_x": mx, "mean_y": my, "sxx": sxx, "syy": syy, "sxy": sxy}


def linear_from_moments(m: Mapping[str, float]) -> dict[str, Any]:
    """`stats.regression.linear` (scipy linregress, R lm) from pooled sufficient statistics."""
    n = int(m["n"])
    df = n - 2
    slope = m["sxy"] / m["sxx"]
    intercept = m["mean_y"] - slope * m["mean_x"]
    r = m["sxy"] / math.sqrt(m["sxx"] * m["syy"]) if m["syy"] > 0 else 0.0
    ssxm, ssym = m["sxx"] / n, m["syy"] / n
    slope_se = math.sqrt(max(1 - r * r, 0.0) * ssym / ssxm / df)
    intercept_se = slope_se * math.sqrt(ssxm + m["mean_x"] ** 2)
    t = slope / slope_se if slope_se > 0 else math.copysign(math.inf, slope)
    return {"test": "linear", "statistic": t, "p_value": float(2 * stats.t.sf(abs(t), df)),
            "slope": slope, "intercept": intercept, "slope_se": slope_se,
            "intercept_se": intercept_se, "r2": r * r, "df": df, "n": n,
            "variant": "OLS, t test of the slope (R lm)"}


def cci_vs_il6(parts: Mapping[str, Mapping[str, Any]], definitions: dict[str, Any]
               ) -> dict[str, Any]:
    del definitions
    no = refusals(parts)
    if no:
        return refused("a center refused its sufficient statistics", no)
    rel = [p["released"] for p in parts.values()]
    m = pool_comoments(rel)
    if m["n"] < 3:
        return {"status": "not_estimable",
                "reason": "fewer than 3 transfusions with a same-day IL-6", "n": int(m["n"])}
    return {**linear_from_moments(m), "n_patients": sum(p["n_patients"] for p in rel),
            "x": "il6_same_day", "y": "cci", "sufficient_statistics": m}


def bleeding_cuminc(parts: Mapping[str, Mapping[str, Any]], definitions: dict[str, Any]
                    ) -> dict[str, Any]:
    """Figure 3B by the pooled code over pseudo-records with the released counts by time."""
    no = refusals(parts)
    if no:
        return refused("a center refused its event table", no)
    status_name = {1: "bleeding", 2: "death", 0: "censored"}
    rows = []
    moved = 0
    for center, p in parts.items():
        for g in PTR_GROUPS:
            e = p["released"][g]
            moved += int(e["moved_to_earlier_time"])
            for t, *counts in e["rows"]:
                for code, c in zip((1, 2, 0), counts, strict=True):
                    rows += [{"center_id": center, "ptr": g == "ptr", "event_time_days": t,
                              "event_type": status_name[code]}] * int(c)
    pop = pl.DataFrame(rows, schema={"center_id": pl.Utf8, "ptr": pl.Boolean,
                                     "event_time_days": pl.Float64, "event_type": pl.Utf8})
    res = run_one(ANALYSES["bleeding_cuminc"],
                  PseudoContext(definitions, {"bleeding_cuminc": pop}))
    res.data["times_coarsened"] = moved
    if moved:
        res.data["approximate"] = ["curves", "cif_at_horizon", "statistic", "p_value"]
        res.data["coarsening"] = (
            f"{moved} patient(s) whose time fell where fewer than the minimum cell count were at "
            "risk were counted at their center's last time with enough at risk")
    return res


def qa(parts: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Every center's rule results, and per rule the registry's totals."""
    rows = [r for p in parts.values() if "released" in p for r in p["released"]["rule_results"]]
    totals: dict[str, dict[str, Any]] = {}
    for r in rows:
        t = totals.setdefault(r["rule_id"], {"rule_id": r["rule_id"], "table": r["table"],
                                              "severity": r["severity"], "checked": 0,
                                              "failed": 0, "centers_failed": 0})
        t["checked"] += int(r["checked"] or 0)
        t["failed"] += int(r["failed"] or 0)
        t["centers_failed"] += int(r["status"] == "failed")
    for t in totals.values():
        t["fraction_failed"] = t["failed"] / t["checked"] if t["checked"] else None
    subs = [r for p in parts.values() if "released" in p
            for r in p["released"].get("submissions", [])]
    collection = [r for p in parts.values() if "released" in p
                  for r in p["released"].get("collection", [])]
    return {"status": "ok", "submissions": subs, "rule_results": rows, "collection": collection,
            "registry": sorted(totals.values(), key=lambda t: t["rule_id"]),
            "centers_refused": refusals(parts)}
