"""Edge cases and cross-checks of ptrharmonize.stats that need no R reference."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

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
)
from ptrharmonize.stats.categorical import MAX_FISHER_TABLES
from ptrharmonize.stats.continuous import _pwilcox

# ------------------------------------------------------------------ categorical


def test_pearson_rejects_empty_row_and_bad_counts() -> None:
    with pytest.raises(ValueError, match="empty row"):
        pearson_chi2([[0, 0], [3, 4]])
    with pytest.raises(ValueError):
        pearson_chi2([[1, -1], [3, 4]])
    with pytest.raises(ValueError):
        pearson_chi2([[1.5, 1], [3, 4]])
    with pytest.raises(ValueError):
        pearson_chi2([[1, 2, 3]])


def test_chi2_or_fisher_reports_the_rule() -> None:
    res = chi2_or_fisher([[0, 0], [3, 4]], min_expected=5)
    assert res["test"] == "fisher" and res["p_value"] == 1.0
    assert res["min_expected_count"] == 0.0 and "5" in res["rule"]


def test_fisher_two_by_two_edges() -> None:
    assert fisher_exact([[3, 11], [0, 11]])["statistic"] == math.inf
    assert fisher_exact([[0, 5], [5, 0]])["statistic"] == 0.0
    assert fisher_exact([[5, 5], [5, 5]])["statistic"] == pytest.approx(1.0)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 12), min_size=4, max_size=4))
def test_fisher_2x2_p_equals_scipy(cells: list[int]) -> None:
    table = [[cells[0], cells[1]], [cells[2], cells[3]]]
    if sum(cells) == 0:
        return
    ours = fisher_exact(table)["p_value"]
    assert ours == pytest.approx(stats.fisher_exact(table).pvalue, rel=1e-9, abs=1e-15)
    assert 0.0 <= ours <= 1.0


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 6), min_size=6, max_size=6))
def test_fisher_enumerators_agree(cells: list[int]) -> None:
    """The vectorised 2 x k path and the general recursive path give the same p-value."""
    from ptrharmonize.stats.categorical import _fisher_2xk, _fisher_rxc

    x = np.array(cells).reshape(2, 3)
    if x.sum() == 0:
        return
    assert _fisher_2xk(x) == pytest.approx(_fisher_rxc(x), rel=1e-10, abs=1e-15)


def test_fisher_refuses_huge_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    assert MAX_FISHER_TABLES >= 1_000_000
    monkeypatch.setattr("ptrharmonize.stats.categorical.MAX_FISHER_TABLES", 1000)
    with pytest.raises(ValueError, match="too large"):
        fisher_exact(np.full((4, 4), 10))
    with pytest.raises(ValueError, match="too large"):
        fisher_exact([[300, 200, 100, 400], [200, 300, 400, 100]])


def test_cmh_drops_single_subject_strata_and_handles_zero_margins() -> None:
    tables = [
        [[2, 8], [12, 3]],
        [[3, 7], [9, 6]],
        [[1, 0], [0, 0]],
        [[0, 0], [4, 5]],
        [[0, 0], [0, 0]],
    ]
    res = cmh(tables)
    assert res["strata_dropped"] == 2 and res["strata"] == 3
    assert res["breslow_day_df"] == 1  # the stratum with an empty row carries no OR information
    json.dumps(res, allow_nan=False)


def test_cmh_continuity_correction_as_r() -> None:
    near_null = [[[5, 5], [5, 5]], [[3, 4], [4, 4]]]
    assert cmh(near_null, correct=True)["statistic"] == cmh(near_null, correct=False)["statistic"]
    far = [[[20, 5], [10, 15]], [[15, 10], [10, 15]]]
    assert cmh(far, correct=True)["statistic"] < cmh(far, correct=False)["statistic"]


# ------------------------------------------------------------------ continuous


def test_describe_and_missing_values() -> None:
    assert describe([])["n"] == 0
    d = describe([1.0, None, float("nan"), 3.0])
    assert d["n"] == 2 and d["mean"] == 2.0 and d["sd"] == pytest.approx(math.sqrt(2))
    assert describe([4.0])["sd"] is None


def test_mann_whitney_drops_missing_and_needs_both_groups() -> None:
    a = mann_whitney([1.0, 2.0, float("nan"), 5.0], [3.0, 4.0, 6.0])
    b = mann_whitney([1.0, 2.0, 5.0], [3.0, 4.0, 6.0])
    assert a == b
    with pytest.raises(ValueError):
        mann_whitney([], [1.0])


@pytest.mark.parametrize(("m", "n"), [(1, 1), (2, 5), (4, 4), (3, 7), (6, 5)])
def test_pwilcox_matches_brute_force(m: int, n: int) -> None:
    from itertools import combinations

    counts = np.zeros(m * n + 1)
    for ranks in combinations(range(1, m + n + 1), m):
        counts[sum(ranks) - m * (m + 1) // 2] += 1
    cdf = np.cumsum(counts) / counts.sum()
    for q in range(-1, m * n + 1):
        expected = cdf[q] if q >= 0 else 0.0
        assert _pwilcox(q, m, n) == pytest.approx(expected, abs=1e-14)
        assert _pwilcox(q, m, n, lower_tail=False) == pytest.approx(1 - expected, abs=1e-14)


def test_compare_continuous_small_group_goes_to_mann_whitney() -> None:
    res = compare_continuous([1.0, 2.0], [3.0, 4.0, 5.0, 6.0])
    assert res["test"] == "mann_whitney" and res["normality"][0] is None
    json.dumps(res, allow_nan=False)


# ------------------------------------------------------------------ regression


def test_logistic_flags_separation_and_firth_stays_finite() -> None:
    x = np.array([1] * 6 + [0] * 16)
    y = np.array([1] * 6 + [1] * 4 + [0] * 12)
    ml = logistic({"x": x}, y)
    # every x = 1 patient has y = 1: quasi-complete separation, found by linear programming
    assert ml["separation"]["detected"] and ml["separation"]["directions"] == {"x": 1}
    term = ml["coefficients"][1]
    assert term["odds_ratio"] == math.inf and term["p_value"] is None and "separation" in term["reason"]
    fr = firth_logistic({"x": x}, y)
    assert fr["converged"] and math.isfinite(fr["coefficients"][1]["estimate"])
    assert fr["coefficients"][1]["ci_high"] < math.inf
    json.dumps(fr, allow_nan=False)


def test_logistic_accepts_arrays_and_drops_missing() -> None:
    x = np.array([0, 0, 1, 1, 0, 1, np.nan, 1, 0, 1.0])
    y = np.array([0, 1, 1, 1, 0, 0, 1, 1, 0, 1.0])
    res = logistic(x, y, ["crs3"])
    assert res["n"] == 9 and res["coefficients"][1]["variable"] == "crs3"


def test_forward_lr_nothing_enters_and_listwise_deletion() -> None:
    rng = np.random.default_rng(1)
    X = {"noise": rng.normal(size=40), "other": rng.normal(size=40)}
    X["other"][3] = np.nan
    y = rng.integers(0, 2, 40)
    res = forward_lr(X, y, ["noise", "other"], entry_p=1e-6)
    assert res["selected"] == [] and res["steps"] == [] and res["n"] == 39
    json.dumps(res, allow_nan=False)


def test_linear_drops_incomplete_pairs() -> None:
    res = linear([1, 2, 3, np.nan, 5], [2.0, 4.1, 5.9, 8.0, 10.2])
    assert res["n"] == 4 and res["slope"] > 0


# ------------------------------------------------------------------ competing risks


def test_cuminc_single_group_missing_rows_and_numeric_groups() -> None:
    res = cuminc([1, 2, 3, float("nan")], [1, 0, 2, 1], [1, 1, 1, 1], horizon=2)
    assert res["statistic"] is None and res["df"] == 0 and res["n"] == {"1": 3}
    assert res["cif_at_horizon"]["1"] == pytest.approx(1 / 3)
    res = cuminc([1, 2, 3, 4], [1, 0, 1, 2], [10, 2, 10, 2], horizon=1)
    assert res["groups"] == ["2", "10"]  # numeric levels sorted numerically, as R's factor()


def test_cuminc_without_competing_events_is_one_minus_km() -> None:
    t = [1, 2, 2, 3, 4, 5, 6]
    s = [1, 0, 1, 1, 0, 1, 0]
    res = cuminc(t, s, ["a"] * 7, horizon=5)
    # Kaplan-Meier by hand: times 1 (7 at risk, 1 event), 2 (6, 1), 3 (4, 1), 5 (2, 1)
    km = (6 / 7) * (5 / 6) * (3 / 4) * (1 / 2)
    assert res["cif_at_horizon"]["a"] == pytest.approx(1 - km, rel=1e-12)


def test_cuminc_rejects_bad_status() -> None:
    with pytest.raises(ValueError, match="status"):
        cuminc([1, 2], [1, 3], ["a", "b"], horizon=1)


def test_separation_is_detected_not_guessed_from_a_large_estimate() -> None:
    # the study's CRS x PTR table (2/10 vs 12/15): OR 16, no separation
    x = np.array([1] * 15 + [0] * 10)
    y = np.array([1] * 12 + [0] * 3 + [1] * 2 + [0] * 8)
    assert not logistic({"crs3": x}, y)["separation"]["detected"]
    # a large but finite estimate (OR ~ 8e3 from 1 discordant pair among 200) is not separation
    x = np.array([1] * 100 + [0] * 100)
    y = np.array([1] * 99 + [0] * 1 + [1] * 1 + [0] * 99)
    fit = logistic({"x": x}, y)
    assert not fit["separation"]["detected"] and fit["coefficients"][1]["odds_ratio"] > 5000


def test_collinear_or_constant_designs_are_not_estimable_not_a_crash() -> None:
    from ptrharmonize.stats._common import NotEstimable

    x = np.array([0, 1, 0, 1, 1, 0, 1, 0.0])
    y = np.array([0, 1, 1, 1, 0, 0, 1, 0.0])
    for X in ({"a": x, "b": x}, {"a": x, "b": 1 - x}, {"c": np.ones(8)}):
        with pytest.raises(NotEstimable, match="singular design"):
            logistic(X, y)
        with pytest.raises(NotEstimable, match="singular design"):
            firth_logistic(X, y)
    with pytest.raises(NotEstimable, match="both outcomes"):
        firth_logistic({"a": x}, np.ones(8))
