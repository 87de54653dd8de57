"""Heterogeneity between centers against R (tests/reference/make_heterogeneity.R ->
r_heterogeneity.json; R 4.2.2, metafor 3.8.1, cmprsk 2.2.11). CI has no R: it reads the JSON."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from ptrharmonize.stats._common import NotEstimable
from ptrharmonize.stats.competing import cuminc
from ptrharmonize.stats.heterogeneity import cochran_q, interaction_f, slope_heterogeneity

REF_DIR = Path(__file__).parent / "reference"
REF = json.loads((REF_DIR / "r_heterogeneity.json").read_text())
PT = pl.read_csv(REF_DIR / "data" / "mc_patients.csv")
TR = pl.read_csv(REF_DIR / "data" / "mc_transfusions.csv")
BL = pl.read_csv(REF_DIR / "data" / "het_bleeding.csv")


def close(got, want, rtol=1e-6) -> None:
    np.testing.assert_allclose(np.asarray(got, dtype=float), np.asarray(want, dtype=float), rtol=rtol)


def test_cci_il6_slopes_per_center_and_cochran_q() -> None:
    ref = REF["cci_il6_slopes"]
    res = slope_heterogeneity(TR["il6"].to_numpy(), TR["cci"].to_numpy(), TR["center"].to_list())
    assert list(res["by_center"]) == ref["centers"]
    close([res["by_center"][c]["slope"] for c in ref["centers"]], ref["slope"])
    close([res["by_center"][c]["se"] for c in ref["centers"]], ref["se"])
    close([res["statistic"], res["p_value"], res["pooled_fixed"], res["pooled_fixed_se"]],
          [ref["Q"], ref["Q_p"], ref["pooled"], ref["pooled_se"]])
    assert res["df"] == ref["Q_df"] and res["i2_pct"] == ref["I2"] == 0  # Q < df: I^2 truncated at 0


def test_cochran_q_i2_when_estimates_differ() -> None:
    ref = REF["q_heterogeneous"]
    res = cochran_q(ref["yi"], ref["sei"])
    close([res["statistic"], res["p_value"], res["i2_pct"], res["pooled_fixed"]],
          [ref["Q"], ref["Q_p"], ref["I2"], ref["pooled"]])


def test_interaction_f_of_a_continuous_characteristic() -> None:
    ref = REF["temp_car_t_interaction"]
    res = interaction_f(PT["temp"].to_numpy(), PT["car_t"].to_numpy(), PT["center"].to_list())
    assert res["df"] == [ref["df1"], ref["df2"]]
    close([res["statistic"], res["p_value"]], [ref["F"], ref["p_value"]])


@pytest.mark.parametrize("group", ["ptr", "non_ptr"])
def test_gray_between_centers_within_a_group(group: str) -> None:
    ref = REF["gray_between_centers"][group]
    d = BL.filter(pl.col("group") == group)
    res = cuminc(d["time"].cast(pl.Float64).to_numpy(), d["status"].to_numpy(),
                 np.asarray(d["center"].to_list(), dtype=object), 30.0)
    assert res["df"] == ref["df"]
    close([res["statistic"], res["p_value"]], [ref["statistic"], ref["p_value"]])


def test_one_center_is_not_estimable() -> None:
    with pytest.raises(NotEstimable):
        cochran_q([0.3], [0.1])
    with pytest.raises(NotEstimable):
        interaction_f([1.0, 2.0, 3.0, 4.0], [0, 1, 0, 1], ["A"] * 4)
    # a center with one group only has no group difference: its interaction term is not
    # estimable, the test runs on the centers that have both (rank, not column count)
    res = interaction_f([1.0, 2.0, 3.0, 4.0, 5.0, 7.0, 2.0, 3.0], [0, 1, 0, 1, 0, 1, 1, 1],
                        ["A", "A", "A", "A", "B", "B", "C", "C"])
    assert res["df"][0] == 1


def test_cci_il6_mixed_model_with_a_patient_intercept() -> None:
    from ptrharmonize.stats.heterogeneity import mixed_random_intercept

    ref = REF["cci_il6_lmer_patient"]
    res = mixed_random_intercept(TR["il6"].to_numpy(), TR["cci"].to_numpy(), TR["patient"].to_list())
    assert res["converged"]
    close([res["intercept"], res["slope"]], ref["estimate"], rtol=1e-7)  # measured 8e-9
    close([res["intercept_se"], res["slope_se"]], ref["se"], rtol=1e-6)  # measured 2e-7
    close([res["group_var"], res["residual_var"]], [ref["patient_var"], ref["residual_var"]], rtol=2e-6)
