"""Issue 17, property-based (hypothesis): transfusion events and the CRS grades on small random
registries shaped unlike the generators (units close together or not, shared or new pre counts,
random signs with gaps), checked against oracles written from the definitions' text.

Rows go straight into an in-memory store (`store.create_schema`) with the views installed; the
hand-built cases in tests/cases/ cover the same clauses through `ptrh ingest`.
"""

from __future__ import annotations

import datetime as dt

import duckdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ptrharmonize import derive, store

INDEX = dt.datetime(2021, 3, 1, 8, 0)
SETTINGS = settings(max_examples=20, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


_CON: duckdb.DuckDBPyConnection | None = None


def _store() -> duckdb.DuckDBPyConnection:
    """One in-memory store per test session (installing the views is the slow part); each
    example starts from a single patient without transfusions or CRS rows."""
    global _CON
    if _CON is not None:
        _CON.execute("DELETE FROM transfusions")
        _CON.execute("DELETE FROM crs_assessments")
        return _CON
    con = _CON = duckdb.connect()
    store.create_schema(con)
    derive.install_views(con, {"bsa": {"formula": "mosteller"}})
    con.execute("INSERT INTO patients (center_id, patient_id, sex, diagnosis, height_cm, weight_kg, "
                "submission_id, source_file, source_row) VALUES ('C', 'P', 'F', 'B-ALL', 180, 80, 's', 'f', 1)")
    con.execute("INSERT INTO treatments (center_id, patient_id, treatment_type, index_date, car_target, "
                "submission_id, source_file, source_row) VALUES ('C', 'P', 'car_t', DATE '2021-03-01', 'CD19', 's', 'f', 1)")
    return con


# A unit: minutes after the previous unit, whether a new pre count was drawn before it, dose.
units = st.lists(st.tuples(st.integers(0, 400), st.booleans(), st.sampled_from([1.5, 2.5, 3.0, 4.0])),
                 min_size=1, max_size=8)


@SETTINGS
@given(units)
def test_events_partition_the_units_as_the_definition_says(plan):
    con = _store()
    at, pre_at, pre = INDEX + dt.timedelta(days=1), None, 10.0
    rows, expected_events, prev = [], [], None
    for i, (gap, new_pre, dose) in enumerate(plan):
        at = at + dt.timedelta(minutes=gap)
        if new_pre or pre_at is None:
            pre_at, pre = at - dt.timedelta(minutes=30), 10.0 + i
        tid = f"T{i:02d}"
        # oracle: a unit joins the previous unit's event when it starts <= 2 h after it with
        # the same pre count (issue 17 default); otherwise it starts a new event
        if prev is not None and (at - prev[0]) <= dt.timedelta(hours=2) and prev[1] == (pre, pre_at):
            expected_events[-1].append(tid)
        else:
            expected_events.append([tid])
        prev = (at, (pre, pre_at))
        rows.append((tid, at, dose, pre, pre_at))
    for i, (tid, at_, dose, pre_, pre_at_) in enumerate(rows):
        con.execute(
            "INSERT INTO transfusions (center_id, patient_id, transfusion_id, transfused_at, dose_e11, "
            "units_reported, storage_h, abo_compatible, pre_count_e9l, pre_count_at, post_count_e9l, "
            "post_count_at, submission_id, source_file, source_row) "
            "VALUES ('C', 'P', ?, ?, ?, 1, 24, true, ?, ?, NULL, NULL, 's', 'f', ?)",
            [tid, at_, dose, pre_, pre_at_, i + 2])
    got = con.execute("SELECT transfusion_ids, n_units, dose_e11 FROM transfusion_events "
                      "ORDER BY transfused_at, event_id").fetchall()
    assert [list(ids) for ids, _, _ in got] == expected_events
    doses = {tid: d for tid, _, d, _, _ in rows}
    for ids, n, dose in got:
        assert n == len(ids)
        assert abs(dose - sum(doses[t] for t in ids)) < 1e-9  # the event's dose is the sum
    # every unit row carries its event
    per_unit = dict(con.execute("SELECT transfusion_id, event_id FROM transfusion_cci").fetchall())
    assert per_unit == {t: ids[0] for ids in expected_events for t in ids}


signs = st.fixed_dictionaries({
    "max_temp_c": st.one_of(st.none(), st.sampled_from([36.5, 37.9, 38.0, 39.5])),
    "hypotension": st.one_of(st.none(), st.booleans()),
    "vasopressors": st.one_of(st.none(), st.integers(0, 3)),
    "ne_equiv_ug_min": st.one_of(st.none(), st.sampled_from([0.0, 4.0, 12.0, 20.0, 30.0])),
    "vasopressin": st.one_of(st.none(), st.booleans()),
    "fio2_pct": st.one_of(st.none(), st.sampled_from([21.0, 30.0, 39.0, 40.0, 60.0])),
    "o2_device": st.one_of(st.none(), st.sampled_from(
        ["none", "low_flow", "high_flow", "facemask", "nonrebreather", "venturi", "cpap", "bipap", "ventilator"])),
    "o2_flow_l_min": st.one_of(st.none(), st.sampled_from([0.0, 2.0, 6.0, 7.0, 40.0])),
    "organ_toxicity_grade": st.one_of(st.none(), st.integers(0, 4)),
    "transaminitis_grade": st.one_of(st.none(), st.integers(0, 4)),
})


@SETTINGS
@given(signs, st.sampled_from(["temperature", "hypotension", "vasopressors", "ne_equiv_ug_min",
                               "fio2_pct", "o2_device", "o2_flow_l_min", "organ_toxicity_grade"]))
def test_a_missing_sign_never_raises_a_grade(day, erase):
    """'The worst grade the recorded signs prove': erasing a recorded sign can lower a grade,
    never raise it, on either scale (no masking therapy here, so fever is required by ASTCT)."""
    erase = "max_temp_c" if erase == "temperature" else erase
    con = _store()
    cols = list(day)
    for n, values in enumerate((day, {**day, erase: None})):
        con.execute(
            f"INSERT INTO crs_assessments (center_id, patient_id, assessed_on, {', '.join(cols)}, "
            "submission_id, source_file, source_row) "
            f"VALUES ('C', 'P', ?, {', '.join('?' for _ in cols)}, 's', 'f', ?)",
            [dt.date(2021, 3, 2 + n), *[values[c] for c in cols], n + 2])
    full, partial = con.execute(
        "SELECT lee2014_grade, astct2019_grade FROM crs_graded ORDER BY assessed_on").fetchall()
    for a, b in zip(full, partial, strict=True):
        if b is not None:
            assert a is not None and b <= a, (day, erase, full, partial)
