"""`run-analysis` never falls over on data (issue 18): every analysis ends `ok`, `not_estimable`
(with its reason) or `error` (with its message), and the others still run.

Random small registries (hypothesis) of the derived relations the analyses read
(`patient_summary`, `transfusion_il6`), written as tables of a real DuckDB store, in the shapes
that broke the first version: empty groups, one center, every value tied, no event at all,
perfect separation (every PTR patient has CRS >= 3 and nobody else), collinear candidates
(two pool variables equal), and a mix of known and unknown values.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ptrharmonize.analysis import ANALYSES
from ptrharmonize.analysis.runner import run_analyses
from ptrharmonize.cdm import load_definitions

STATUSES = {"ok", "not_estimable", "error"}
MODES = ("random", "one_center", "all_tied", "zero_events", "separation", "collinear", "empty_group")
INDEX = dt.date(2020, 1, 1)

PS_SCHEMA = {
    "center_id": pl.Utf8, "patient_id": pl.Utf8, "treatment_type": pl.Utf8, "index_date": pl.Date,
    "ptr": pl.Boolean, "ptr_onset_at": pl.Datetime("us"), "has_cytokines": pl.Boolean,
    "age_years": pl.Float64, "sex": pl.Utf8, "bsa_m2": pl.Float64, "bm_blast_pct": pl.Float64,
    "n_relapses": pl.Int64, "disease_status": pl.Utf8, "prior_allo_hsct": pl.Boolean,
    "extramedullary": pl.Boolean, "infection": pl.Boolean, "cr": pl.Boolean,
    "tocilizumab": pl.Boolean, "tocilizumab_doses": pl.Int64, "corticosteroid": pl.Boolean,
    "neutrophil_improvement_30d": pl.Boolean, "neutrophil_recovery_90d": pl.Boolean,
    "platelet_improvement_30d": pl.Boolean, "platelet_recovery_90d": pl.Boolean,
    "crs_grade": pl.Int64, "crs_grade_3plus": pl.Boolean, "bleeding_grade_3plus_30d": pl.Boolean,
    "peak_temp_c": pl.Float64, "peak_il6": pl.Float64, "peak_il10": pl.Float64,
    "peak_ifng": pl.Float64, "plt_units_until_recovery": pl.Float64,
    "plt_dose_e11_until_recovery": pl.Float64, "event_time_days": pl.Float64,
    "event_type": pl.Utf8,
}
TR_SCHEMA = {"center_id": pl.Utf8, "patient_id": pl.Utf8, "transfusion_id": pl.Utf8,
             "cci": pl.Float64, "il6_same_day": pl.Float64}
BOOLS = [c for c, t in PS_SCHEMA.items() if t == pl.Boolean and c not in ("ptr", "has_cytokines")]


@st.composite
def registries(
    draw: st.DrawFn, modes: tuple[str, ...] = MODES, min_n: int = 0
) -> tuple[str, pl.DataFrame, pl.DataFrame]:
    mode = draw(st.sampled_from(modes))
    n = draw(st.integers(min_n, 14))
    centers = ["A"] if mode == "one_center" else draw(st.lists(st.sampled_from("ABCD"), min_size=1, max_size=3, unique=True))
    tied = mode == "all_tied"

    def number(lo: float, hi: float) -> float | None:
        if tied:
            return lo
        return draw(st.one_of(st.none(), st.sampled_from([lo, hi, (lo + hi) / 2]),
                              st.floats(lo, hi, allow_nan=False)))

    def boolean() -> bool | None:
        return True if tied else draw(st.one_of(st.none(), st.booleans()))

    rows, trs = [], []
    for i in range(n):
        treatment = "car_t" if mode == "empty_group" else draw(st.sampled_from(["car_t", "chemotherapy"]))
        ptr = False if mode == "zero_events" else (True if tied else draw(st.one_of(st.none(), st.booleans())))
        r = {c: boolean() for c in BOOLS}
        onset = None if not ptr else draw(st.integers(0, 40))
        event = "censored" if mode == "zero_events" else draw(st.sampled_from(["bleeding", "death", "censored"]))
        r |= {
            "center_id": draw(st.sampled_from(centers)), "patient_id": f"p{i}",
            "treatment_type": treatment, "index_date": INDEX, "ptr": ptr,
            "ptr_onset_at": None if onset is None else dt.datetime(2020, 1, 1) + dt.timedelta(days=onset),
            "has_cytokines": True if tied else draw(st.booleans()),
            "age_years": number(1, 80), "sex": draw(st.sampled_from(["M", "F", "U", None])),
            "bsa_m2": number(0.5, 2.2), "bm_blast_pct": number(0, 100),
            "n_relapses": draw(st.one_of(st.none(), st.integers(0, 4))),
            "disease_status": draw(st.sampled_from(["relapsed", "primary_refractory", None])),
            "tocilizumab_doses": draw(st.one_of(st.none(), st.integers(0, 4))),
            "crs_grade": draw(st.one_of(st.none(), st.integers(0, 5))),
            "peak_temp_c": number(36.5, 41), "peak_il6": number(0, 50000),
            "peak_il10": number(0, 4000), "peak_ifng": number(0, 9000),
            "plt_units_until_recovery": number(0, 200), "plt_dose_e11_until_recovery": number(0, 60),
            "event_time_days": None if draw(st.booleans()) and not tied else float(draw(st.integers(0, 30))),
            "event_type": event,
        }
        if mode == "separation" and ptr is not None:
            r["crs_grade_3plus"] = ptr  # CRS >= 3 exactly in the PTR patients
            r["infection"] = ptr
        if mode == "collinear":
            r["corticosteroid"] = r["infection"] = r["crs_grade_3plus"]
        rows.append(r)
        for j in range(draw(st.integers(0, 3))):
            trs.append({"center_id": r["center_id"], "patient_id": r["patient_id"],
                        "transfusion_id": f"p{i}-{j}", "cci": number(-2000, 30000),
                        "il6_same_day": number(0, 20000)})
    return mode, pl.DataFrame(rows, schema=PS_SCHEMA), pl.DataFrame(trs, schema=TR_SCHEMA)


DEFINITIONS = load_definitions()


def _run(tmp: Path, ps: pl.DataFrame, tr: pl.DataFrame, figures: bool) -> dict:
    """The analyses on an in-memory DuckDB holding the two derived relations as tables."""
    con = duckdb.connect()
    try:
        con.register("ps_df", ps.to_arrow())
        con.register("tr_df", tr.to_arrow())
        con.execute("CREATE TABLE patient_summary AS SELECT * FROM ps_df")
        con.execute("CREATE TABLE transfusion_il6 AS SELECT * FROM tr_df")
        return run_analyses(con, DEFINITIONS, tmp / "out", figures=figures)
    finally:
        con.close()


@pytest.mark.parametrize("shape", MODES)
def test_random_small_registries_never_raise(tmp_path: Path, shape: str) -> None:
    """Every shape is drawn (3 random registries each), so none is left to chance."""

    @settings(max_examples=3, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(registries((shape,)))
    def check(reg: tuple) -> None:
        _check_one(tmp_path, reg)

    check()


def _check_one(tmp_path: Path, reg: tuple) -> None:
    mode, ps, tr = reg
    res = _run(tmp_path, ps, tr, figures=False)  # no exception escapes
    assert set(res["analyses"]) == set(ANALYSES)
    for aid, entry in res["analyses"].items():
        assert entry["status"] in STATUSES, (aid, entry)
        # every failure is one the analyses foresaw: a reason, never an unexpected error
        assert entry["status"] != "error", (mode, aid, entry.get("error"))
        if entry["status"] == "not_estimable":
            assert entry["reason"], (aid, entry)
    assert res["status"] == {k: v["status"] for k, v in res["analyses"].items()}


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                HealthCheck.function_scoped_fixture])
@given(registries(("separation", "all_tied", "zero_events", "one_center", "random"), min_n=8))
def test_edge_registries_write_every_figure(tmp_path: Path, reg: tuple) -> None:
    """The same shapes with the figures drawn: a figure of an edge case is written, never
    raised and never lost (`output_error` would record it)."""
    mode, ps, tr = reg
    res = _run(tmp_path, ps, tr, figures=True)
    for aid, entry in res["analyses"].items():
        assert entry["status"] in ("ok", "not_estimable"), (mode, aid, entry)
        assert "output_error" not in entry, (mode, aid, entry["output_error"])
        assert (tmp_path / "out" / "tables" / f"{aid}.csv").is_file()
