"""Three states in the derived views (issue 16): known, unknown (an empty cell), not collected
(an absent table or column, or declared so in the mapping). Hand-built histories, one rule each.

The sentences tested:
- CDM v1: "Tables other than patients and treatments may be absent (an absent table means
  'not collected' ...)"; "Empty means unknown".
- Issue 16: "patient_ptr has ptr_status in (yes, no, not_assessable) with the reason ... and ptr
  is NULL unless assessable; CRS grades are NULL where CRS was not collected or the signs of the
  worst day are unknown, and never 0 by default; bleeding, infection, tocilizumab,
  corticosteroid and the recovery outcomes are NULL where their table or window is not
  collected."
- The study: PTR = two consecutive evaluable transfusions (ABO-compatible, stored < 72 h) with
  CCI < 5000; its CAR-T patients with one evaluable transfusion are non-PTR (15/26).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_views import CENTER, Registry, at, day

from ptrharmonize import collection
from ptrharmonize.cdm import load_catalog

CATALOG = load_catalog()


def _not_collected(reg: Registry, *names: str, center: str = CENTER) -> None:
    """Record, as an ingest would, that `center` collects everything but `names`."""
    submitted = {t: list(spec.column_names) for t, spec in CATALOG.tables.items()}
    declared = collection.parse_declaration(list(names))
    assert declared.problems == ()
    frame = collection.collection_frame(submitted, declared)
    collection.write(reg.con, frame, center, "test-submission")


def _car_t_patient(reg: Registry, center: str, pid: str = "P") -> None:
    """A CAR-T patient of `center` with height and weight, index on day 0."""
    reg.add("patients", center_id=center, patient_id=pid, sex="F", diagnosis="B-ALL", height_cm=170.0, weight_kg=70.0)
    reg.add("treatments", center_id=center, patient_id=pid, treatment_type="car_t", index_date=day(0),
            car_target="CD19")


def _low(reg, pid, tid, when, **kw):  # CCI about 1800: a failed increment
    reg.tx(pid, tid, when, pre=10.0, post=13.0, **kw)


def _ok(reg, pid, tid, when, **kw):  # CCI about 18000
    reg.tx(pid, tid, when, pre=10.0, post=40.0, **kw)


def ptr(reg: Registry) -> dict[str, tuple]:
    return {r["patient_id"]: (r["ptr_status"], r["ptr"], r["ptr_not_assessable_reason"])
            for r in reg.rows("SELECT * FROM patient_ptr")}


# ---------------------------------------------------------------------------------------------
# PTR


def test_ptr_status_three_states():
    reg = Registry()
    reg.patient("YES")  # two consecutive failures: PTR whatever else is unknown
    _low(reg, "YES", "Y1", at(1))
    _low(reg, "YES", "Y2", at(2))
    reg.tx("YES", "Y3", at(3), storage=None)
    reg.patient("NO")  # two adequate increments: known no
    _ok(reg, "NO", "N1", at(1))
    _ok(reg, "NO", "N2", at(2))
    reg.patient("ONE_KNOWN")  # one evaluable, the other excluded by a known fact: no (study: 15/26)
    _ok(reg, "ONE_KNOWN", "K1", at(1))
    reg.tx("ONE_KNOWN", "K2", at(2), abo=False)
    reg.patient("BLANK")  # a failure next to a unit of unknown storage: could be PTR
    _low(reg, "BLANK", "B1", at(1))
    _low(reg, "BLANK", "B2", at(2), storage=None)
    reg.patient("BLANK_APART")  # ok, unknown, ok: no run of two can form
    _ok(reg, "BLANK_APART", "A1", at(1))
    reg.tx("BLANK_APART", "A2", at(2), storage=None)
    _ok(reg, "BLANK_APART", "A3", at(3))
    reg.patient("ALL_BLANK")  # every storage time empty
    for i in range(3):
        _low(reg, "ALL_BLANK", f"Z{i}", at(i + 1), storage=None)
    reg.patient("ABO")
    _low(reg, "ABO", "O1", at(1), abo=None)
    _low(reg, "ABO", "O2", at(2), abo=None)
    reg.patient("NONE")  # never transfused
    got = ptr(reg)
    assert got == {
        "YES": ("yes", True, None),
        "NO": ("no", False, None),
        "ONE_KNOWN": ("no", False, None),
        "BLANK": ("not_assessable", None, "storage_unknown"),
        "BLANK_APART": ("no", False, None),
        "ALL_BLANK": ("not_assessable", None, "storage_unknown"),
        "ABO": ("not_assessable", None, "abo_unknown"),
        "NONE": ("no", False, None),
    }
    assessable = {r["patient_id"]: r["ptr_assessable"] for r in reg.rows("SELECT * FROM patient_ptr")}
    assert assessable == {k: v[0] != "not_assessable" for k, v in got.items()}


def test_untimed_unknown_transfusion_can_complete_a_run():
    reg = Registry()
    reg.patient("P")
    _low(reg, "P", "T1", at(1))
    _ok(reg, "P", "T2", at(2))
    _low(reg, "P", "T3", at(3))
    reg.tx("P", "T4", None, pre_before_h=None, post_after_h=None)  # no time: next to either failure
    assert ptr(reg)["P"] == ("not_assessable", None, "no_transfusion_time")


def test_ptr_storage_not_collected_and_transfusions_not_collected():
    reg = Registry()
    reg.patient("P")
    _low(reg, "P", "T1", at(1), storage=None)
    _low(reg, "P", "T2", at(2), storage=None)
    reg.patient("Q")
    _not_collected(reg, "transfusions.storage_h")
    assert ptr(reg)["P"] == ("not_assessable", None, "storage_not_collected")
    reason = reg.rows("SELECT not_evaluable_reason FROM transfusion_cci")
    assert {r["not_evaluable_reason"] for r in reason} == {"storage_not_collected"}
    assert ptr(reg)["Q"] == ("no", False, None)  # collected, none recorded: never transfused
    reg.con.execute("DELETE FROM collection").fetchall()
    _not_collected(reg, "transfusions")
    assert ptr(reg)["Q"] == ("not_assessable", None, "transfusions_not_collected")


def test_a_center_without_record_collects_everything():
    reg = Registry()
    reg.patient("P")
    assert reg.one("center_collects", center_id=CENTER)["recorded"] is False
    assert reg.one("patient_crs", patient_id="P")["crs_grade"] == 0
    _not_collected(reg)  # a record saying everything is collected
    assert reg.one("center_collects", center_id=CENTER)["recorded"] is True
    assert reg.one("patient_crs", patient_id="P")["crs_grade"] == 0


# ---------------------------------------------------------------------------------------------
# CRS


def test_crs_not_collected_is_null_never_zero():
    reg = Registry()
    reg.patient("P")  # no assessment row
    _not_collected(reg, "crs_assessments")
    row = reg.one("patient_crs", patient_id="P")
    assert (row["crs_grade"], row["crs_grade_3plus"], row["crs_not_assessable_reason"]) == (
        None, None, "crs_not_collected")
    miss = reg.rows("SELECT variable, state, reason FROM patient_missing WHERE patient_id = 'P' "
                    "AND variable LIKE 'crs%' ORDER BY variable")
    assert miss == [
        {"variable": "crs_grade", "state": "not_collected", "reason": "crs_not_collected"},
        {"variable": "crs_grade_3plus", "state": "not_collected", "reason": "crs_not_collected"},
    ]


def test_crs_worst_day_unknown():
    reg = Registry()
    reg.patient("LOW")  # grade 1 on day 1, a day without signs: the worst day may be that one
    reg.crs("LOW", on=1, max_temp_c=38.5)
    reg.crs("LOW", on=2)
    reg.patient("HIGH")  # grade 3 known (FiO2 40%): >= 3 whatever the unknown day was
    reg.crs("HIGH", on=1, max_temp_c=39.0, fio2_pct=40.0)
    reg.crs("HIGH", on=2)
    reg.patient("KNOWN")
    reg.crs("KNOWN", on=1, max_temp_c=38.5)
    got = {r["patient_id"]: (r["crs_grade"], r["crs_grade_3plus"], r["crs_not_assessable_reason"])
           for r in reg.rows("SELECT * FROM patient_crs")}
    assert got == {
        "LOW": (None, None, "signs_unknown"),
        "HIGH": (None, True, "signs_unknown"),
        "KNOWN": (1, False, None),
    }


# ---------------------------------------------------------------------------------------------
# Bleeding, exposures, platelet dose


def test_bleeding_not_collected_keeps_fatal_bleeds_out_of_competing_deaths():
    reg = Registry()
    reg.patient("P")
    reg.add("outcomes", patient_id="P", death_on=day(10))
    _not_collected(reg, "bleeding_events")
    row = reg.one("patient_bleeding", patient_id="P")
    assert (row["worst_bleeding_grade_30d"], row["bleeding_grade_3plus_30d"], row["event_type"],
            row["event_time_days"], row["bleeding_not_assessable_reason"]) == (
        None, None, None, None, "bleeding_not_collected")


def test_bleeding_ungraded_event_and_deaths_not_collected():
    reg = Registry()
    reg.patient("UNGRADED")  # an event in the window without a grade
    reg.add("bleeding_events", patient_id="UNGRADED", onset_on=day(3))
    reg.patient("SEVERE")  # grade 3 known, plus an ungraded event: >= 3 is known
    reg.add("bleeding_events", patient_id="SEVERE", onset_on=day(3), who_grade=3)
    reg.add("bleeding_events", patient_id="SEVERE", onset_on=day(5))
    reg.patient("NONE")
    reg.add("outcomes", patient_id="NONE", last_followup_on=day(40))
    got = {r["patient_id"]: (r["worst_bleeding_grade_30d"], r["bleeding_grade_3plus_30d"], r["event_type"])
           for r in reg.rows("SELECT * FROM patient_bleeding")}
    assert got == {"UNGRADED": (None, None, None), "SEVERE": (None, True, "bleeding"),
                   "NONE": (0, False, "censored")}
    _not_collected(reg, "outcomes.death_on")
    row = reg.one("patient_bleeding", patient_id="NONE")
    assert (row["bleeding_grade_3plus_30d"], row["event_type"], row["event_not_assessable_reason"]) == (
        False, None, "deaths_not_collected")


def test_exposures_null_where_not_collected():
    reg = Registry()
    reg.patient("P")
    reg.add("outcomes", patient_id="P", last_followup_on=day(100))  # followed past the window
    row = reg.one("patient_exposures", patient_id="P")
    assert (row["infection"], row["tocilizumab"], row["tocilizumab_doses"], row["corticosteroid"]) == (
        False, False, 0, False)  # collected, none recorded: none
    _not_collected(reg, "infections", "medications")
    row = reg.one("patient_exposures", patient_id="P")
    assert (row["infection"], row["n_infections"], row["tocilizumab"], row["tocilizumab_doses"],
            row["corticosteroid"]) == (None, None, None, None, None)
    reasons = {r["variable"]: (r["state"], r["reason"])
               for r in reg.rows("SELECT * FROM patient_missing WHERE patient_id = 'P'")}
    assert reasons["infection"] == ("not_collected", "infections_not_collected")
    assert reasons["tocilizumab"] == ("not_collected", "medications_not_collected")
    assert reasons["corticosteroid"] == ("not_collected", "medications_not_collected")


def test_platelet_units_unknown_when_a_counted_unit_is_unknown():
    reg = Registry()
    reg.patient("P")
    _ok(reg, "P", "T1", at(1), units=None)
    _ok(reg, "P", "T2", at(2))
    reg.patient("NONE")
    for pid in ("P", "NONE"):  # followed to day 100 (a shorter follow-up leaves the total unknown)
        reg.add("outcomes", patient_id=pid, last_followup_on=day(100))
    got = {r["patient_id"]: (r["plt_units_until_recovery"], r["plt_dose_e11_until_recovery"])
           for r in reg.rows("SELECT * FROM patient_platelet_dose")}
    assert got == {"P": (None, 6.0), "NONE": (0.0, 0.0)}
    _not_collected(reg, "transfusions")
    row = reg.one("patient_platelet_dose", patient_id="NONE")
    assert (row["plt_units_until_recovery"], row["plt_dose_e11_until_recovery"]) == (None, None)


def test_recovery_null_without_labs():
    reg = Registry()
    reg.patient("P")
    _not_collected(reg, "labs")
    row = reg.one("patient_recovery", patient_id="P")
    assert row["neutrophil_recovery_90d"] is None and row["platelet_improvement_30d"] is None
    reasons = {r["variable"]: r["reason"] for r in reg.rows("SELECT * FROM patient_missing")}
    assert reasons["platelet_recovery_90d"] == "labs_not_collected"


# ---------------------------------------------------------------------------------------------
# The record itself


def test_collection_frame_states():
    frame = collection.collection_frame(
        {"patients": ["center_id", "patient_id", "sex"], "transfusions": ["center_id", "patient_id", "storage_h",
                                                                            "abo_compatible"]},
        collection.parse_declaration(["transfusions.abo_compatible"]),
    )
    state = {(r["table"], r["column"]): (r["collected"], r["how"]) for r in frame.iter_rows(named=True)}
    assert state[("transfusions", None)] == (True, "submitted")
    assert state[("transfusions", "storage_h")] == (True, "submitted")
    assert state[("transfusions", "abo_compatible")] == (False, "declared")
    assert state[("transfusions", "dose_e11")] == (False, "absent")
    assert state[("bleeding_events", None)] == (False, "absent")
    assert state[("bleeding_events", "who_grade")] == (False, "absent")
    listed = collection.not_collected_list(frame)
    assert "bleeding_events" in listed["tables"]
    assert "transfusions.abo_compatible" in listed["columns"]
    assert not any(c.startswith("bleeding_events.") for c in listed["columns"])


@pytest.mark.parametrize("entry, problem", [
    ("patients", "required"),
    ("transfusions.center_id", "identifies"),
    ("bleeding", "not a CDM table"),
    ("transfusions.age", "no column"),
])
def test_declaration_problems(entry, problem):
    d = collection.parse_declaration([entry])
    assert len(d.problems) == 1 and problem in d.problems[0]
    assert not d.tables and not d.columns


def _ingest(sub, store: Path):
    from store_helpers import store_submission

    store_submission(sub, store)
    import duckdb

    con = duckdb.connect(str(store), read_only=True)
    try:
        return {(t, c): (v, h) for t, c, v, h in con.execute(
            'SELECT "table", "column", collected, how FROM collection').fetchall()}
    finally:
        con.close()


def test_ingest_records_an_absent_table(tmp_path: Path, clean_extract: Path):
    """Through the real pipeline: a canonical extract without its bleeding file."""
    from ptrharmonize.read.canonical import read_canonical

    (clean_extract / "bleeding_events.csv").unlink(missing_ok=True)
    rows = _ingest(read_canonical(clean_extract), tmp_path / "s.duckdb")
    assert rows[("bleeding_events", None)] == (False, "absent")
    assert rows[("bleeding_events", "who_grade")] == (False, "absent")
    assert rows[("transfusions", "storage_h")] == (True, "submitted")
    assert rows[("patients", None)] == (True, "submitted")


def test_mapping_declares_not_collected(tmp_path: Path, clean_extract: Path):
    """A mapping that leaves out a column and a table, declared `not_collected`: stored as such,
    and the left-out column is not a validation error."""
    import yaml

    from extract_factory import HEADERS
    from ptrharmonize.mapping import apply_mapping, lint_mapping

    tables = {t: {"file": f"{t}.csv", "columns": {c: c for c in cols if c != "center_id"
                                                   and not (t == "transfusions" and c == "storage_h")}}
              for t, cols in HEADERS.items() if t != "infections"}
    doc = {"mapping_version": 1, "center_id": "T01", "tables": tables,
           "not_collected": ["transfusions.storage_h", "infections"],
           "defaults": {"timestamp_format": "%Y-%m-%dT%H:%M:%S", "date_format": "%Y-%m-%d"}}
    mapping = tmp_path / "m.yaml"
    mapping.write_text(yaml.safe_dump(doc), encoding="utf-8")
    assert not [p for p in lint_mapping(mapping, clean_extract) if "not_collected" in p["message"]]
    rows = _ingest(apply_mapping(mapping, clean_extract), tmp_path / "s.duckdb")
    assert rows[("transfusions", "storage_h")] == (False, "declared")
    assert rows[("infections", None)] == (False, "declared")
    assert rows[("transfusions", "dose_e11")] == (True, "submitted")


# ---------------------------------------------------------------------------------------------
# Two centers that collect different things (issue 16: "In a pooled registry, where centers
# collect different things, this silently biases every pooled estimate")


def test_two_centers_collecting_different_tables_keep_their_own_states():
    """C01 collects everything; C02 declares bleeding_events, medications and
    transfusions.storage_h not collected. CDM v1: an absent table means "not collected"; issue
    16: the not-collected outcomes are NULL for C02's patients only, never "none", and C01's
    patients without a record keep their known "none"."""
    reg = Registry()
    for center in ("C01", "C02"):
        _car_t_patient(reg, center)
        reg.add("outcomes", center_id=center, patient_id="P", last_followup_on=day(100))
        for i, d in enumerate((1, 3)):  # two failed increments: PTR where storage is known
            reg.add("transfusions", center_id=center, patient_id="P", transfusion_id=f"T{i}",
                    transfused_at=at(d), dose_e11=3.0, units_reported=1.0,
                    storage_h=24.0 if center == "C01" else None, abo_compatible=True,
                    pre_count_e9l=10.0, pre_count_at=at(d, 7), post_count_e9l=13.0, post_count_at=at(d, 9))
    _not_collected(reg, center="C01")
    _not_collected(reg, "bleeding_events", "medications", "transfusions.storage_h", center="C02")
    got = {r["center_id"]: r for r in reg.rows("SELECT * FROM patient_summary")}
    c1, c2 = got["C01"], got["C02"]
    assert (c1["ptr"], c1["bleeding_grade_3plus_30d"], c1["tocilizumab"], c1["corticosteroid"]) == (
        True, False, False, False)
    assert (c2["ptr"], c2["bleeding_grade_3plus_30d"], c2["tocilizumab"], c2["corticosteroid"]) == (
        None, None, None, None)
    assert c2["event_type"] is None  # no competing-risk event where bleeding is not collected
    reasons = {(r["center_id"], r["variable"]): (r["state"], r["reason"])
               for r in reg.rows("SELECT * FROM patient_missing")}
    assert reasons[("C02", "ptr")] == ("not_collected", "storage_not_collected")
    assert reasons[("C02", "bleeding_grade_3plus_30d")] == ("not_collected", "bleeding_not_collected")
    assert reasons[("C02", "tocilizumab")] == ("not_collected", "medications_not_collected")
    assert not any(c == "C01" for c, _ in reasons if _ in ("ptr", "bleeding_grade_3plus_30d", "tocilizumab"))


def test_recovery_without_outcomes_table_uses_the_last_record():
    """A center that does not send outcomes: the last dated record is the last contact
    (definitions followup.last_contact_from_records); counts that stop on day 15 leave "not
    recovered by day 90" unknown, with the reason an analysis reports."""
    reg = Registry()
    reg.patient("P")
    for d, v in ((0, 30.0), (10, 5.0), (15, 8.0)):
        reg.lab("P", "PLT", at(d, 6), v)
    _not_collected(reg, "outcomes")
    row = reg.one("patient_recovery", patient_id="P")
    assert (row["platelet_recovery_90d"], row["followup_ends_before_90d"]) == (None, True)
    reasons = {r["variable"]: (r["state"], r["reason"])
               for r in reg.rows("SELECT * FROM patient_missing WHERE patient_id = 'P'")}
    assert reasons["platelet_recovery_90d"] == ("unknown", "followup_ended_in_window")


def test_every_derivation_states_its_missing_data_handling_with_a_source():
    """Issue 16: "Each definition's handling of missing data is written next to it in
    schemas/definitions.yaml with its source." Every section the views read (all but the
    analysis settings) has a `missing_data` text naming its source."""
    defs = CATALOG.definitions
    for section, body in defs.items():
        if section == "analysis":  # statistical choices, not a derivation
            continue
        text = body.get("missing_data") if isinstance(body, dict) else None
        assert text and "Source:" in text, section


def test_a_baseline_column_not_collected_is_not_collected_not_unknown():
    """CDM v1: an absent column means "not collected", "Empty means unknown". C02 declares
    `patients.extramedullary` and `patients.weight_kg` not collected; C01 collects them and
    leaves the cells blank. Issue 16: the two states are kept apart to the reasons an analysis
    reports, so C02's patient is `not_collected` (bsa_m2 needs the weight) and C01's `unknown`."""
    reg = Registry()
    for center in ("C01", "C02"):
        reg.add("patients", center_id=center, patient_id="P", sex="F", diagnosis="B-ALL",
                height_cm=170.0, weight_kg=None, extramedullary=None)
        reg.add("treatments", center_id=center, patient_id="P", treatment_type="car_t",
                index_date=day(0), car_target="CD19")
    _not_collected(reg, center="C01")
    _not_collected(reg, "patients.extramedullary", "patients.weight_kg", center="C02")
    reasons = {(r["center_id"], r["variable"]): (r["state"], r["reason"])
               for r in reg.rows("SELECT * FROM patient_missing")}
    assert reasons[("C01", "extramedullary")] == ("unknown", "extramedullary_unknown")
    assert reasons[("C02", "extramedullary")] == ("not_collected", "extramedullary_not_collected")
    assert reasons[("C01", "bsa_m2")] == ("unknown", "bsa_m2_unknown")
    assert reasons[("C02", "bsa_m2")] == ("not_collected", "bsa_m2_not_collected")


def test_exposures_none_needs_followup_to_the_window_end():
    """Issue 16: "bleeding, infection, tocilizumab, corticosteroid and the recovery outcomes are
    NULL where their table or window is not collected"; definitions `exposures` (window 0..30
    days) and `followup` (a windowed "no" needs follow-up to the window's end or a death inside
    it). A patient last seen alive on day 12 with no record has no observed "none"; a record
    already seen is a known yes; a death on day 10 settles the "none"."""
    reg = Registry()
    reg.patient("SHORT")
    reg.add("outcomes", patient_id="SHORT", last_followup_on=day(12))
    reg.patient("SHORT_TOCI")
    reg.add("outcomes", patient_id="SHORT_TOCI", last_followup_on=day(12))
    reg.add("medications", patient_id="SHORT_TOCI", drug="tocilizumab", started_on=day(3), n_doses=2)
    reg.patient("DIED")
    reg.add("outcomes", patient_id="DIED", last_followup_on=day(10), death_on=day(10))
    reg.patient("FOLLOWED")
    reg.add("outcomes", patient_id="FOLLOWED", last_followup_on=day(60))
    got = {r["patient_id"]: (r["infection"], r["n_infections"], r["tocilizumab"], r["tocilizumab_doses"],
                             r["corticosteroid"], r["exposures_followup_ended"])
           for r in reg.rows("SELECT * FROM patient_exposures")}
    assert got == {
        "SHORT": (None, None, None, None, None, True),
        "SHORT_TOCI": (None, None, True, None, None, True),
        "DIED": (False, 0, False, 0, False, False),
        "FOLLOWED": (False, 0, False, 0, False, False),
    }
    reasons = {(r["patient_id"], r["variable"]): (r["state"], r["reason"])
               for r in reg.rows("SELECT * FROM patient_missing")}
    assert reasons[("SHORT", "infection")] == ("unknown", "followup_ended_in_window")
    assert reasons[("SHORT", "tocilizumab")] == ("unknown", "followup_ended_in_window")
    assert reasons[("SHORT_TOCI", "tocilizumab_doses")] == ("unknown", "followup_ended_in_window")
    assert ("SHORT_TOCI", "tocilizumab") not in reasons


def test_cytokine_data_not_collected_is_not_no_cytokine_data():
    """CDM v1: an absent table means "not collected"; the guide: "An unknown is never a 'no'".
    A center that does not collect labs has no cytokine profile to look at: has_cytokines is
    NULL with the reason labs_not_collected, and the CAR-T subgroup's flow says so. It said "no
    cytokine data", as if the center had measured and found none. A center collecting labs whose
    patient has no IL-6, IL-10 or IFN-gamma value in the window keeps the known "no"
    (the study left out of its CAR-T subgroup the patient without a cytokine profile)."""
    from ptrharmonize.analysis.population import population

    reg = Registry()
    for center in ("C01", "C02"):
        _car_t_patient(reg, center)
    reg.add("labs", center_id="C01", patient_id="P", analyte="CRP", measured_at=at(2), value=10.0, unit="mg/L")
    _not_collected(reg, center="C01")
    _not_collected(reg, "labs", center="C02")
    got = {r["center_id"]: r for r in reg.rows("SELECT * FROM patient_summary")}
    assert got["C01"]["has_cytokines"] is False
    assert got["C02"]["has_cytokines"] is None
    reasons = {(r["center_id"], r["variable"]): (r["state"], r["reason"])
               for r in reg.rows("SELECT * FROM patient_missing")}
    assert reasons[("C02", "has_cytokines")] == ("not_collected", "labs_not_collected")
    assert ("C01", "has_cytokines") not in reasons  # a known "no" is not missing
    pop = population(reg.con, "cart_characteristics")
    assert pop["by_center"]["C01"]["excluded"] == {"no cytokine data": 1}
    assert pop["by_center"]["C02"]["excluded"] == {"cytokine data not collected: labs_not_collected": 1}
