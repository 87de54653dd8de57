"""`ptrh run-analysis`: the analyses on a real DuckDB store.

Two kinds of store:

- A store whose derived relations (`patient_summary`, `transfusion_il6`) are TABLES written by
  hand with known data: the published categorical counts of the study (15/26 vs 3/18, Table 3,
  CRS 2/10 vs 12/15), and continuous values given by formulas (below), so that every number of
  every analysis is known. The analyses are run on it with `runner.run_analyses`.
- A store made by the real pipeline (validate + ingest of the hand-made canonical extract of
  tests/extract_factory.py, twice, as two centers), to run `run_analysis` end to end through
  `derive.install_views`, with --center/--since/--config and the CLI.

R reference values (R 4.x, cmprsk 2.2) were computed on the hand-made data written to CSV by
`_frames()` (patient_summary.csv, transfusion_il6.csv), with:

    ps <- read.csv("patient_summary.csv"); sub <- ps[ps$treatment_type == "car_t" & ps$has_cytokines == "true", ]
    ptr <- sub$ptr == "true"
    wilcox.test(sub$peak_il6[ptr], sub$peak_il6[!ptr])                      # W, p
    crs3 <- sub$crs_grade_3plus == "true"
    wilcox.test(sub$peak_ifng[!crs3], sub$peak_ifng[crs3])                   # W, p
    t.test(sub$peak_temp_c[!ptr], sub$peak_temp_c[ptr], var.equal = TRUE)    # t, p
    tr <- read.csv("transfusion_il6.csv"); summary(lm(cci ~ il6_same_day, data = tr))
    library(cmprsk); st <- c(censored = 0, bleeding = 1, death = 2)[sub$event_type]
    fit <- cuminc(sub$event_time_days, st, ifelse(ptr, "ptr", "non_ptr")); fit$Tests; timepoints(fit, 30)
    all <- ps[!is.na(ps$ptr), ]; x <- table(factor(all$treatment_type, c("car_t", "chemotherapy")),
        factor(all$ptr, c("true", "false")), all$center_id); mantelhaen.test(x, correct = FALSE)
"""

from __future__ import annotations

import datetime as dt
import json
import math
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest

from ptrharmonize.analysis import ANALYSES
from ptrharmonize.analysis.runner import run_analyses, run_analysis
from ptrharmonize.cdm import deep_merge, load_definitions
from ptrharmonize.errors import UserError
from ptrharmonize.stats.competing import cuminc
from ptrharmonize.stats.continuous import mann_whitney, student_t
from ptrharmonize.stats.regression import linear
from ptrharmonize.store import create_schema

sys.path.insert(0, str(Path(__file__).parent))

REL = 1e-6

# ----------------------------------------------------------------------------- hand-made data
# CAR-T subgroup with cytokine data: 14 PTR (p0..p13), 11 non-PTR (n0..n10), the study's counts.
PTR_N, NON_N = 14, 11
TRUE_IN = {  # variable -> (indices true among PTR, indices true among non-PTR)
    "cr": (range(9), range(9)),
    "corticosteroid": ((0, 2, 4, 6, 8, 10, 12), (0, 5)),
    "infection": ((1, 2, 3, 5, 7, 9, 11, 13), (1, 6)),
    "neutrophil_improvement_30d": (range(2, 10), range(5, 11)),
    "neutrophil_recovery_90d": (range(5, 14), range(1, 11)),
    "platelet_improvement_30d": (range(10, 14), (0, 5, 8)),
    "platelet_recovery_90d": (range(4, 10), range(10)),
    "crs_grade_3plus": (range(12), range(3)),
    "bleeding_grade_3plus_30d": (range(3), ()),
}
TOCI_DOSES = ([1, 1, 2, 2, 2, 2, 0, 1, 2, 0, 1, 2, 0, 0], [2, 2, 0, 0, 1, 0, 2, 0, 0, 2, 0])


def _cart_rows() -> list[dict]:
    rows = []
    for group, size in (("p", PTR_N), ("n", NON_N)):
        is_ptr = group == "p"
        for i in range(size):
            k = i if is_ptr else i + PTR_N  # 0..24
            r = {
                "center_id": "A" if k % 2 == 0 else "B",
                "patient_id": f"{group}{i}",
                "treatment_type": "car_t",
                "ptr": is_ptr,
                "has_cytokines": True,
                # formulas, so R can rebuild the same values (see the module docstring)
                "peak_il6": round((900.0 if is_ptr else 150.0) * 1.37 ** i, 2),
                "peak_il10": round((60.0 if is_ptr else 40.0) * 1.21 ** i, 2),
                "peak_ifng": round((400.0 if is_ptr else 20.0) * 1.29 ** i, 2),
                "peak_temp_c": round((39.2 if is_ptr else 38.9) + 0.15 * ((i * 7) % 9 - 4), 2),
                "plt_units_until_recovery": float((40 if is_ptr else 25) + 9 * i),
                "plt_dose_e11_until_recovery": round(((40 if is_ptr else 25) + 9 * i) * 0.25, 2),
                "tocilizumab_doses": TOCI_DOSES[0 if is_ptr else 1][i],
            }
            r["tocilizumab"] = r["tocilizumab_doses"] > 0
            # day 0 = infusion; PTR patient i became refractory on day 5 + i (the transfusion
            # completing the rule), so of the three PTR bleeds (days 3, 7, 11) the first came
            # before its patient's PTR onset (day 5) and the others after (days 6, 7)
            r["index_date"] = dt.date(2020, 1, 1)
            r["ptr_onset_at"] = dt.datetime(2020, 1, 6 + i, 10, 30) if is_ptr else None
            for var, (ptr_idx, non_idx) in TRUE_IN.items():
                r[var] = i in (ptr_idx if is_ptr else non_idx)
            r["crs_grade"] = 3 if r["crs_grade_3plus"] else 1
            # competing events within 30 days: 3 grade 3-4 bleeds and one death among PTR,
            # one death among non-PTR, everyone else censored at day 30
            if is_ptr and i < 3:
                r["event_type"], r["event_time_days"] = "bleeding", float(3 + 4 * i)
            elif (is_ptr and i == 3) or (not is_ptr and i == 0):
                r["event_type"], r["event_time_days"] = "death", 18.0 if is_ptr else 25.0
            else:
                r["event_type"], r["event_time_days"] = "censored", 30.0
            rows.append(r)
    return rows


def _frames() -> tuple[pl.DataFrame, pl.DataFrame]:
    cart = _cart_rows()
    extra = []
    # the CAR-T patient with PTR but no cytokine data: in Tables 1-2, in no CAR-T subgroup
    extra.append({"center_id": "A", "patient_id": "x0", "treatment_type": "car_t", "ptr": True,
                  "has_cytokines": False})
    # 18 chemotherapy patients, 3 with PTR
    for i in range(18):
        extra.append({"center_id": "A" if i % 3 else "B", "patient_id": f"c{i}",
                      "treatment_type": "chemotherapy", "ptr": i < 3, "has_cytokines": False})
    rows = cart + extra
    for k, r in enumerate(rows):  # Table 1 characteristics, by formula
        r["age_years"] = 15 + (k * 17) % 52
        r["sex"] = "M" if (k * 5) % 11 < 5 else "F"
        r["bsa_m2"] = round(1.45 + 0.02 * ((k * 13) % 23), 3)
        r["bm_blast_pct"] = float((k * 29) % 97)
        r["n_relapses"] = (k * 3) % 4
        r["disease_status"] = "relapsed" if k % 4 else "primary_refractory"
        r["prior_allo_hsct"] = k % 5 == 0
        r["extramedullary"] = k % 6 == 0
        r.setdefault("infection", k % 3 == 0)
    ps = pl.DataFrame(rows, infer_schema_length=None)
    # transfusions of the CAR-T subgroup with an IL-6 the same day: CCI falls with IL-6
    tr = []
    for k, r in enumerate(cart):
        for j in range(2):
            il6 = round(100.0 + 37.0 * ((k * 11 + j * 5) % 31) ** 1.5, 2)
            cci = round(9000.0 - 0.9 * il6 + 2500.0 * math.sin(k + 3 * j), 1)
            tr.append({"center_id": r["center_id"], "patient_id": r["patient_id"],
                       "transfusion_id": f"{r['patient_id']}-t{j}", "cci": cci, "il6_same_day": il6})
    return ps, pl.DataFrame(tr)


@pytest.fixture(scope="module")
def derived_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DuckDB store: the CDM schema (empty) plus hand-made derived tables."""
    path = tmp_path_factory.mktemp("store") / "registry.duckdb"
    ps, tr = _frames()
    con = duckdb.connect(str(path))
    create_schema(con)
    con.register("ps_df", ps.to_arrow())
    con.register("tr_df", tr.to_arrow())
    con.execute("CREATE TABLE patient_summary AS SELECT * FROM ps_df").fetchall()
    con.execute("CREATE TABLE transfusion_il6 AS SELECT * FROM tr_df").fetchall()
    con.close()
    return path


@pytest.fixture(scope="module")
def results(derived_store: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("results")
    con = duckdb.connect(str(derived_store), read_only=True)
    try:
        res = run_analyses(con, load_definitions(), out, submissions=[{"submission_id": "s1"}])
    finally:
        con.close()
    res["_out"] = out
    return res


def _close(got: float, want: float, rel: float = REL) -> bool:
    return math.isclose(got, want, rel_tol=rel, abs_tol=1e-12)


# ----------------------------------------------------------------------------- published counts


def test_ptr_by_group_published_chi2(results: dict) -> None:
    a = results["analyses"]["ptr_by_group"]
    assert a["groups"] == {"car_t": {"ptr": 15, "n": 26}, "chemotherapy": {"ptr": 3, "n": 18}}
    assert a["test"] == "chi2"
    assert round(a["statistic"], 4) == 7.4057
    assert round(a["p_value"], 5) == 0.00650


def test_cart_characteristics_published(results: dict) -> None:
    a = results["analyses"]["cart_characteristics"]
    rows = {r["variable"]: r for r in a["rows"]}
    assert list(rows) == [
        "cr", "tocilizumab", "corticosteroid", "infection", "neutrophil_improvement_30d",
        "neutrophil_recovery_90d", "platelet_improvement_30d", "platelet_recovery_90d",
        "crs_grade_3plus", "bleeding_grade_3plus", "peak_temp_c",
    ]
    published = {  # variable: (ptr n, non-PTR n, Fisher p to the digits of published-results.md)
        "cr": (9, 9, 0.40652),
        "tocilizumab": (10, 5, 0.24063),
        "corticosteroid": (7, 2, 0.20772),
        "infection": (8, 2, 0.09915),
        "neutrophil_improvement_30d": (8, 6, 1.0),
        "neutrophil_recovery_90d": (9, 10, 0.18043),
        "platelet_improvement_30d": (4, 3, 1.0),
        "platelet_recovery_90d": (6, 10, 0.03301),
        "crs_grade_3plus": (12, 3, 0.00514),
        "bleeding_grade_3plus": (3, 0, 0.23000),
    }
    for var, (n_ptr, n_non, p) in published.items():
        r = rows[var]
        assert (r["ptr"]["n"], r["ptr"]["N"], r["non_ptr"]["n"], r["non_ptr"]["N"]) == (
            n_ptr, 14, n_non, 11), var
        assert r["test"] == "fisher", var
        assert round(r["p_value"], 5) == p, var
    # The published 0.241 is the yes/no test (10/14 vs 5/11); the 2x3 dose table gives 0.34363
    # (R: fisher.test(matrix(c(4, 6, 4, 1, 6, 4), 2))), reported beside it.
    toci = rows["tocilizumab"]
    assert toci["ptr"]["doses"] == {"0": 4, "1": 4, "2+": 6}
    assert toci["non_ptr"]["doses"] == {"0": 6, "1": 1, "2+": 4}
    assert toci["doses_test"]["test"] == "fisher"
    assert round(toci["doses_test"]["p_value"], 5) == 0.34363


def test_peak_temperature_is_student_t_non_ptr_minus_ptr(results: dict) -> None:
    row = next(r for r in results["analyses"]["cart_characteristics"]["rows"]
               if r["variable"] == "peak_temp_c")
    ps, _ = _frames()
    sub = ps.filter((pl.col("treatment_type") == "car_t") & pl.col("has_cytokines"))
    x = sub.filter(~pl.col("ptr"))["peak_temp_c"].to_numpy()
    y = sub.filter(pl.col("ptr"))["peak_temp_c"].to_numpy()
    ref = student_t(x, y)
    assert row["test"] == "t" and row["first_group"] == "non_ptr"
    assert _close(row["statistic"], ref["statistic"]) and _close(row["p_value"], ref["p_value"])
    assert row["statistic"] < 0  # PTR hotter: negative, as the paper's t = -2.189
    assert row["df"] == 23
    assert set(row["ptr"]) >= {"mean", "sd", "median"}
    # R: t.test(non_ptr, ptr, var.equal = TRUE)
    assert _close(row["statistic"], R["temp_t"]) and _close(row["p_value"], R["temp_p"])


def test_multivariable_crs_only_published_or(results: dict) -> None:
    a = results["analyses"]["ptr_multivariable"]
    assert a["test"] == "logistic"
    assert [s["variable"] for s in a["selected"]] == ["crs_grade_3plus"]
    s = a["selected"][0]
    assert round(s["odds_ratio"], 2) == 16.00
    assert round(s["ci_low"], 4) == 2.1645 and round(s["ci_high"], 4) == 118.2698
    assert round(s["p_value"], 5) == 0.00660
    screen = {x["variable"]: x for x in a["screen"]}
    assert screen["crs_grade_3plus"]["univariate_p"] < 0.30 and screen["crs_grade_3plus"]["candidate"]
    assert a["candidate_p"] == 0.30
    assert a["firth"]["test"] == "firth"
    assert [f["variable"] for f in a["firth"]["selected"]] == ["crs_grade_3plus"]
    # Firth shrinks the odds ratio towards 1
    assert 1 < a["firth"]["selected"][0]["odds_ratio"] < s["odds_ratio"]


def test_multivariable_candidate_threshold_from_config(derived_store: Path, tmp_path: Path) -> None:
    defs = deep_merge(load_definitions(), {"analysis": {"candidate_p": 0.001}})
    con = duckdb.connect(str(derived_store), read_only=True)
    try:
        res = run_analyses(con, defs, tmp_path, analyses=["ptr_multivariable"])
    finally:
        con.close()
    a = res["analyses"]["ptr_multivariable"]
    assert a["candidates"] == [] and a["selected"] == []


# ----------------------------------------------------------------------------- continuous
R = {  # printed by the R calls in the module docstring, on _frames()
    "il6_ptr_W": 139.0, "il6_ptr_p": 0.000300174989904429,
    "ifng_crs_W": 54.0, "ifng_crs_p": 0.260895874888337,
    "temp_t": -1.60259686672522, "temp_p": 0.122669795884521,
    "lm_slope": -0.820389686857771, "lm_intercept": 8798.85268819775,
    "lm_r2": 0.431143437742884, "lm_p": 2.24388171795816e-07,
    "gray_stat": 2.5615574602492464, "gray_p": 0.109490670092891,
    "cif_ptr": 0.2142857142857143,
    "cmh_stat": 6.9552301427096, "cmh_p": 0.00835745475259764, "cmh_or": 6.79190751445087,
    "cmh_ci": (1.55589806639564, 29.6484767743931),
}

def _subgroup() -> pl.DataFrame:
    ps, _ = _frames()
    return ps.filter((pl.col("treatment_type") == "car_t") & pl.col("has_cytokines"))


def test_cytokines_equal_mann_whitney_on_the_population(results: dict) -> None:
    sub = _subgroup()
    by_ptr = results["analyses"]["cytokines_by_ptr"]
    by_crs = results["analyses"]["cytokines_by_crs"]
    for key, col in (("IL6", "peak_il6"), ("IL10", "peak_il10"), ("IFNG", "peak_ifng")):
        ptr, non = sub.filter(pl.col("ptr"))[col], sub.filter(~pl.col("ptr"))[col]
        ref = mann_whitney(ptr.to_numpy(), non.to_numpy())
        e = by_ptr[key]
        assert e["test"] == "mann_whitney" and e["first_group"] == "ptr"
        assert _close(e["statistic"], ref["statistic"]) and _close(e["p_value"], ref["p_value"])
        assert e["median"] == {"ptr": ptr.median(), "non_ptr": non.median()}
        assert e["range"] == {"ptr": [ptr.min(), ptr.max()], "non_ptr": [non.min(), non.max()]}
        assert e["n"] == {"ptr": 14, "non_ptr": 11}
        le2 = sub.filter(~pl.col("crs_grade_3plus"))[col].to_numpy()
        ge3 = sub.filter(pl.col("crs_grade_3plus"))[col].to_numpy()
        ref = mann_whitney(le2, ge3)
        assert by_crs[key]["first_group"] == "crs_le2"
        assert by_crs[key]["n"] == {"crs_le2": 10, "crs_ge3": 15}
        assert _close(by_crs[key]["statistic"], ref["statistic"])
        assert _close(by_crs[key]["p_value"], ref["p_value"])
    assert _close(by_ptr["IL6"]["statistic"], R["il6_ptr_W"]) and _close(by_ptr["IL6"]["p_value"], R["il6_ptr_p"])
    assert _close(by_crs["IFNG"]["statistic"], R["ifng_crs_W"]) and _close(by_crs["IFNG"]["p_value"], R["ifng_crs_p"])


def test_platelet_dose_units_and_e11(results: dict) -> None:
    """Two centers: the dose (x10^11) is the pooled comparison; units are compared only within
    each center (a unit is not the same amount of platelets everywhere)."""
    sub = _subgroup()
    a = results["analyses"]["platelet_dose_by_ptr"]
    assert a["primary"] == "dose_e11" and a["center_ids"] == ["A", "B"]
    for key, col in (("units", "plt_units_until_recovery"), ("dose_e11", "plt_dose_e11_until_recovery")):
        ptr, non = sub.filter(pl.col("ptr"))[col], sub.filter(~pl.col("ptr"))[col]
        assert a[key]["total"] == {"ptr": ptr.sum(), "non_ptr": non.sum()}
        assert a[key]["median"] == {"ptr": ptr.median(), "non_ptr": non.median()}
    col = "plt_dose_e11_until_recovery"
    ref = mann_whitney(sub.filter(pl.col("ptr"))[col].to_numpy(), sub.filter(~pl.col("ptr"))[col].to_numpy())
    assert a["dose_e11"]["test"] == "mann_whitney"
    assert _close(a["dose_e11"]["statistic"], ref["statistic"]) and _close(a["dose_e11"]["p_value"], ref["p_value"])
    assert a["dose_e11"]["heterogeneity"]["status"] == "ok"
    assert a["units"]["test"] is None and "within each center" in a["units"]["reason"]
    col = "plt_units_until_recovery"
    for c in ("A", "B"):
        s = sub.filter(pl.col("center_id") == c)
        ref = mann_whitney(s.filter(pl.col("ptr"))[col].to_numpy(), s.filter(~pl.col("ptr"))[col].to_numpy())
        w = a["units"]["within_center"][c]
        assert _close(w["statistic"], ref["statistic"]) and _close(w["p_value"], ref["p_value"])
    table = pl.read_csv(results["_out"] / "tables" / "platelet_dose_by_ptr.csv")
    assert table["median"].dtype == pl.Float64 and table["p_value"].dtype == pl.Float64


def test_cci_vs_il6_linear(results: dict) -> None:
    _, tr = _frames()
    a = results["analyses"]["cci_vs_il6"]
    ref = linear(tr["il6_same_day"].to_numpy(), tr["cci"].to_numpy())
    assert a["test"] == "linear" and a["n"] == tr.height == 50
    for k in ("slope", "intercept", "r2", "p_value", "statistic"):
        assert _close(a[k], ref[k]), k
    assert a["slope"] < 0
    assert _close(a["slope"], R["lm_slope"]) and _close(a["intercept"], R["lm_intercept"])
    assert _close(a["r2"], R["lm_r2"]) and _close(a["p_value"], R["lm_p"])


def test_bleeding_cuminc_gray(results: dict) -> None:
    sub = _subgroup()
    a = results["analyses"]["bleeding_cuminc"]
    status = sub["event_type"].replace_strict({"censored": 0, "bleeding": 1, "death": 2}).to_numpy()
    group = ["ptr" if p else "non_ptr" for p in sub["ptr"]]
    ref = cuminc(sub["event_time_days"].to_numpy(), status, group, 30)
    assert a["test"] == "gray" and a["horizon_days"] == 30
    assert set(a["cif_at_horizon"]) == {"ptr", "non_ptr"}
    assert _close(a["statistic"], ref["statistic"]) and _close(a["p_value"], ref["p_value"])
    assert a["cif_at_horizon"]["non_ptr"] == 0
    assert a["events"]["ptr"] == {"censored": 10, "bleeding": 3, "death": 1}
    assert _close(a["statistic"], R["gray_stat"]) and _close(a["p_value"], R["gray_p"])
    assert _close(a["cif_at_horizon"]["ptr"], R["cif_ptr"])


def test_bleeds_before_ptr_onset_and_gray_by_center(results: dict) -> None:
    a = results["analyses"]["bleeding_cuminc"]
    b = a["bleeds_before_ptr_onset"]
    # PTR bleeds on days 3, 7, 11 of patients whose PTR began on days 5, 6, 7 (see _cart_rows)
    assert (b["n_bleeds"], b["before"], b["same_day"], b["after"]) == (3, 1, 0, 2)
    assert [(x["patient_id"], x["bleeding_day"], x["ptr_onset_day"]) for x in b["bleeds"]
            if x["bleeding_vs_onset"] == "before"] == [("p0", 3.0, 5)]
    st = a["stratified_by_center"]
    sub = _subgroup()
    status = sub["event_type"].replace_strict({"censored": 0, "bleeding": 1, "death": 2}).to_numpy()
    ref = cuminc(sub["event_time_days"].to_numpy(), status,
                 ["ptr" if p else "non_ptr" for p in sub["ptr"]], 30,
                 strata=sub["center_id"].to_list())  # = R cuminc(strata =), test_stats_reference
    assert st["status"] == "ok" and _close(st["statistic"], ref["statistic"])
    assert _close(st["p_value"], ref["p_value"]) and st["statistic"] != a["statistic"]
    # the number at risk under the curve: everyone at day 0, the 3 bleeders gone by day 15
    assert a["at_risk"]["ptr"]["n"][0] == 14 and a["at_risk"]["ptr"]["time"][:2] == [0.0, 5.0]
    assert a["at_risk"]["ptr"]["n"][3] == 14 - 3  # day 15: bleeds 3, 7, 11 happened


def test_bleeding_landmark(results: dict) -> None:
    """Landmark day 7 (definitions.yaml analysis.landmark_days): events on or before day 7
    leave (p0 bleed day 3, p1 bleed day 7); PTR at the landmark = onset on or before day 7:
    only p2 (onset 7, bleed day 11) among those left; p3..p13 (onset days 8-18) count as
    non-PTR at the landmark. Time restarts at day 7, so the horizon is 30 - 7 = 23 days."""
    a = results["analyses"]["bleeding_landmark"]
    assert a["status"] == "ok" and a["landmark_days"] == 7 and a["horizon_days"] == 23
    assert a["excluded_event_before_landmark"] == 2
    assert a["ptr_after_landmark_counted_non_ptr"] == 11
    assert a["n"] == {"ptr": 1, "non_ptr": 22}
    assert a["events"]["ptr"] == {"censored": 0, "bleeding": 1, "death": 0}
    assert a["events"]["non_ptr"] == {"censored": 20, "bleeding": 0, "death": 2}
    # the one PTR patient's follow-up ends with the bleed at day 4 after the landmark: the
    # curve reaches 1 there, and at day 23 it is NA (R timepoints: beyond the last follow-up)
    assert a["cif_at_horizon"] == {"ptr": None, "non_ptr": 0.0}
    assert a["curves"]["ptr"]["time"][1] == 4.0 and a["curves"]["ptr"]["cif"][1] == 1.0


def test_cmh_by_center(results: dict) -> None:
    a = results["analyses"]["ptr_by_group_stratified"]
    assert a["test"] == "cmh" and set(a["centers"]) == {"A", "B"}
    assert a["groups"] == {"car_t": {"ptr": 15, "n": 26}, "chemotherapy": {"ptr": 3, "n": 18}}
    for k in ("common_odds_ratio", "ci_low", "ci_high", "breslow_day_statistic", "breslow_day_p_value"):
        assert a[k] is not None, k
    assert _close(a["statistic"], R["cmh_stat"]) and _close(a["p_value"], R["cmh_p"])
    assert _close(a["common_odds_ratio"], R["cmh_or"])
    assert _close(a["ci_low"], R["cmh_ci"][0]) and _close(a["ci_high"], R["cmh_ci"][1])


def test_baseline_rows(results: dict) -> None:
    a = results["analyses"]["baseline"]
    assert a["n"] == {"car_t": 26, "chemotherapy": 18}
    rows = {r["variable"]: r for r in a["rows"]}
    assert rows["age_years"]["test"] in ("t", "mann_whitney")
    assert rows["age_years"]["car_t"]["n"] == 26
    assert rows["male"]["test"] in ("chi2", "fisher")
    assert rows["male"]["car_t"]["N"] == 26


# ----------------------------------------------------------------------------- files and shape


def test_results_json_shape_and_files(results: dict) -> None:
    out: Path = results["_out"]
    doc = json.loads((out / "results.json").read_text())
    assert {"analyses", "software", "submissions", "settings"} <= set(doc)
    assert set(doc["analyses"]) == set(ANALYSES)
    assert doc["submissions"] == [{"submission_id": "s1"}]
    assert doc["settings"]["analysis"]["candidate_p"] == 0.30
    assert {"python", "duckdb", "polars", "scipy", "ptrharmonize"} <= set(doc["software"])
    for aid, a in doc["analyses"].items():
        assert a["status"] == "ok", aid
        assert (out / a["population_sql"].removeprefix("ptrharmonize/analysis/")).name
    tests_seen = set()
    for a in doc["analyses"].values():
        for key in ("test",):
            if a.get(key):
                tests_seen.add(a[key])
    assert {"chi2", "cmh", "logistic", "linear", "gray"} <= tests_seen
    for aid in ANALYSES:
        for ext in ("csv", "md"):
            f = out / "tables" / f"{aid}.{ext}"
            assert f.stat().st_size > 0, f
    for aid in ("cytokines_by_crs", "cytokines_by_ptr", "cci_vs_il6", "platelet_dose_by_ptr",
                "bleeding_cuminc"):
        for ext in ("png", "svg"):
            f = out / "figures" / f"{aid}.{ext}"
            assert f.stat().st_size > 1000, f
    assert (out / "figures" / "cytokines_by_ptr.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (out / "tables" / "cart_characteristics.md").read_text()
    assert md.startswith("| variable |") and "peak_temp_c" in md


def test_population_sql_files_exist_and_are_commented() -> None:
    from importlib.resources import files

    for aid in ANALYSES:
        text = (files("ptrharmonize.analysis") / "sql" / f"{aid}.sql").read_text()
        assert text.lstrip().startswith("--"), aid
        assert "FROM" in text.upper()


# ----------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def pipeline_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two centers ingested by the real pipeline; at each, the first two CAR-T patients get
    no increment from either transfusion (CCI 0: PTR), the other two keep theirs."""
    from store_helpers import store_submission

    from extract_factory import clean_rows, write_extract
    from ptrharmonize.read.canonical import read_canonical

    root = tmp_path_factory.mktemp("pipeline")
    store = root / "registry.duckdb"
    for center in ("T01", "T02"):
        rows = clean_rows(center)
        for t in rows["transfusions"]:
            if t["patient_id"] in ("P001", "P002"):
                t["post_count_e9l"] = t["pre_count_e9l"]
        store_submission(read_canonical(write_extract(root / center, rows)), store)
    return store


def _digest(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_run_analysis_end_to_end_never_writes_the_store(pipeline_store: Path, tmp_path: Path) -> None:
    before = _digest(pipeline_store)
    res = run_analysis(pipeline_store, tmp_path, progress=False)
    assert _digest(pipeline_store) == before
    a = res["analyses"]
    assert a["ptr_by_group"]["groups"] == {"car_t": {"ptr": 4, "n": 8}, "chemotherapy": {"ptr": 0, "n": 4}}
    assert set(a["ptr_by_group_stratified"]["centers"]) == {"T01", "T02"}
    rows = {r["variable"]: r for r in a["cart_characteristics"]["rows"]}
    assert rows["cr"]["ptr"] == {"n": 4, "N": 4}
    assert {s["center_id"] for s in res["submissions"]} == {"T01", "T02"}
    assert all(s["status"] == "active" for s in res["submissions"])
    doc = json.loads((tmp_path / "results.json").read_text())
    assert doc["filters"] == {"centers": None, "since": None, "config": None}
    assert doc["submissions"] == json.loads(json.dumps(res["submissions"]))


def test_filters_center_since_config(pipeline_store: Path, tmp_path: Path) -> None:
    res = run_analysis(pipeline_store, tmp_path / "t02", centers=["T02"], progress=False)
    assert res["analyses"]["ptr_by_group"]["groups"]["car_t"] == {"ptr": 2, "n": 4}
    assert [s["center_id"] for s in res["submissions"]] == ["T02"]
    res = run_analysis(pipeline_store, tmp_path / "since", since="2019-03-01", progress=False)
    assert res["analyses"]["ptr_by_group"]["groups"]["car_t"]["n"] == 8
    with pytest.raises(UserError, match="no patient of the store matches"):
        run_analysis(pipeline_store, tmp_path / "none", since="2019-03-02", progress=False)
    cfg = tmp_path / "defs.yaml"
    cfg.write_text("ptr:\n  min_failed: 3\nanalysis:\n  horizon_days: 20\n")
    res = run_analysis(pipeline_store, tmp_path / "cfg", config=cfg, progress=False)
    assert res["settings"]["analysis"]["horizon_days"] == 20
    assert res["settings"]["analysis"]["candidate_p"] == 0.30  # the rest stays
    assert res["analyses"]["ptr_by_group"]["groups"]["car_t"]["ptr"] == 0  # 2 failures < 3


def test_cli_run_analysis(pipeline_store: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from ptrharmonize.cli import app

    runner = CliRunner()
    out = tmp_path / "cli"
    r = runner.invoke(app, ["run-analysis", "--store", str(pipeline_store), "--out", str(out),
                            "--center", "T01", "--center", "T02", "--quiet"])
    assert r.exit_code == 0, r.output
    assert "Key results" in r.output and "results.json" in r.output
    assert (out / "results.json").is_file()

    r = runner.invoke(app, ["run-analysis", "--store", str(tmp_path / "missing.duckdb"),
                            "--out", str(out), "--quiet"])
    assert r.exit_code == 2 and "no store at" in r.output and "Traceback" not in r.output

    empty = tmp_path / "empty.duckdb"
    con = duckdb.connect(str(empty))
    create_schema(con)
    con.close()
    r = runner.invoke(app, ["run-analysis", "--store", str(empty), "--out", str(out), "--quiet"])
    assert r.exit_code == 2 and "holds no patients" in r.output and "Traceback" not in r.output

    r = runner.invoke(app, ["run-analysis", "--store", str(pipeline_store), "--out", str(out),
                            "--since", "March 2019", "--quiet"])
    assert r.exit_code == 2 and "YYYY-MM-DD" in r.output


def test_formula_text_in_a_center_code_is_neutralised_in_csv_tables(tmp_path: Path) -> None:
    from ptrharmonize.analysis._common import AnalysisResult
    from ptrharmonize.analysis.runner import write_outputs

    (tmp_path / "tables").mkdir()
    table = pl.DataFrame({"center": ['=HYPERLINK("http://x","y")', "-5", "A"], "n": [1, 2, 3]})
    write_outputs(AnalysisResult({}, table, None, []), tmp_path, "x")
    text = (tmp_path / "tables" / "x.csv").read_text()
    assert "'=HYPERLINK" in text
    assert "\n-5," in text  # a number stays a number


def test_table4_under_separation_reports_firth_and_infinity(tmp_path: Path) -> None:
    """CRS >= 3 in 12 of 14 PTR patients and in no non-PTR patient: quasi-complete separation,
    the ML odds ratio is infinite. Table 4 then reports Firth's estimate with its profile CI
    (issue 18), says so, and writes the ML odds ratio as "Infinity" with the reason."""
    ps, tr = _frames()
    ps = ps.with_columns(
        crs_grade_3plus=pl.when(pl.col("treatment_type") == "car_t")
        .then(pl.col("ptr") & pl.col("patient_id").is_in([f"p{i}" for i in range(12)]))
        .otherwise(pl.col("crs_grade_3plus"))
    )
    con = duckdb.connect()
    con.register("ps_df", ps.to_arrow())
    con.register("tr_df", tr.to_arrow())
    con.execute("CREATE TABLE patient_summary AS SELECT * FROM ps_df")
    con.execute("CREATE TABLE transfusion_il6 AS SELECT * FROM tr_df")
    res = run_analyses(con, load_definitions(), tmp_path, analyses=["ptr_multivariable"])
    con.close()
    doc = json.loads((tmp_path / "results.json").read_text())["analyses"]["ptr_multivariable"]
    assert doc["status"] == "ok" and doc["method"] == "firth" and doc["test"] == "firth"
    assert "separation" in doc["reported_because"]
    (sel,) = doc["selected"]
    assert sel["variable"] == "crs_grade_3plus"
    assert doc["ml"]["separation"]["directions"]["crs_grade_3plus"] == 1
    (ml,) = doc["ml"]["selected"]
    assert ml["odds_ratio"] == "Infinity" and "separation" in ml["reason"]
    assert sel == doc["firth"]["selected"][0]
    assert 1 < sel["ci_low"] < sel["odds_ratio"] < sel["ci_high"] < math.inf
    assert doc["p_value"] == sel["p_value"] < 0.05
    table = pl.read_csv(tmp_path / "tables" / "ptr_multivariable.csv")
    assert table["method"][0].startswith("Firth") and table["reported"][0]
    assert "separation" in table["note"][0]
    assert table["odds_ratio"].dtype == pl.Float64  # numbers stay numbers
    assert res["status"] == {"ptr_multivariable": "ok"}


def test_center_aware_results_beside_the_pooled_ones(results: dict) -> None:
    """Every pooled comparison carries its center-aware counterpart (issue 18); the statistics
    themselves are checked against R in tests/test_multicenter.py."""
    a = results["analyses"]
    strat = a["ptr_by_group_stratified"]
    # Table 2's by-center entry is the stratified analysis's CMH, with Breslow-Day
    assert a["ptr_by_group"]["by_center"]["status"] == "ok"
    assert _close(a["ptr_by_group"]["by_center"]["statistic"], strat["statistic"])
    assert _close(strat["heterogeneity"]["p_value"], strat["breslow_day_p_value"])
    assert strat["logistic_center_fixed"]["status"] == "ok"
    fe = {c["variable"]: c for c in strat["logistic_center_fixed"]["coefficients"]}
    assert set(fe) == {"(Intercept)", "car_t", "center[B]"}
    assert strat["gee_center"]["status"] == "ok" and strat["gee_center"]["n_clusters"] == 2
    # Table 3: each yes/no row, CMH by center
    rows = {r["variable"]: r for r in a["cart_characteristics"]["rows"]}
    assert rows["crs_grade_3plus"]["by_center"]["status"] == "ok"
    assert set(rows["crs_grade_3plus"]["by_center"]["centers"]) == {"A", "B"}
    het = rows["peak_temp_c"]["by_center"]  # continuous: F test of PTR x center
    assert het["status"] == "ok" and het["heterogeneity"]["test"] == "interaction_f"
    # Table 4: the selected model with center as a fixed effect and as a cluster
    mv = a["ptr_multivariable"]["by_center"]
    assert mv["logistic_center_fixed"]["status"] == "ok"
    assert "heterogeneity" in mv["logistic_center_fixed"]
    # Figure 2B: the transfusions of a patient as a cluster (25 patients, 50 transfusions)
    g = a["cci_vs_il6"]["gee_patient"]
    assert g["status"] == "ok" and g["n_clusters"] == 25 and g["n"] == 50


def test_figures_an_editor_accepts(results: dict) -> None:
    """n per group, the test's name and p on the plot, a number-at-risk table under the
    cumulative incidence, PNG at 300 dpi and SVG (issue 18)."""
    import struct

    out = results["_out"] / "figures"
    svg = (out / "bleeding_cuminc.svg").read_text()
    assert "Number at risk" in svg and "Gray" in svg and "n = 14" in svg and "n = 11" in svg
    svg = (out / "cytokines_by_ptr.svg").read_text()
    assert "Mann-Whitney U" in svg and "n = 14" in svg
    png = (out / "bleeding_cuminc.png").read_bytes()
    i = png.index(b"pHYs")
    ppx, ppy, unit = struct.unpack(">IIB", png[i + 4:i + 13])
    assert unit == 1 and round(ppx * 0.0254) == 300 and round(ppy * 0.0254) == 300
    md = (results["_out"] / "tables" / "ptr_by_group.md").read_text()
    csv = pl.read_csv(results["_out"] / "tables" / "ptr_by_group.csv")
    assert csv["p_value"].dtype == pl.Float64  # numbers in the CSV, formatted in Markdown
    assert "| 0.007 |" in md  # p = 0.00650 printed to 3 decimals


def test_heterogeneity_reported_wherever_centers_are_pooled(results: dict) -> None:
    """Issue 18: "Heterogeneity is reported wherever centers are pooled". Each entry equals the
    R-verified function (tests/test_heterogeneity.py) applied to the analysis's own data."""
    from ptrharmonize.stats.heterogeneity import interaction_f, slope_heterogeneity

    a = results["analyses"]
    # Table 1: every row says whether the CAR-T vs chemotherapy difference differs by center
    for r in a["baseline"]["rows"]:
        assert "by_center" in r, r["variable"]
        bc = r["by_center"]
        if bc["status"] == "ok":
            want = "interaction_f" if r["kind"] == "continuous" else "breslow_day_tarone"
            assert bc["heterogeneity"]["test"] == want
        else:
            assert bc["reason"]
    # Table 3 continuous row, recomputed
    sub = _subgroup()
    got = a["cart_characteristics"]
    temp = {r["variable"]: r for r in got["rows"]}["peak_temp_c"]["by_center"]["heterogeneity"]
    known = sub.filter(pl.col("peak_temp_c").is_not_null())
    ref = interaction_f(known["peak_temp_c"].to_numpy(), known["ptr"].cast(pl.Float64).to_numpy(),
                        known["center_id"].to_list())
    assert _close(temp["statistic"], ref["statistic"]) and _close(temp["p_value"], ref["p_value"])
    # Figure 2B: Cochran's Q / I^2 over the per-center slopes
    _, tr = _frames()
    h = a["cci_vs_il6"]["heterogeneity_between_centers"]
    ref = slope_heterogeneity(tr["il6_same_day"].to_numpy(), tr["cci"].to_numpy(), tr["center_id"].to_list())
    assert h["status"] == "ok" and h["test"] == "cochran_q" and h["k"] == 2
    assert _close(h["statistic"], ref["statistic"]) and _close(h["i2_pct"], ref["i2_pct"])
    table = pl.read_csv(results["_out"] / "tables" / "cci_vs_il6.csv")
    assert table.height == 4 and _close(table["statistic"][2], ref["statistic"])
    m = a["cci_vs_il6"]["mixed_patient"]  # lme4-verified in tests/test_heterogeneity.py
    assert m["status"] == "ok" and m["n_groups"] == 25 and _close(table["slope"][3], m["slope"])
    # Figure 3B: Gray's test across centers within each PTR group
    b = a["bleeding_cuminc"]["heterogeneity_between_centers"]
    status = sub["event_type"].replace_strict({"censored": 0, "bleeding": 1, "death": 2}).to_numpy()
    for g, flag in (("ptr", True), ("non_ptr", False)):
        m = (sub["ptr"] == flag).to_numpy()
        ref = cuminc(sub["event_time_days"].to_numpy()[m], status[m],
                     [c for c, k in zip(sub["center_id"].to_list(), m, strict=True) if k], 30)
        if ref["statistic"] is None:
            assert b[g]["status"] in ("ok", "not_estimable")
            continue
        assert b[g]["status"] == "ok" and _close(b[g]["statistic"], ref["statistic"]), g
    # Table 4 and Table 2: the LR test of exposure x center (R anova, tests/test_multicenter.py)
    assert a["ptr_multivariable"]["by_center"]["logistic_center_fixed"]["heterogeneity"]["test"] == "lr_interaction"
    assert a["ptr_by_group_stratified"]["heterogeneity"]["test"] == "breslow_day_tarone"
