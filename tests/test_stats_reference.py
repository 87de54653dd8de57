"""ptrharmonize.stats against R (tests/reference/r_reference.json) and the study's printed values.

The JSON was produced by tests/reference/make_reference.R (R 4.2.2, cmprsk 2.2-11, logistf 1.26.1,
brglm2 0.9) from the data in tests/reference/data/; R is not needed to run these tests.
Statistics, p-values and estimates must agree with R to a relative tolerance of 1e-6.
"""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ptrharmonize.stats import (
    chi2_or_fisher,
    cmh,
    compare_continuous,
    cuminc,
    describe,
    firth_logistic,
    fisher_exact,
    forward_lr,
    linear,
    logistic,
    mann_whitney,
    pearson_chi2,
    shapiro,
    student_t,
    welch_t,
)

REF_DIR = Path(__file__).parent / "reference"
DATA = REF_DIR / "data"
REF = json.loads((REF_DIR / "r_reference.json").read_text())
RTOL = 1e-6


def _num(v: Any) -> Any:
    if v == "Inf":
        return math.inf
    if v == "-Inf":
        return -math.inf
    return v


def close(actual: Any, expected: Any, rtol: float = RTOL, atol: float = 0.0) -> None:
    """Elementwise comparison; None stands for R's NA, 'Inf' for R's Inf."""
    if isinstance(expected, list):
        assert isinstance(actual, list | tuple | np.ndarray), (actual, expected)
        assert len(actual) == len(expected), (actual, expected)
        for a, e in zip(actual, expected, strict=True):
            close(a, e, rtol, atol)
        return
    expected = _num(expected)
    if expected is None:
        assert actual is None or (isinstance(actual, float) and math.isnan(actual)), (
            actual,
            expected,
        )
        return
    assert actual is not None, (actual, expected)
    if math.isinf(expected):
        assert actual == expected
        return
    assert actual == pytest.approx(expected, rel=rtol, abs=atol), (actual, expected)


def _read_csv(name: str) -> list[dict[str, str]]:
    with (DATA / name).open() as fh:
        return list(csv.DictReader(fh))


def _columns(name: str) -> dict[str, np.ndarray]:
    rows = _read_csv(name)
    return {k: np.array([float(r[k]) for r in rows]) for k in rows[0]}


def _continuous() -> dict[str, dict[str, list[float]]]:
    out: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in _read_csv("continuous.csv"):
        out[r["dataset"]][r["group"]].append(float(r["value"]))
    return out


CONT = _continuous()


def _ids(items: list[dict[str, Any]], key: str = "name") -> list[str]:
    return [str(i[key]) + ("_corrected" if i.get("correct") else "") for i in items]


# =========================================================================== categorical


@pytest.mark.parametrize("ref", REF["chi2"], ids=_ids(REF["chi2"]))
def test_pearson_chi2_matches_r(ref: dict[str, Any]) -> None:
    res = pearson_chi2(ref["table"])
    assert res["test"] == "chi2"
    close(res["statistic"], ref["statistic"])
    close(res["p_value"], ref["p_value"])
    assert res["df"] == ref["df"]
    close(res["expected"], ref["expected"])


@pytest.mark.parametrize("ref", REF["fisher"], ids=_ids(REF["fisher"]))
def test_fisher_matches_r(ref: dict[str, Any]) -> None:
    res = fisher_exact(ref["table"])
    assert res["test"] == "fisher"
    close(res["p_value"], ref["p_value"])
    close(res["statistic"], ref["estimate"])


def test_fisher_transpose_and_row_swap_invariance() -> None:
    t = [[3, 0, 5, 2], [1, 6, 2, 7]]
    p = fisher_exact(t)["p_value"]
    close(fisher_exact(np.array(t).T)["p_value"], p, 1e-12)
    close(fisher_exact(t[::-1])["p_value"], p, 1e-12)


@pytest.mark.parametrize("ref", REF["chi2_or_fisher"], ids=_ids(REF["chi2_or_fisher"]))
def test_chi2_or_fisher_rule_matches_r(ref: dict[str, Any]) -> None:
    res = chi2_or_fisher(ref["table"], min_expected=5)
    assert res["test"] == ref["test"]
    close(res["p_value"], ref["p_value"])


def test_chi2_or_fisher_threshold_comes_from_caller() -> None:
    table = [[15, 11], [3, 15]]  # smallest expected count 7.36
    assert chi2_or_fisher(table, min_expected=5)["test"] == "chi2"
    assert chi2_or_fisher(table, min_expected=8)["test"] == "fisher"


@pytest.mark.parametrize("ref", REF["cmh"], ids=_ids(REF["cmh"]))
def test_cmh_matches_r(ref: dict[str, Any]) -> None:
    res = cmh(ref["tables"], correct=ref["correct"], tarone=False)
    assert res["test"] == "cmh"
    for key in ("statistic", "p_value", "common_odds_ratio", "ci_low", "ci_high"):
        close(res[key], ref[key])
    close(res["breslow_day_statistic"], ref["breslow_day_statistic"])
    close(res["breslow_day_p_value"], ref["breslow_day_p_value"])
    assert res["breslow_day_df"] == ref["breslow_day_df"]
    assert res["strata"] == len(ref["tables"])
    tarone = cmh(ref["tables"], correct=ref["correct"], tarone=True)
    close(tarone["breslow_day_statistic"], ref["breslow_day_tarone_statistic"])
    close(tarone["breslow_day_p_value"], ref["breslow_day_tarone_p_value"])


def test_cmh_default_is_uncorrected_and_equals_pearson_for_one_stratum() -> None:
    table = [[15, 11], [3, 15]]
    res = cmh([table])
    assert res["correct"] is False and "without" in res["variant"]
    n = 44
    close(res["statistic"], pearson_chi2(table)["statistic"] * (n - 1) / n, 1e-12)


# =========================================================================== continuous

CONT_REFS = REF["continuous"]
TWO_SAMPLE = [r for r in CONT_REFS if "wilcox" in r]


@pytest.mark.parametrize("ref", TWO_SAMPLE, ids=_ids(TWO_SAMPLE, "dataset"))
def test_mann_whitney_matches_r(ref: dict[str, Any]) -> None:
    d = CONT[ref["dataset"]]
    res = mann_whitney(d["x"], d["y"])
    close(res["statistic"], ref["wilcox"]["statistic"])
    close(res["p_value"], ref["wilcox"]["p_value"])
    assert res["exact"] is ref["wilcox"]["exact"]
    assert res["n"] == [len(d["x"]), len(d["y"])]


def test_mann_whitney_fixtures_cover_all_branches() -> None:
    methods = {r["dataset"]: r["wilcox"] for r in TWO_SAMPLE}
    assert methods["mw_exact_small"]["exact"] and methods["mw_exact_p1"]["p_value"] == 1
    assert (
        not methods["mw_ties_units"]["exact"] and "correction" in methods["mw_ties_units"]["method"]
    )
    assert not methods["mw_large"]["exact"] and not methods["mw_boundary_49_50"]["exact"]


@pytest.mark.parametrize("ref", TWO_SAMPLE, ids=_ids(TWO_SAMPLE, "dataset"))
def test_t_tests_match_r(ref: dict[str, Any]) -> None:
    d = CONT[ref["dataset"]]
    for fn, key in ((student_t, "t_student"), (welch_t, "t_welch")):
        res = fn(d["x"], d["y"])
        close(res["statistic"], ref[key]["statistic"])
        close(res["p_value"], ref[key]["p_value"])
        close(res["df"], ref[key]["df"])


@pytest.mark.parametrize("ref", CONT_REFS, ids=_ids(CONT_REFS, "dataset"))
def test_shapiro_and_describe_match_r(ref: dict[str, Any]) -> None:
    d = CONT[ref["dataset"]]
    for g in ("x", "y"):
        if f"shapiro_{g}" not in ref:
            continue
        res = shapiro(d[g])
        close(res["statistic"], ref[f"shapiro_{g}"]["statistic"])
        close(res["p_value"], ref[f"shapiro_{g}"]["p_value"])
        desc = describe(d[g])
        for key in ("n", "mean", "sd", "median", "min", "max"):
            close(desc[key], ref[f"describe_{g}"][key])


@pytest.mark.parametrize("ref", TWO_SAMPLE, ids=_ids(TWO_SAMPLE, "dataset"))
def test_compare_continuous_rule_matches_r(ref: dict[str, Any]) -> None:
    d = CONT[ref["dataset"]]
    res = compare_continuous(d["x"], d["y"], alpha=0.05)
    assert res["test"] == ref["compare"]["test"]
    close(res["p_value"], ref["compare"]["p_value"])
    assert len(res["normality"]) == 2


def test_compare_continuous_fixtures_choose_both_tests() -> None:
    chosen = {r["dataset"]: r["compare"]["test"] for r in TWO_SAMPLE}
    assert chosen["cmp_normal"] == "t" and chosen["cmp_skewed"] == "mann_whitney"


# =========================================================================== regression

LOGISTIC_DATA = {
    "crs_ptr_study": ("crs_ptr.csv", "ptr"),
    "multi_all": ("logistic_multi.csv", "y"),
    "multi_two": ("logistic_multi.csv", "y"),
    "removal_bc": ("forward_removal.csv", "y"),
}


@pytest.mark.parametrize("name", list(REF["logistic"]))
def test_logistic_matches_r_glm(name: str) -> None:
    ref = REF["logistic"][name]
    file, response = LOGISTIC_DATA[name]
    cols = _columns(file)
    names = ref["variables"][1:]
    res = logistic(cols, cols[response], names)
    assert [c["variable"] for c in res["coefficients"]] == ref["variables"]
    for key, ref_key in (
        ("estimate", "estimate"),
        ("se", "se"),
        ("statistic", "z"),
        ("p_value", "p_value"),
        ("odds_ratio", "odds_ratio"),
        ("ci_low", "ci_low"),
        ("ci_high", "ci_high"),
    ):
        close([c[key] for c in res["coefficients"]], ref[ref_key])
    close(res["loglik"], ref["loglik"])
    assert res["n"] == ref["n"]


FORWARD_DATA = {"multi": ("logistic_multi.csv", "y"), "removal": ("forward_removal.csv", "y")}


@pytest.mark.parametrize("name", list(REF["forward"]))
def test_forward_selection_matches_r(name: str) -> None:
    ref = REF["forward"][name]
    file, response = FORWARD_DATA[name.rsplit("_", 1)[0]]
    cols = _columns(file)
    res = forward_lr(
        cols,
        cols[response],
        ref["candidates"],
        entry_p=0.05,
        removal_p=0.10,
        entry_test=ref["entry_test"],
    )
    assert [s["variable"] for s in res["selected"]] == ref["selected"]
    assert [(s["action"], s["variable"]) for s in res["steps"]] == [
        (s["action"], s["variable"]) for s in ref["steps"]
    ]
    for mine, theirs in zip(res["steps"], ref["steps"], strict=True):
        close(mine["statistic"], theirs["statistic"])
        close(mine["p_value"], theirs["p_value"])
        assert mine["model"] == theirs["model"]
    final = ref["final"]
    close([s["odds_ratio"] for s in res["selected"]], final["odds_ratio"][1:])
    close([s["ci_low"] for s in res["selected"]], final["ci_low"][1:])
    close([s["ci_high"] for s in res["selected"]], final["ci_high"][1:])
    close([s["p_value"] for s in res["selected"]], final["p_value"][1:])


def test_forward_selection_has_a_removal_step() -> None:
    actions = [s["action"] for s in REF["forward"]["removal_lr"]["steps"]]
    assert "remove" in actions


FIRTH_DATA = {
    "sex2": ("sex2.csv", "case"),
    "crs_ptr_study": ("crs_ptr.csv", "ptr"),
    "separation": ("firth_separation.csv", "y"),
}


@pytest.mark.parametrize("name", list(REF["firth"]))
def test_firth_matches_logistf(name: str) -> None:
    ref = REF["firth"][name]["logistf"]
    file, response = FIRTH_DATA[name]
    cols = _columns(file)
    names = ref["variables"][1:]
    prof = firth_logistic(cols, cols[response], names, ci="profile")
    assert [c["variable"] for c in prof["coefficients"]] == ref["variables"]
    close([c["estimate"] for c in prof["coefficients"]], ref["estimate"])
    close([c["log_ci_low"] for c in prof["coefficients"]], ref["profile_ci_low"])
    close([c["log_ci_high"] for c in prof["coefficients"]], ref["profile_ci_high"])
    close([c["p_value"] for c in prof["coefficients"]], ref["profile_p_value"])
    close(prof["statistic"], ref["lr_statistic"])
    close(prof["p_value"], ref["lr_p_value"])
    assert prof["df"] == ref["lr_df"]
    # logistf >= 1.24 reports standard errors from the augmented-data information
    wald = firth_logistic(cols, cols[response], names, ci="wald", se_type="augmented")
    close([c["se"] for c in wald["coefficients"]], ref["se"])
    close([c["log_ci_low"] for c in wald["coefficients"]], ref["wald_ci_low"])
    close([c["log_ci_high"] for c in wald["coefficients"]], ref["wald_ci_high"])
    close([c["p_value"] for c in wald["coefficients"]], ref["wald_p_value"])
    # independent implementation: brglm2 (adjusted-score "AS_mean" = Firth for logistic models),
    # whose standard errors are the inverse Fisher information (se_type="fisher", the default)
    br = REF["firth"][name]["brglm2"]
    close([c["estimate"] for c in prof["coefficients"]], br["estimate"])
    close([c["se"] for c in prof["coefficients"]], br["se"])
    wald_f = firth_logistic(cols, cols[response], names, ci="wald")
    z = 1.959963984540054
    close(
        [c["log_ci_low"] for c in wald_f["coefficients"]],
        [b - z * s for b, s in zip(br["estimate"], br["se"], strict=True)],
    )


def test_firth_sex2_published_values() -> None:
    """logistf's documented sex2 example (Heinze & Schemper 2002 data) to its printed digits."""
    cols = _columns("sex2.csv")
    res = firth_logistic(cols, cols["case"], ["age", "oc", "vic", "vicl", "vis", "dia"])
    coef = {c["variable"]: c for c in res["coefficients"]}
    printed = {  # variable: (coef, lower 95%, upper 95%, p) as printed by summary(logistf(...))
        "(Intercept)": (0.12, -0.82, 1.07, 0.802),
        "age": (-1.11, -1.97, -0.31, 0.006),
        "oc": (-0.07, -0.94, 0.79, 0.875),
        "vic": (2.27, 1.27, 3.44, None),
        "vicl": (-2.11, -3.26, -1.12, None),
        "vis": (-0.79, -1.61, 0.02, 0.054),
        "dia": (3.10, 0.77, 8.03, 0.005),
    }
    for v, (b, lo, hi, p) in printed.items():
        assert round(coef[v]["estimate"], 2) == b
        assert round(coef[v]["log_ci_low"], 2) == lo
        assert round(coef[v]["log_ci_high"], 2) == hi
        if p is not None:
            assert round(coef[v]["p_value"], 3) == p
        else:
            assert coef[v]["p_value"] < 0.001


def test_linear_matches_r_lm() -> None:
    ref = REF["linear"]["cci_il6"]
    cols = _columns("linear_cci_il6.csv")
    res = linear(cols["il6"], cols["cci"])
    for key in ("slope", "intercept", "slope_se", "intercept_se", "statistic", "p_value", "r2"):
        close(res[key], ref[key])
    assert res["n"] == ref["n"]


# =========================================================================== competing risks


def _cr(dataset: str) -> dict[str, list[Any]]:
    rows = [r for r in _read_csv("competing.csv") if r["dataset"] == dataset]
    return {
        "time": [float(r["time"]) for r in rows],
        "status": [int(r["status"]) for r in rows],
        "group": [r["group"] for r in rows],
        "strata": [r["strata"] for r in rows],
    }


def _compact(time: list[float], est: list[float]) -> tuple[list[float], list[float]]:
    """cmprsk's corner vectors -> (distinct times, value after each), as ptrharmonize returns."""
    t_out: list[float] = []
    e_out: list[float] = []
    for t, e in zip(time, est, strict=True):
        if t_out and t_out[-1] == t:
            e_out[-1] = e
        else:
            t_out.append(t)
            e_out.append(e)
    return t_out, e_out


@pytest.mark.parametrize("name", list(REF["cuminc"]))
def test_cuminc_matches_cmprsk(name: str) -> None:
    ref = REF["cuminc"][name]
    d = _cr(ref["dataset"])
    strata = d["strata"] if ref["stratified"] else None
    for i, h in enumerate(ref["horizons"]):
        res = cuminc(d["time"], d["status"], d["group"], horizon=h, strata=strata)
        for g in ref["curves"]:
            close(res["cif_at_horizon"][g], ref["timepoints_est"][g][i], atol=1e-15)
            close(res["var_at_horizon"][g], ref["timepoints_var"][g][i], atol=1e-15)
    assert res["test"] == "gray"
    close(res["statistic"], ref["statistic"])
    close(res["p_value"], ref["p_value"])
    assert res["df"] == ref["df"]
    assert sorted(res["curves"]) == sorted(ref["curves"])
    for g, curve in ref["curves"].items():
        t, est = _compact(curve["time"], curve["est"])
        _, var = _compact(curve["time"], curve["var"])
        close(res["curves"][g]["time"], t)
        close(res["curves"][g]["cif"], est, atol=1e-15)
        close(res["curves"][g]["var"], var, atol=1e-15)


def test_cuminc_competing_cause_test_matches_cmprsk() -> None:
    """Gray's test for cause 2 (swap the codes) equals cmprsk's second test row."""
    for name in ("cr_ties", "cr_three_zero", "cr_strata_stratified"):
        ref = REF["cuminc"][name]
        d = _cr(ref["dataset"])
        swapped = [{1: 2, 2: 1}.get(s, s) for s in d["status"]]
        res = cuminc(
            d["time"],
            swapped,
            d["group"],
            horizon=10,
            strata=d["strata"] if ref["stratified"] else None,
        )
        close(res["statistic"], ref["statistic_cause2"])


def test_cuminc_zero_event_group_and_json() -> None:
    d = _cr("cr_three_zero")
    res = cuminc(d["time"], d["status"], d["group"], horizon=30)
    assert res["events"]["g3"] == 0
    assert res["curves"]["g3"]["cif"] == [0.0, 0.0]
    assert res["cif_at_horizon"]["g3"] is None  # 30 > largest follow-up in g3 (26): R gives NA
    json.dumps(res, allow_nan=False)


def test_cuminc_without_events_of_interest_has_no_test() -> None:
    res = cuminc([1, 2, 3, 4], [0, 2, 0, 2], ["a", "a", "b", "b"], horizon=2)
    assert res["statistic"] is None and res["p_value"] is None


# =========================================================================== the study's numbers


def test_published_ptr_incidence_chi2() -> None:
    res = chi2_or_fisher([[15, 11], [3, 15]], min_expected=5)
    assert res["test"] == "chi2"
    assert round(res["statistic"], 3) == 7.406 and round(res["statistic"], 4) == 7.4057
    assert round(res["p_value"], 3) == 0.007 and round(res["p_value"], 5) == 0.00650


@pytest.mark.parametrize(
    ("table", "published", "recomputed"),
    [
        ([[9, 5], [9, 2]], 0.407, 0.40652),  # CR after CAR-T
        ([[10, 4], [5, 6]], 0.241, 0.24063),  # tocilizumab used yes/no (see docs/statistics.md)
        ([[7, 7], [2, 9]], 0.208, 0.20772),  # corticosteroid
        ([[8, 6], [2, 9]], 0.099, 0.09915),  # infection
        ([[8, 6], [6, 5]], 1.000, 1.0),  # neutrophil improvement, 30 d
        ([[9, 5], [10, 1]], 0.180, 0.18043),  # neutrophil recovery, 3 mo
        ([[4, 10], [3, 8]], 1.000, 1.0),  # platelet improvement, 30 d
        ([[6, 8], [10, 1]], 0.033, 0.03301),  # platelet recovery, 3 mo
        ([[3, 11], [0, 11]], 0.230, 0.23000),  # grade 3-4 bleeding
        ([[2, 8], [12, 3]], 0.005, 0.00514),  # PTR by CRS grade
    ],
)
def test_published_fisher_p_values(
    table: list[list[int]], published: float, recomputed: float
) -> None:
    res = chi2_or_fisher(table, min_expected=5)
    assert res["test"] == "fisher"
    assert round(res["p_value"], 3) == published
    assert round(res["p_value"], 5) == recomputed


def test_tocilizumab_dose_split_does_not_give_published_p() -> None:
    """The 0/1/2-dose 2 x 3 table (4,4,6 vs 6,1,4) gives p = 0.344 in R, not the printed 0.241;
    the printed value is the used-yes/no 2 x 2 (10/14 vs 5/11) of the same patients."""
    assert round(fisher_exact([[4, 4, 6], [6, 1, 4]])["p_value"], 5) == 0.34363


def test_published_multivariable_crs() -> None:
    cols = _columns("crs_ptr.csv")
    res = logistic(cols, cols["ptr"], ["crs3"])
    crs = res["coefficients"][1]
    assert round(crs["odds_ratio"], 2) == 16.00
    assert round(crs["ci_low"], 4) == 2.1645 and round(crs["ci_high"], 4) == 118.2698
    assert round(crs["ci_low"], 3) == 2.165 and round(crs["ci_high"], 3) == 118.270
    assert round(crs["p_value"], 5) == 0.00660 and round(crs["p_value"], 3) == 0.007


def test_results_are_strict_json() -> None:
    cols = _columns("logistic_multi.csv")
    d = CONT["mw_ties_units"]
    for res in (
        pearson_chi2([[15, 11], [3, 15]]),
        fisher_exact([[4, 4, 6], [6, 1, 4]]),
        cmh([[[2, 8], [12, 3]], [[3, 7], [9, 6]]]),
        compare_continuous(d["x"], d["y"]),
        forward_lr(cols, cols["y"], ["temp", "crs3", "x3"]),
        linear([1, 2, 3, 4], [2, 1, 4, 3]),
    ):
        json.dumps(res, allow_nan=False)
