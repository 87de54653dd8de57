"""Center-aware statistics against R (tests/reference/make_multicenter.R -> r_multicenter.json,
R 4.2.2, geepack 1.3.9; data from make_multicenter_datasets.py). CI has no R: it reads the JSON."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from ptrharmonize.stats import cmh
from ptrharmonize.stats._common import NotEstimable
from ptrharmonize.stats.continuous import mann_whitney
from ptrharmonize.stats.multicenter import gee, kruskal, logistic_center_fixed

REF_DIR = Path(__file__).parent / "reference"
REF = json.loads((REF_DIR / "r_multicenter.json").read_text())
PT = pl.read_csv(REF_DIR / "data" / "mc_patients.csv")
TR = pl.read_csv(REF_DIR / "data" / "mc_transfusions.csv")
RTOL = 1e-6


def close(got, want, rtol=RTOL) -> None:
    np.testing.assert_allclose(np.asarray(got, dtype=float), np.asarray(want, dtype=float), rtol=rtol)


@pytest.mark.parametrize(("name", "exposure", "cart_only"),
                         [("car_t_ptr", "car_t", False), ("crs3_ptr_cart", "crs3", True)])
def test_cmh_breslow_day_by_center(name: str, exposure: str, cart_only: bool) -> None:
    ref = REF["cmh"][name]
    d = PT.filter(pl.col("car_t") == 1) if cart_only else PT
    tables = []
    for c in ref["centers"]:
        s = d.filter(pl.col("center") == c)
        e, p = s[exposure].to_numpy(), s["ptr"].to_numpy()
        tables.append([[int(((e == 1) & (p == 1)).sum()), int(((e == 1) & (p == 0)).sum())],
                       [int(((e == 0) & (p == 1)).sum()), int(((e == 0) & (p == 0)).sum())]])
    # R table(): x[i, j, k], rows exposure (1, 0), columns ptr (1, 0); jsonlite writes rows
    assert ref["tables"] == tables
    res = cmh(tables, correct=False)
    close([res["statistic"], res["p_value"], res["common_odds_ratio"], res["ci_low"], res["ci_high"]],
          [ref["statistic"], ref["p_value"], ref["common_odds_ratio"], ref["ci_low"], ref["ci_high"]])
    close([res["breslow_day_statistic"], res["breslow_day_p_value"]],
          [ref["breslow_day_tarone_statistic"], ref["breslow_day_tarone_p_value"]])


def test_logistic_center_fixed_effect_and_interaction() -> None:
    ref = REF["logistic_center_fixed"]
    res = logistic_center_fixed({"car_t": PT["car_t"].to_numpy()}, PT["ptr"].to_numpy(),
                                PT["center"].to_list())
    assert [c["variable"] for c in res["coefficients"]] == [
        "(Intercept)", "car_t", "center[B]", "center[C]", "center[D]"]
    close([c["estimate"] for c in res["coefficients"]], ref["estimate"])
    close([c["se"] for c in res["coefficients"]], ref["se"])
    close([c["p_value"] for c in res["coefficients"]], ref["p_value"])
    h = res["heterogeneity"]
    assert h["df"] == ref["interaction_lr_df"]
    close([h["statistic"], h["p_value"]], [ref["interaction_lr_statistic"], ref["interaction_lr_p_value"]])


@pytest.mark.parametrize("corstr", ["exchangeable", "independence"])
def test_gee_center_as_cluster(corstr: str) -> None:
    ref = REF[f"gee_center_{corstr}"]
    res = gee({"car_t": PT["car_t"].to_numpy()}, PT["ptr"].to_numpy(), PT["center"].to_list(),
              family="binomial", corstr=corstr)
    close([c["estimate"] for c in res["coefficients"]], ref["estimate"])
    close([c["se"] for c in res["coefficients"]], ref["se"])
    close([c["p_value"] for c in res["coefficients"]], ref["p_value"])
    if corstr == "exchangeable":
        close(res["working_correlation"], ref["alpha"])
    assert res["n_clusters"] == 4


@pytest.mark.parametrize("corstr", ["exchangeable", "independence"])
def test_cci_il6_with_patients_as_clusters(corstr: str) -> None:
    ref = REF[f"cci_il6_gee_{corstr}"]
    res = gee({"il6": TR["il6"].to_numpy()}, TR["cci"].to_numpy(), TR["patient"].to_list(),
              family="gaussian", corstr=corstr)
    close([c["estimate"] for c in res["coefficients"]], ref["estimate"])
    close([c["se"] for c in res["coefficients"]], ref["se"])
    if corstr == "exchangeable":
        close(res["working_correlation"], ref["alpha"])
    # the transfusions of a patient share its level: the clustered SE of the intercept is larger
    naive = REF["cci_il6_lm"]["se"][0]  # the intercept: a patient-level random intercept
    assert res["coefficients"][0]["se"] > 1.3 * naive


def test_platelet_dose_pooled_units_within_center_and_heterogeneity() -> None:
    ptr = PT["ptr"].to_numpy() == 1
    pooled = mann_whitney(PT["dose"].to_numpy()[ptr], PT["dose"].to_numpy()[~ptr])
    close([pooled["statistic"], pooled["p_value"]],
          [REF["dose_pooled"]["statistic"], REF["dose_pooled"]["p_value"]])
    for c, ref in REF["units_within_center"].items():
        s = PT.filter(pl.col("center") == c)
        p = s["ptr"].to_numpy() == 1
        res = mann_whitney(s["units"].to_numpy()[p], s["units"].to_numpy()[~p])
        close([res["statistic"], res["p_value"]], [ref["statistic"], ref["p_value"]])
    kw = kruskal(PT["dose"].to_numpy(), PT["center"].to_list())
    ref = REF["dose_by_center_kruskal"]
    close([kw["statistic"], kw["p_value"]], [ref["statistic"], ref["p_value"]])
    assert kw["df"] == ref["df"]


def test_center_aware_functions_say_when_they_cannot_estimate() -> None:
    with pytest.raises(NotEstimable, match="two centers"):
        logistic_center_fixed({"x": [0, 1, 0, 1]}, [0, 1, 1, 0], ["A"] * 4)
    # a center that treats only one group: the exposure is collinear with the centers
    with pytest.raises(NotEstimable, match="singular"):
        logistic_center_fixed({"x": [1, 1, 0, 0]}, [0, 1, 1, 0], ["A", "A", "B", "B"])
    with pytest.raises(NotEstimable, match="two clusters"):
        gee({"x": [0, 1, 0, 1]}, [0, 1, 1, 0], ["A"] * 4)
    with pytest.raises(NotEstimable):
        kruskal([1.0, 1.0, 1.0], ["A", "B", "C"])
