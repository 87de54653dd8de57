"""The derived views (issue 4) on small patient histories built by hand, one rule edge each.

Every test runs the real SQL in a real in-memory DuckDB holding the store tables of
`store.create_schema`; rows go in through `Registry.add`, which fills the provenance columns.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import duckdb
import polars as pl
import pytest

from ptrharmonize import derive, store
from ptrharmonize.cdm import load_catalog

CATALOG = load_catalog()
INDEX = dt.date(2021, 3, 1)
CENTER = "C01"


def day(n: int) -> dt.date:
    return INDEX + dt.timedelta(days=n)


def at(n: int, hour: int = 8, minute: int = 0) -> dt.datetime:
    """Day n after the index date (day 0 = index date), at hour:minute."""
    return dt.datetime.combine(day(n), dt.time(hour, minute))


class Registry:
    """An in-memory store with the views installed, and helpers to write a patient's history."""

    def __init__(self, definitions: dict | None = None) -> None:
        self.con = duckdb.connect()
        store.create_schema(self.con)
        derive.install_views(self.con, definitions)
        self._row = 1

    def reinstall(self, definitions: dict | None) -> None:
        derive.install_views(self.con, definitions)

    def add(self, table: str, **values) -> None:
        spec = CATALOG.tables[table]
        unknown = set(values) - set(spec.column_names)
        assert not unknown, f"{table}: no column {unknown}"
        values.setdefault("center_id", CENTER)
        self._row += 1
        cols = spec.column_names + ["submission_id", "source_file", "source_row"]
        row = [values.get(c) for c in spec.column_names] + ["test", f"{table}.csv", self._row]
        marks = ", ".join("?" for _ in cols)
        self.con.execute(
            f"INSERT INTO {store.qi(table)} ({', '.join(store.qi(c) for c in cols)}) VALUES ({marks})",
            row,
        )

    # --- builders -------------------------------------------------------------------------
    def patient(self, pid: str, *, height=170.0, weight=70.0, treatment="car_t", index=INDEX, **extra):
        self.add("patients", patient_id=pid, sex=extra.pop("sex", "F"), diagnosis="B-ALL",
                 height_cm=height, weight_kg=weight, **extra)
        self.add("treatments", patient_id=pid, treatment_type=treatment, index_date=index,
                 car_target="CD19" if treatment == "car_t" else None)

    def tx(self, pid: str, tid: str, when: dt.datetime, *, pre=10.0, pre_before_h=1.0,
           post=40.0, post_after_h=1.0, dose=3.0, storage=24.0, abo=True, units=1.0, **extra):
        self.add(
            "transfusions", patient_id=pid, transfusion_id=tid, transfused_at=when,
            dose_e11=dose, units_reported=units, storage_h=storage, abo_compatible=abo,
            pre_count_e9l=pre,
            pre_count_at=None if pre is None or pre_before_h is None
            else when - dt.timedelta(hours=pre_before_h),
            post_count_e9l=post,
            post_count_at=None if post is None or post_after_h is None
            else when + dt.timedelta(hours=post_after_h),
            **extra,
        )

    def lab(self, pid: str, analyte: str, when: dt.datetime, value: float):
        unit = CATALOG.tables["labs"].extra["canonical_units"][analyte]
        self.add("labs", patient_id=pid, analyte=analyte, measured_at=when, value=value, unit=unit)

    def daily(self, pid: str, analyte: str, values: dict[int, float], hour: int = 6):
        for d, v in values.items():
            self.lab(pid, analyte, at(d, hour), v)

    def crs(self, pid: str, on: int = 1, **signs):
        self.add("crs_assessments", patient_id=pid, assessed_on=day(on), **signs)

    # --- readers --------------------------------------------------------------------------
    def rows(self, sql: str, params: list | None = None) -> list[dict]:
        rel = self.con.execute(sql, params or [])
        cols = [d[0] for d in rel.description]
        return [dict(zip(cols, r, strict=True)) for r in rel.fetchall()]

    def one(self, view: str, **key) -> dict:
        where = " AND ".join(f"{store.qi(k)} = ?" for k in key)
        found = self.rows(f"SELECT * FROM {store.qi(view)} WHERE {where}", list(key.values()))
        assert len(found) == 1, (view, key, found)
        return found[0]


@pytest.fixture
def reg() -> Registry:
    return Registry()


MOSTELLER = {"bsa": {"formula": "mosteller"}}  # 180 cm x 80 kg -> BSA exactly 2.0 m2


# ---------------------------------------------------------------------------------------------
# BSA


# Published values for 170 cm / 70 kg, to the two decimals calculators print (calcipedia.org BSA
# calculator: Mosteller 1.82, Du Bois 1.81, Haycock 1.83, Gehan & George 1.83), and the exact
# formulas (Du Bois 1916; Mosteller 1987; Haycock 1978; Gehan & George 1970).
@pytest.mark.parametrize(
    "formula, published, exact",
    [
        ("dubois", 1.81, 0.007184 * 170**0.725 * 70**0.425),
        ("mosteller", 1.82, (170 * 70 / 3600) ** 0.5),
        ("haycock", 1.83, 0.024265 * 170**0.3964 * 70**0.5378),
        ("gehan_george", 1.83, 0.0235 * 170**0.42246 * 70**0.51456),
    ],
)
def test_bsa_formula_matches_published_value(formula, published, exact):
    reg = Registry({"bsa": {"formula": formula}})
    reg.patient("P1", height=170.0, weight=70.0)
    got = reg.one("patient_bsa", patient_id="P1")
    assert got["bsa_formula"] == formula
    assert round(got["bsa_m2"], 2) == published
    assert got["bsa_m2"] == pytest.approx(exact, rel=1e-12)


def test_bsa_default_is_dubois_and_mosteller_example(reg):
    reg.patient("P1", height=170.0, weight=70.0)
    assert reg.one("patient_bsa", patient_id="P1")["bsa_formula"] == "dubois"
    reg.reinstall(MOSTELLER)
    reg.patient("P2", height=180.0, weight=80.0)  # sqrt(180 x 80 / 3600) = 2
    assert reg.one("patient_bsa", patient_id="P2")["bsa_m2"] == pytest.approx(2.0, abs=1e-12)


def test_missing_height_gives_no_bsa(reg):
    reg.patient("P1", height=None)
    reg.tx("P1", "T1", at(1))
    assert reg.one("patient_bsa", patient_id="P1")["bsa_m2"] is None
    got = reg.one("transfusion_cci", transfusion_id="T1")
    assert (got["evaluable"], got["not_evaluable_reason"], got["cci"]) == (False, "no_bsa", None)


# ---------------------------------------------------------------------------------------------
# CCI and evaluability


def test_cci_formula(reg):
    reg.patient("P1", height=170.0, weight=70.0)
    reg.tx("P1", "T1", at(1), pre=10.0, post=40.0, dose=3.0)
    got = reg.one("transfusion_cci", transfusion_id="T1")
    bsa = 0.007184 * 170**0.725 * 70**0.425
    assert got["cci"] == pytest.approx((40 - 10) * 1000 * bsa / 3.0)
    assert got["evaluable"] is True and got["not_evaluable_reason"] is None
    assert got["pre_count_source"] == "transfusion" and got["post_count_source"] == "transfusion"
    assert got["hours_to_post"] == pytest.approx(1.0)


def test_cci_of_exactly_5000_is_not_refractory():
    reg = Registry(MOSTELLER)
    reg.patient("P1", height=180.0, weight=80.0)
    # (20 - 10) x 1000 x 2.0 / 4 = 5000, twice in a row
    reg.tx("P1", "T1", at(1), pre=10.0, post=20.0, dose=4.0)
    reg.tx("P1", "T2", at(2), pre=10.0, post=20.0, dose=4.0)
    for tid in ("T1", "T2"):
        got = reg.one("transfusion_cci", transfusion_id=tid)
        assert got["cci"] == 5000.0
        assert got["evaluable"] is True and got["low_cci"] is False
    ptr = reg.one("patient_ptr", patient_id="P1")
    assert (ptr["ptr"], ptr["n_evaluable"], ptr["n_low_cci"]) == (False, 2, 0)


def test_cci_just_below_5000_is_refractory():
    reg = Registry(MOSTELLER)
    reg.patient("P1", height=180.0, weight=80.0)
    reg.tx("P1", "T1", at(1), pre=10.0, post=19.99, dose=4.0)  # 4998
    reg.tx("P1", "T2", at(2), pre=10.0, post=19.99, dose=4.0)
    assert reg.one("transfusion_cci", transfusion_id="T1")["low_cci"] is True
    ptr = reg.one("patient_ptr", patient_id="P1")
    assert (ptr["ptr"], ptr["n_low_cci"], ptr["ptr_onset_at"]) == (True, 2, at(2))


def test_threshold_comes_from_definitions():
    reg = Registry({**MOSTELLER, "cci": {"refractory_below": 6000}})
    reg.patient("P1", height=180.0, weight=80.0)
    reg.tx("P1", "T1", at(1), pre=10.0, post=20.0, dose=4.0)
    assert reg.one("transfusion_cci", transfusion_id="T1")["low_cci"] is True


@pytest.mark.parametrize(
    "post_after_h, evaluable, reason",
    [
        # window: 10 min .. 12 h after the assumed end (start + 30 min infusion)
        (12.5, True, None),  # exactly 12 h after the end: inside the window
        (12.5 + 1 / 60, False, "post_count_outside_window"),  # 12 h 1 min: outside
        (0.5 + 10 / 60, True, None),  # 10 min after the end: inside
        (0.5 + 9 / 60, False, "post_count_outside_window"),  # 9 min after the end: outside
        (10 / 60, False, "post_count_outside_window"),  # 10 min after the start: during the infusion
        (0.0, False, "post_count_outside_window"),  # at the start: not after the transfusion
        (-1.0, False, "post_count_outside_window"),
    ],
)
def test_post_count_window(reg, post_after_h, evaluable, reason):
    reg.patient("P1")
    reg.tx("P1", "T1", at(1), post_after_h=post_after_h)
    got = reg.one("transfusion_cci", transfusion_id="T1")
    assert (got["evaluable"], got["not_evaluable_reason"]) == (evaluable, reason)
    assert got["hours_to_post"] == pytest.approx(post_after_h)


@pytest.mark.parametrize(
    "storage, evaluable, reason",
    [(72.0, False, "storage_72h_or_more"), (71.99, True, None), (96.0, False, "storage_72h_or_more"),
     (None, False, "storage_unknown")],
)
def test_storage_must_be_below_72h(reg, storage, evaluable, reason):
    reg.patient("P1")
    reg.tx("P1", "T1", at(1), storage=storage)
    got = reg.one("transfusion_cci", transfusion_id="T1")
    assert (got["evaluable"], got["not_evaluable_reason"]) == (evaluable, reason)


@pytest.mark.parametrize(
    "pre_before_h, evaluable, reason",
    [(24.0, True, None), (24.0 + 1 / 60, False, "pre_count_too_early"), (0.0, True, None),
     (-0.5, False, "pre_count_after_transfusion")],
)
def test_pre_count_window(reg, pre_before_h, evaluable, reason):
    reg.patient("P1")
    reg.tx("P1", "T1", at(2), pre_before_h=pre_before_h)
    got = reg.one("transfusion_cci", transfusion_id="T1")
    assert (got["evaluable"], got["not_evaluable_reason"]) == (evaluable, reason)


def test_abo_dose_and_missing_count_reasons(reg):
    reg.patient("P1")
    reg.tx("P1", "T1", at(1), abo=False)
    reg.tx("P1", "T2", at(2), abo=None)
    reg.tx("P1", "T3", at(3), dose=None)
    reg.tx("P1", "T4", at(4), pre=None)
    reg.tx("P1", "T5", at(5), post=None)
    reg.tx("P1", "T6", at(6), abo=False, storage=80.0, dose=None)  # first failing reason wins
    reasons = {r["transfusion_id"]: r["not_evaluable_reason"]
               for r in reg.rows("SELECT * FROM transfusion_cci")}
    assert reasons == {"T1": "abo_incompatible", "T2": "abo_unknown", "T3": "no_dose",
                       "T4": "no_pre_count", "T5": "no_post_count", "T6": "abo_incompatible"}


def test_unknown_abo_evaluable_when_configured():
    reg = Registry({"cci": {"abo_unknown_evaluable": True}})
    reg.patient("P1")
    reg.tx("P1", "T1", at(1), abo=None)
    assert reg.one("transfusion_cci", transfusion_id="T1")["evaluable"] is True


def test_untimed_counts_accepted_by_default_and_refused_when_configured(reg):
    reg.patient("P1")
    reg.tx("P1", "T1", at(1), pre_before_h=None, post_after_h=None)
    got = reg.one("transfusion_cci", transfusion_id="T1")
    assert got["evaluable"] is True and got["hours_to_post"] is None
    reg.reinstall({"cci": {"accept_untimed_counts": False}})
    got = reg.one("transfusion_cci", transfusion_id="T1")
    assert got["not_evaluable_reason"] == "pre_count_time_unknown"


def test_counts_missing_on_the_transfusion_come_from_labs(reg):
    reg.patient("P1")
    reg.tx("P1", "T1", at(3, 10), pre=None, post=None)
    reg.lab("P1", "PLT", at(2, 12), 4.0)  # 22 h before: older than the last count
    reg.lab("P1", "PLT", at(3, 7), 8.0)  # the last count before: pre
    reg.lab("P1", "PLT", at(3, 10), 9.0)  # at the very start: still "before"
    reg.lab("P1", "PLT", at(3, 11), 30.0)  # the first count after: post
    reg.lab("P1", "PLT", at(3, 18), 22.0)
    got = reg.one("transfusion_cci", transfusion_id="T1")
    assert (got["pre_count_e9l"], got["pre_count_at"], got["pre_count_source"]) == (9.0, at(3, 10), "labs")
    assert (got["post_count_e9l"], got["post_count_at"], got["post_count_source"]) == (30.0, at(3, 11), "labs")
    assert got["evaluable"] is True and got["hours_to_post"] == pytest.approx(1.0)


def test_recorded_counts_take_precedence_over_labs(reg):
    reg.patient("P1")
    reg.tx("P1", "T1", at(3, 10), pre=12.0, post=50.0)
    reg.lab("P1", "PLT", at(3, 9, 30), 99.0)
    reg.lab("P1", "PLT", at(3, 10, 30), 99.0)
    got = reg.one("transfusion_cci", transfusion_id="T1")
    assert (got["pre_count_e9l"], got["post_count_e9l"]) == (12.0, 50.0)


def test_lab_counts_outside_their_windows(reg):
    reg.patient("P1")
    reg.tx("P1", "T1", at(3, 10), pre=None, post=None)
    reg.lab("P1", "PLT", at(2, 9), 5.0)  # 25 h before
    reg.lab("P1", "PLT", at(3, 23), 30.0)  # 13 h after
    got = reg.one("transfusion_cci", transfusion_id="T1")
    assert got["not_evaluable_reason"] == "pre_count_too_early"
    assert got["hours_before_pre"] == pytest.approx(25.0)
    reg.lab("P1", "PLT", at(3, 6), 6.0)
    got = reg.one("transfusion_cci", transfusion_id="T1")
    assert got["not_evaluable_reason"] == "post_count_outside_window"
    assert got["hours_to_post"] == pytest.approx(13.0)
    assert got["cci"] is not None  # computed, but not evaluable


def test_no_plt_lab_at_all(reg):
    reg.patient("P1")
    reg.tx("P1", "T1", at(3), pre=None, post=None)
    assert reg.one("transfusion_cci", transfusion_id="T1")["not_evaluable_reason"] == "no_pre_count"


def test_post_count_after_the_next_transfusion_is_not_evaluable(reg):
    reg.patient("P1")
    reg.tx("P1", "T1", at(3, 10), post=None)
    reg.tx("P1", "T2", at(3, 12), post_after_h=2.0)  # started before T1's first count after it
    reg.lab("P1", "PLT", at(3, 13), 30.0)
    got = reg.one("transfusion_cci", transfusion_id="T1")
    assert got["not_evaluable_reason"] == "post_count_after_next_transfusion"
    assert got["next_transfused_at"] == at(3, 12)
    reg.reinstall({"cci": {"post_before_next_transfusion": False}})
    assert reg.one("transfusion_cci", transfusion_id="T1")["evaluable"] is True


def test_two_units_started_together_do_not_cut_each_other(reg):
    reg.patient("P1")
    reg.tx("P1", "T1", at(3, 10), post_after_h=1.0)
    reg.tx("P1", "T2", at(3, 10), post_after_h=1.0)
    assert all(r["evaluable"] for r in reg.rows("SELECT * FROM transfusion_cci"))


# ---------------------------------------------------------------------------------------------
# PTR


def _low(reg, pid, tid, when):  # CCI about 1800: a failed increment
    reg.tx(pid, tid, when, pre=10.0, post=13.0)


def _ok(reg, pid, tid, when):  # CCI about 18000
    reg.tx(pid, tid, when, pre=10.0, post=40.0)


def test_ptr_consecutive_versus_any_two(reg):
    reg.patient("ALT")  # low, ok, low: two failures, never consecutive
    _low(reg, "ALT", "A1", at(1))
    _ok(reg, "ALT", "A2", at(2))
    _low(reg, "ALT", "A3", at(3))
    reg.patient("RUN")  # ok, low, low: consecutive
    _ok(reg, "RUN", "R1", at(1))
    _low(reg, "RUN", "R2", at(2))
    _low(reg, "RUN", "R3", at(3))
    reg.patient("GAP")  # low, non-evaluable, low: still consecutive among evaluable ones
    _low(reg, "GAP", "G1", at(1))
    reg.tx("GAP", "G2", at(2), storage=80.0, pre=10.0, post=60.0)
    _low(reg, "GAP", "G3", at(3))
    reg.patient("NONE")

    def ptr():
        return {r["patient_id"]: (r["ptr"], r["n_evaluable"], r["n_low_cci"], r["ptr_onset_at"])
                for r in reg.rows("SELECT * FROM patient_ptr")}

    assert ptr() == {
        "ALT": (False, 3, 2, None),
        "RUN": (True, 3, 2, at(3)),
        "GAP": (True, 2, 2, at(3)),
        "NONE": (False, 0, 0, None),
    }
    reg.reinstall({"ptr": {"rule": "any_two"}})
    assert ptr()["ALT"] == (True, 3, 2, at(3))
    assert reg.one("patient_ptr", patient_id="ALT")["ptr_rule"] == "any_two"


def test_ptr_order_is_by_time_not_by_id(reg):
    reg.patient("P1")
    _low(reg, "P1", "T1", at(1))
    _ok(reg, "P1", "T2", at(5))
    _low(reg, "P1", "T3", at(2))  # inserted late, given second
    got = reg.one("patient_ptr", patient_id="P1")
    assert (got["ptr"], got["ptr_onset_at"], got["longest_low_run"]) == (True, at(2), 2)


# ---------------------------------------------------------------------------------------------
# CRS grading

FEVER = {"max_temp_c": 39.0}


@pytest.mark.parametrize(
    "signs, lee, astct",
    [
        ({"max_temp_c": 38.0}, 1, 1),
        ({"max_temp_c": 37.9}, 0, 0),
        ({**FEVER, "hypotension": True}, 2, 2),
        # Lee 2014 high dose: norepinephrine-equivalent >= 20 ug/min
        ({**FEVER, "hypotension": True, "vasopressors": 1, "ne_equiv_ug_min": 19.9}, 2, 3),
        ({**FEVER, "hypotension": True, "vasopressors": 1, "ne_equiv_ug_min": 20.0}, 3, 3),
        # vasopressin + NE-equivalent >= 10 ug/min is high dose; vasopressin is not "multiple"
        ({**FEVER, "vasopressors": 2, "vasopressin": True, "ne_equiv_ug_min": 9.9}, 2, 3),
        ({**FEVER, "vasopressors": 2, "vasopressin": True, "ne_equiv_ug_min": 10.0}, 3, 3),
        ({**FEVER, "vasopressors": 1, "vasopressin": True}, 2, 3),  # vasopressin alone
        # multiple vasopressors (excluding vasopressin)
        ({**FEVER, "vasopressors": 2, "vasopressin": False, "ne_equiv_ug_min": 8.0}, 3, 4),
        ({**FEVER, "vasopressors": 3, "vasopressin": True, "ne_equiv_ug_min": 12.0}, 3, 4),
        # oxygen: FiO2 39 / 40 under Lee; device and flow under ASTCT
        ({**FEVER, "fio2_pct": 39.0}, 2, 2),
        ({**FEVER, "fio2_pct": 40.0}, 3, 2),
        ({**FEVER, "fio2_pct": 21.0}, 1, 1),  # room air
        # no FiO2 recorded: Lee reads the O2 table (cannula 21 + 4 x L/min; high flow >= 45%)
        ({**FEVER, "o2_device": "low_flow", "o2_flow_l_min": 4.0}, 2, 2),
        ({**FEVER, "o2_device": "low_flow", "o2_flow_l_min": 6.0}, 3, 2),
        ({**FEVER, "o2_device": "low_flow", "o2_flow_l_min": 7.0}, 3, 3),
        ({**FEVER, "o2_device": "high_flow", "o2_flow_l_min": 4.0}, 2, 2),
        ({**FEVER, "o2_device": "high_flow"}, 3, 3),
        ({**FEVER, "o2_flow_l_min": 8.0}, 2, 3),  # cannula assumed when no device recorded
        ({**FEVER, "o2_device": "facemask", "fio2_pct": 35.0}, 2, 3),
        ({**FEVER, "o2_device": "nonrebreather", "fio2_pct": 60.0}, 3, 3),
        ({**FEVER, "o2_device": "bipap", "fio2_pct": 35.0}, 4, 4),  # non-invasive ventilation
        ({**FEVER, "o2_device": "cpap", "fio2_pct": 35.0}, 2, 4),
        ({**FEVER, "o2_device": "ventilator", "fio2_pct": 30.0}, 4, 4),
        ({**FEVER, "o2_device": "none"}, 1, 1),
        # organ toxicity (Lee only)
        ({**FEVER, "organ_toxicity_grade": 2}, 2, 1),
        ({**FEVER, "organ_toxicity_grade": 3}, 3, 1),
        ({**FEVER, "organ_toxicity_grade": 4}, 4, 1),
        ({**FEVER, "transaminitis_grade": 3}, 2, 1),
        ({**FEVER, "transaminitis_grade": 4}, 3, 1),
        # ASTCT needs fever; Lee does not
        ({"max_temp_c": 37.0, "hypotension": True, "vasopressors": 1}, 2, 0),
        ({"hypotension": True, "vasopressors": 1}, 2, 0),  # temperature not recorded: no fever
        ({"max_temp_c": 36.8, "hypotension": False}, 0, 0),
    ],
)
def test_crs_grades_from_signs(reg, signs, lee, astct):
    reg.patient("P1")
    reg.crs("P1", **signs)
    got = reg.one("crs_graded", patient_id="P1")
    assert got["signs_recorded"] is True
    assert (got["lee2014_grade"], got["astct2019_grade"]) == (lee, astct)


def test_crs_without_signs_has_no_grade(reg):
    reg.patient("P1")
    reg.crs("P1", reported_grade=3, reported_scale="lee2014")
    got = reg.one("crs_graded", patient_id="P1")
    assert (got["signs_recorded"], got["lee2014_grade"], got["astct2019_grade"]) == (False, None, None)


def test_astct_fever_masked_only_after_tocilizumab_or_steroids(reg):
    reg.patient("P1")
    reg.crs("P1", on=1, max_temp_c=39.5)
    reg.crs("P1", on=2, max_temp_c=36.9, hypotension=True, vasopressors=1)
    # no masking therapy: fever is required
    assert reg.one("crs_graded", patient_id="P1", assessed_on=day(2))["astct2019_grade"] == 0
    reg.add("medications", patient_id="P1", drug="tocilizumab", started_on=day(1), n_doses=1)
    got = reg.one("crs_graded", patient_id="P1", assessed_on=day(2))
    assert (got["astct2019_grade"], got["fever_masked"]) == (3, True)
    # the drug list comes from definitions
    reg.reinstall({"crs": {"astct2019": {"fever_masking_drugs": ["corticosteroid"]}}})
    assert reg.one("crs_graded", patient_id="P1", assessed_on=day(2))["astct2019_grade"] == 0
    with pytest.raises(derive.DefinitionError, match="fever_masking_drugs"):
        reg.reinstall({"crs": {"astct2019": {"fever_masking_drugs": ["aspirin"]}}})


def test_lee_thresholds_come_from_definitions(reg):
    reg.patient("P1")
    reg.crs("P1", **FEVER, fio2_pct=40.0)
    reg.reinstall({"crs": {"lee2014": {"fio2_grade3_min_pct": 50}}})
    assert reg.one("crs_graded", patient_id="P1")["lee2014_grade"] == 2


def test_patient_crs_max_and_reported_fallback(reg):
    reg.patient("MAX")
    reg.crs("MAX", on=1, max_temp_c=38.5, reported_grade=1, reported_scale="lee2014")
    reg.crs("MAX", on=2, **FEVER, fio2_pct=45.0, reported_grade=2, reported_scale="lee2014")
    reg.crs("MAX", on=3, max_temp_c=37.0)
    reg.patient("REP")  # no signs: the grade reported on lee2014 is used
    reg.crs("REP", on=1, reported_grade=3, reported_scale="lee2014")
    reg.patient("AST")  # no signs, reported on another scale: unknown
    reg.crs("AST", on=1, reported_grade=2, reported_scale="astct2019")
    reg.patient("NONE")  # no assessment: no CRS
    got = {r["patient_id"]: r for r in reg.rows("SELECT * FROM patient_crs")}
    assert (got["MAX"]["lee2014_grade"], got["MAX"]["crs_grade"], got["MAX"]["crs_grade_3plus"]) == (3, 3, True)
    assert (got["MAX"]["reported_grade"], got["MAX"]["reported_scale"]) == (2, "lee2014")
    assert (got["REP"]["lee2014_grade"], got["REP"]["crs_grade"], got["REP"]["crs_grade_3plus"]) == (None, 3, True)
    assert (got["AST"]["crs_grade"], got["AST"]["reported_scale"]) == (None, "astct2019")
    assert (got["NONE"]["crs_grade"], got["NONE"]["crs_grade_3plus"], got["NONE"]["n_assessments"]) == (0, False, 0)


def _submission_crs() -> pl.DataFrame:
    """crs_assessments as the validation engine holds a submission: CDM columns + _file/_row."""
    spec = CATALOG.tables["crs_assessments"]
    rows = [
        {"patient_id": "P1", "assessed_on": day(1), "max_temp_c": 39.0, "fio2_pct": 45.0,
         "reported_grade": 2, "reported_scale": "lee2014"},  # signs give Lee 3
        {"patient_id": "P1", "assessed_on": day(2), "max_temp_c": 38.2,
         "reported_grade": 1, "reported_scale": "astct2019"},  # consistent
        {"patient_id": "P2", "assessed_on": day(1), "reported_grade": 3,
         "reported_scale": "lee2014"},  # no signs: not checked
    ]
    data = {c.name: [r.get(c.name, CENTER if c.name == "center_id" else None) for r in rows]
            for c in spec.columns}
    schema = {c.name: c.polars_type for c in spec.columns}
    df = pl.DataFrame(data, schema=schema)
    return df.with_columns(pl.lit("crs.xlsx").alias("_file"),
                           pl.Series("_row", [2, 3, 4], dtype=pl.Int64))


def test_install_crs_graded_over_a_submission_relation_and_the_rule_reads_it():
    con = duckdb.connect()
    sub = _submission_crs()
    con.register("crs_assessments", sub)
    assert derive.install_crs_graded(con) is True
    graded = con.sql("SELECT * FROM crs_graded ORDER BY _row")
    assert graded.columns == sub.columns + [
        "signs_recorded", "fio2_for_grading", "fio2_source", "fever_masked",
        "lee2014_high_dose_undetermined", "lee2014_grade", "astct2019_grade",
        "reported_above_signs", "crs_grade"]
    assert [r[:3] for r in con.sql(
        "SELECT lee2014_grade, astct2019_grade, signs_recorded FROM crs_graded ORDER BY _row"
    ).fetchall()] == [(3, 2, True), (1, 1, True), (None, None, False)]
    rule = next(r for r in CATALOG.rules if r["id"] == "crs_assessments.reported_grade_consistent")
    flagged = con.sql(rule["sql"]).fetchall()
    assert flagged == [("crs.xlsx", 2, "reported 2 (lee2014), signs give 3")]
    assert con.execute(rule["denominator"]).fetchall()[0][0] == 2


def test_install_crs_graded_without_the_table():
    con = duckdb.connect()
    assert derive.install_crs_graded(con) is False
    with pytest.raises(derive.DefinitionError):
        derive.install_crs_graded(con, {"crs": {"lee2014": {"fio2_grade3_min_pct": "forty"}}})


def test_install_crs_graded_over_text_columns():
    con = duckdb.connect()
    sub = _submission_crs().with_columns(pl.col(["max_temp_c", "fio2_pct"]).cast(pl.Utf8))
    con.register("crs_assessments", sub)
    derive.install_crs_graded(con)
    assert con.execute("SELECT lee2014_grade FROM crs_graded WHERE _row = 2").fetchall()[0][0] == 3


# The WHO bleeding checks of the issue live in the rule catalog (run by the validation engine);
# here their expressions are evaluated over hand-made rows to show they say what the scale says.
def test_who_bleeding_rules_in_the_catalog(reg):
    rules = {r["id"]: r for r in CATALOG.rules}
    reg.patient("P1")
    reg.patient("P2")
    reg.add("outcomes", patient_id="P2", death_on=day(9))
    events = [
        ("P1", 3, True, None, None, "gi"),  # grade 3 with red cells: fine
        ("P1", 3, False, None, None, "gi"),  # grade 3 without red cells: warning
        ("P1", 4, None, True, None, "gi"),  # grade 4 with hemodynamic instability: fine
        ("P1", 4, None, None, None, "cns"),  # grade 4, CNS: fine
        ("P1", 4, None, None, None, "skin"),  # grade 4 without a defining fact: warning
        ("P1", 4, None, None, True, "pulmonary"),  # fatal without a death date: error
        ("P2", 4, None, None, True, "gi"),  # fatal with a death date: fine
    ]
    for pid, grade, rbc, unstable, fatal, site in events:
        reg.add("bleeding_events", patient_id=pid, onset_on=day(8), who_grade=grade,
                rbc_transfusion_24h=rbc, hemodynamic_instability=unstable, fatal=fatal, site=site)

    def failing(rule_id):
        return reg.con.execute(
            f"SELECT count(*) FROM bleeding_events WHERE {rules[rule_id]['fails']}"
        ).fetchall()[0][0]

    assert failing("bleeding_events.grade3_needs_rbc") == 1
    assert failing("bleeding_events.grade4_defining_fact") == 1
    assert failing("bleeding_events.fatal_is_grade4") == 0
    fatal_sql = rules["bleeding_events.fatal_needs_death"]["sql"].replace("b._file, b._row", "b.source_row")
    assert len(reg.con.execute(fatal_sql).fetchall()) == 1


# ---------------------------------------------------------------------------------------------
# Lab series: improvement, recovery, platelet dose


def _plt(reg, pid, spec: dict[range | int, float]):
    for days, v in spec.items():
        for d in ([days] if isinstance(days, int) else days):
            reg.lab(pid, "PLT", at(d, 6), v)


def _followed(reg, *pids: str, to_day: int = 100) -> None:
    """Followed (alive) to `to_day`: a windowed "no" is known only then (issue 16)."""
    for pid in pids:
        reg.add("outcomes", patient_id=pid, last_followup_on=day(to_day))


def test_platelet_improvement_needs_seven_days_above_20(reg):
    reg.patient("SEVEN")
    _plt(reg, "SEVEN", {range(0, 3): 10.0, range(3, 10): 25.0})
    reg.patient("SIX")
    _plt(reg, "SIX", {range(0, 3): 10.0, range(3, 9): 25.0, 9: 15.0})
    reg.patient("AT20")  # exactly 20 is not above 20
    _plt(reg, "AT20", {range(0, 3): 10.0, range(3, 10): 25.0, 6: 20.0})
    reg.patient("HIGH")  # never below 20: nothing to improve from
    _plt(reg, "HIGH", {range(0, 10): 50.0})
    reg.patient("NODATA")
    _followed(reg, "SEVEN", "SIX", "AT20", "HIGH", "NODATA")
    got = {r["patient_id"]: (r["platelet_improvement_30d"], r["platelet_improvement_day"],
                             r["plt_below_trigger_30d"])
           for r in reg.rows("SELECT * FROM patient_recovery")}
    assert got == {
        "SEVEN": (True, 3, True),
        "SIX": (False, None, True),
        "AT20": (False, None, True),
        "HIGH": (False, None, False),
        "NODATA": (None, None, None),
    }


def test_a_day_without_a_count_breaks_the_run(reg):
    reg.patient("P1")
    _plt(reg, "P1", {0: 10.0, range(1, 4): 25.0, range(5, 9): 25.0})  # day 4 not measured
    _followed(reg, "P1")
    assert reg.one("patient_recovery", patient_id="P1")["platelet_improvement_30d"] is False
    reg.reinstall({"recovery": {"max_gap_days": 2}})  # a one-day gap allowed: days 1..8 = 8 days
    got = reg.one("patient_recovery", patient_id="P1")
    assert (got["platelet_improvement_30d"], got["platelet_improvement_day"]) == (True, 1)


def test_a_platelet_transfusion_breaks_the_improvement_run(reg):
    reg.patient("P1")
    _plt(reg, "P1", {0: 10.0, range(1, 8): 25.0})
    reg.tx("P1", "T1", at(4, 14))
    _followed(reg, "P1")
    assert reg.one("patient_recovery", patient_id="P1")["platelet_improvement_30d"] is False
    reg.patient("P2")  # a transfusion on a day without a count breaks it too
    _plt(reg, "P2", {0: 10.0, range(1, 4): 25.0, range(5, 9): 25.0})
    reg.tx("P2", "T2", at(4, 14))
    _followed(reg, "P2")
    reg.reinstall({"recovery": {"max_gap_days": 2}})
    assert reg.one("patient_recovery", patient_id="P2")["platelet_improvement_30d"] is False


def test_improvement_must_be_complete_within_30_days(reg):
    reg.patient("LATE")
    _plt(reg, "LATE", {20: 10.0, range(25, 32): 30.0})  # 7th day is day 31
    reg.patient("INTIME")
    _plt(reg, "INTIME", {20: 10.0, range(24, 31): 30.0})  # 7th day is day 30
    got = {r["patient_id"]: r["platelet_improvement_30d"] for r in reg.rows("SELECT * FROM patient_recovery")}
    assert got == {"LATE": False, "INTIME": True}


def test_neutrophil_improvement_needs_more_than_three_days(reg):
    reg.patient("THREE")
    reg.daily("THREE", "ANC", {0: 0.1, 1: 0.2, 2: 0.6, 3: 0.7, 4: 0.8, 5: 0.4})
    reg.patient("FOUR")
    reg.daily("FOUR", "ANC", {0: 0.1, 1: 0.2, 2: 0.6, 3: 0.7, 4: 0.8, 5: 0.9})
    reg.patient("AT05")  # 0.5 is not above 0.5
    reg.daily("AT05", "ANC", {0: 0.1, 1: 0.6, 2: 0.5, 3: 0.7, 4: 0.8, 5: 0.9})
    reg.patient("NEVER")  # never agranulocytic
    reg.daily("NEVER", "ANC", {d: 1.5 for d in range(10)})
    _followed(reg, "THREE", "FOUR", "AT05", "NEVER")
    got = {r["patient_id"]: (r["neutrophil_improvement_30d"], r["neutrophil_improvement_day"],
                             r["anc_agranulocytosis_30d"])
           for r in reg.rows("SELECT * FROM patient_recovery")}
    assert got == {"THREE": (False, None, True), "FOUR": (True, 2, True),
                   "AT05": (False, None, True), "NEVER": (False, None, False)}


def test_recovery_within_90_days(reg):
    reg.patient("D60")
    _plt(reg, "D60", {0: 30.0, 10: 5.0, 60: 100.0})
    reg.patient("D91")
    _plt(reg, "D91", {0: 30.0, 10: 5.0, 89: 99.0, 91: 150.0})
    reg.patient("NORMAL")  # never below normal in the window
    _plt(reg, "NORMAL", {0: 150.0, 30: 180.0})
    reg.daily("D60", "ANC", {0: 0.1, 20: 2.0})  # exactly the lower limit of normal
    reg.daily("D91", "ANC", {0: 0.1, 20: 1.99})
    got = {r["patient_id"]: (r["platelet_recovery_90d"], r["platelet_recovery_day"],
                             r["neutrophil_recovery_90d"])
           for r in reg.rows("SELECT * FROM patient_recovery")}
    assert got == {"D60": (True, 60, True), "D91": (False, None, False), "NORMAL": (True, 0, None)}


def test_platelet_dose_until_count_stays_at_20(reg):
    reg.patient("P1")
    _plt(reg, "P1", {range(0, 5): 10.0, range(5, 12): 25.0})
    reg.tx("P1", "T1", at(1), units=2.0, dose=2.5)
    reg.tx("P1", "T2", at(3), units=1.0, dose=3.0)
    reg.tx("P1", "T3", at(7), units=1.0, dose=3.0)  # inside the run: not counted
    got = reg.one("patient_platelet_dose", patient_id="P1")
    assert (got["plt_stays_reached"], got["plt_stays_from_day"]) == (True, 5)
    assert (got["plt_units_until_recovery"], got["plt_dose_e11_until_recovery"]) == (3.0, 5.5)
    assert got["plt_transfusions_until_recovery"] == 2


def test_platelet_dose_run_of_exactly_20_and_transfusion_free_option(reg):
    reg.patient("P1")
    _plt(reg, "P1", {range(0, 5): 10.0, range(5, 12): 20.0, range(12, 20): 30.0})
    for i, d in enumerate((1, 3, 7)):
        reg.tx("P1", f"T{i}", at(d), units=1.0, dose=3.0)
    got = reg.one("patient_platelet_dose", patient_id="P1")
    assert (got["plt_stays_from_day"], got["plt_units_until_recovery"]) == (5, 2.0)  # >= 20 counts
    reg.reinstall({"recovery": {"plt_stays_without_transfusion": True}})
    got = reg.one("patient_platelet_dose", patient_id="P1")
    assert (got["plt_stays_from_day"], got["plt_units_until_recovery"]) == (8, 3.0)


def test_platelet_dose_counts_after_the_fall_and_all_when_never(reg):
    reg.patient("FALL")  # above 20 at first, falls on day 8, back from day 20
    _plt(reg, "FALL", {range(0, 8): 60.0, range(8, 20): 8.0, range(20, 27): 40.0})
    reg.tx("FALL", "F1", at(10), units=2.0)
    reg.tx("FALL", "F2", at(15), units=2.0)
    reg.patient("NEVER")  # never stays >= 20: all transfusions of days 0..90
    _plt(reg, "NEVER", {range(0, 40, 2): 10.0})
    reg.tx("NEVER", "N0", at(-1), units=5.0)  # before the index date
    reg.tx("NEVER", "N1", at(0), units=1.0)
    reg.tx("NEVER", "N2", at(90), units=1.0)
    reg.tx("NEVER", "N3", at(91), units=5.0)  # after the window
    reg.patient("NOTX")
    _followed(reg, "NOTX")  # followed to day 100 without a transfusion: 0 units
    reg.patient("LOST")  # never stays >= 20, last seen alive on day 40 (issue 16): unknown total
    _plt(reg, "LOST", {range(0, 40, 2): 10.0})
    reg.tx("LOST", "L1", at(5), units=1.0)
    got = {r["patient_id"]: (r["plt_stays_reached"], r["plt_stays_from_day"], r["plt_units_until_recovery"])
           for r in reg.rows("SELECT * FROM patient_platelet_dose")}
    assert got == {"FALL": (True, 20, 4.0), "NEVER": (False, None, 2.0), "NOTX": (None, None, 0.0),
                   "LOST": (None, None, None)}
    assert reg.one("patient_platelet_dose", patient_id="LOST")["plt_followup_ended"] is True
    reasons = {r["variable"]: r["reason"] for r in reg.rows(
        "SELECT * FROM patient_missing WHERE patient_id = 'LOST'")}
    assert reasons["plt_units_until_recovery"] == "followup_ended_in_window"


# ---------------------------------------------------------------------------------------------
# Bleeding and competing events


def test_bleeding_competing_events(reg):
    reg.patient("BLEED")  # grade 3 on day 10, death on day 12: the bleeding comes first
    reg.add("bleeding_events", patient_id="BLEED", onset_on=day(3), who_grade=1)
    reg.add("bleeding_events", patient_id="BLEED", onset_on=day(10), who_grade=3, rbc_transfusion_24h=True)
    reg.add("outcomes", patient_id="BLEED", death_on=day(12))
    reg.patient("DEATH")  # grade 2 only, death on day 20
    reg.add("bleeding_events", patient_id="DEATH", onset_on=day(5), who_grade=2)
    reg.add("outcomes", patient_id="DEATH", death_on=day(20))
    reg.patient("FATAL")  # fatal grade 4 bleed on the day of death: the bleeding
    reg.add("bleeding_events", patient_id="FATAL", onset_on=day(7), who_grade=4, fatal=True, site="cns")
    reg.add("outcomes", patient_id="FATAL", death_on=day(7))
    reg.patient("LATE")  # grade 3 on day 31: outside the window
    reg.add("bleeding_events", patient_id="LATE", onset_on=day(31), who_grade=3)
    reg.add("outcomes", patient_id="LATE", last_followup_on=day(100))
    reg.patient("FU20")  # nothing; followed 20 days
    reg.add("outcomes", patient_id="FU20", last_followup_on=day(20))
    reg.patient("LABS")  # no follow-up date; a lab on day 12 is the last contact
    reg.lab("LABS", "PLT", at(12), 50.0)
    reg.patient("DIED40")  # death after the window: censored at 30
    reg.add("outcomes", patient_id="DIED40", death_on=day(40))
    reg.patient("UNDATED")
    reg.add("bleeding_events", patient_id="UNDATED", who_grade=3)
    got = {r["patient_id"]: (r["worst_bleeding_grade_30d"], r["bleeding_grade_3plus_30d"],
                             r["event_type"], r["event_time_days"])
           for r in reg.rows("SELECT * FROM patient_bleeding")}
    assert got == {
        "BLEED": (3, True, "bleeding", 10.0),
        "DEATH": (2, False, "death", 20.0),
        "FATAL": (4, True, "bleeding", 7.0),
        "LATE": (0, False, "censored", 30.0),
        # Last seen alive on day 20 / day 12, before day 30: "no grade >= 3 bleed by day 30"
        # and the worst grade are unknown (issue 16: "a patient last seen alive on day 40
        # cannot be 'not recovered by day 90'"); the competing-risk time censors them instead.
        "FU20": (None, None, "censored", 20.0),
        "LABS": (None, None, "censored", 12.0),
        "DIED40": (0, False, "censored", 30.0),
        # An undated grade-3 bleed may lie in the window: unknown, never "no bleeding"
        # (issue 16: "an unknown is never a no").
        "UNDATED": (None, None, None, None),
    }
    assert reg.one("patient_bleeding", patient_id="UNDATED")["n_bleeding_undated"] == 1


# ---------------------------------------------------------------------------------------------
# patient_summary and the contract


CONTRACT = {
    "patient_bsa": "center_id, patient_id, height_cm, weight_kg, bsa_m2",
    "transfusion_cci": "center_id, patient_id, transfusion_id, transfused_at, bsa_m2, dose_e11, "
    "units_reported, pre_count_e9l, pre_count_at, post_count_e9l, post_count_at, hours_to_post, "
    "cci, evaluable, not_evaluable_reason",
    "patient_ptr": "center_id, patient_id, ptr, n_evaluable, n_low_cci, ptr_onset_at",
    "patient_crs": "center_id, patient_id, lee2014_grade, astct2019_grade, reported_grade, reported_scale",
    "transfusion_il6": "center_id, patient_id, transfusion_id, cci, il6_same_day",
    "patient_summary": "center_id, patient_id, treatment_type, index_date, age_years, sex, height_cm, "
    "weight_kg, bsa_m2, diagnosis, disease_status, n_relapses, prior_allo_hsct, extramedullary, "
    "bm_blast_pct, ptr, n_evaluable, n_low_cci, crs_grade, crs_grade_3plus, peak_il6, peak_il10, "
    "peak_ifng, has_cytokines, peak_temp_c, infection, tocilizumab, tocilizumab_doses, corticosteroid, "
    "response, cr, neutrophil_improvement_30d, neutrophil_recovery_90d, platelet_improvement_30d, "
    "platelet_recovery_90d, plt_units_until_recovery, plt_dose_e11_until_recovery, "
    "worst_bleeding_grade_30d, bleeding_grade_3plus_30d, event_time_days, event_type, death_on, "
    "last_followup_on",
}


@pytest.mark.parametrize("view", sorted(CONTRACT))
def test_views_have_the_contract_columns(reg, view):
    columns = reg.con.sql(f"SELECT * FROM {view}").columns
    missing = [c for c in CONTRACT[view].split(", ") if c not in columns]
    assert not missing


def test_summary_contract_types(reg):
    reg.patient("P1")
    types = dict(reg.con.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'patient_summary'"
    ).fetchall())
    for col in ("ptr", "crs_grade_3plus", "has_cytokines", "infection", "tocilizumab", "corticosteroid",
                "cr", "neutrophil_improvement_30d", "platelet_recovery_90d", "bleeding_grade_3plus_30d"):
        assert types[col] == "BOOLEAN", col
    for col in ("crs_grade", "tocilizumab_doses", "worst_bleeding_grade_30d"):
        assert types[col] == "BIGINT", col
    assert types["event_time_days"] == "DOUBLE"


def test_patient_summary_one_row_per_patient(reg):
    reg.patient("P1", age_years=30, sex="M")
    reg.patient("P2", treatment="chemotherapy")
    # peaks: day -1 and day 31 are outside [index, index + 30 days]
    reg.lab("P1", "IL6", at(-1), 90000.0)
    reg.lab("P1", "IL6", at(0, 0), 50.0)
    reg.lab("P1", "IL6", at(30, 23, 59), 300.0)
    reg.lab("P1", "IL6", at(31, 0), 99999.0)
    reg.lab("P1", "IFNG", at(5), 12.5)
    reg.crs("P1", on=2, max_temp_c=40.1, hypotension=True, vasopressors=1, ne_equiv_ug_min=25.0)
    reg.crs("P1", on=35, max_temp_c=41.0)
    reg.add("medications", patient_id="P1", drug="tocilizumab", started_on=day(2), n_doses=1)
    reg.add("medications", patient_id="P1", drug="tocilizumab", started_on=day(3))
    reg.add("medications", patient_id="P1", drug="corticosteroid", started_on=day(3), n_doses=3)
    reg.add("infections", patient_id="P1", onset_on=day(4), kind="bacterial")
    reg.add("infections", patient_id="P2", onset_on=day(40), kind="viral")  # after 30 days
    reg.add("outcomes", patient_id="P1", response="CRi", last_followup_on=day(60))
    reg.add("outcomes", patient_id="P2", response="PR", last_followup_on=day(60))
    rows = {r["patient_id"]: r for r in reg.rows("SELECT * FROM patient_summary")}
    assert set(rows) == {"P1", "P2"}
    p1, p2 = rows["P1"], rows["P2"]
    assert (p1["treatment_type"], p1["age_years"], p1["sex"]) == ("car_t", 30, "M")
    assert (p1["peak_il6"], p1["peak_ifng"], p1["peak_il10"], p1["has_cytokines"]) == (300.0, 12.5, None, True)
    assert p1["peak_temp_c"] == 40.1
    assert (p1["crs_grade"], p1["crs_grade_3plus"]) == (3, True)
    assert (p1["tocilizumab"], p1["tocilizumab_doses"], p1["corticosteroid"], p1["infection"]) == (True, 2, True, True)
    assert (p1["response"], p1["cr"]) == ("CRi", True)
    assert (p1["event_type"], p1["event_time_days"], p1["worst_bleeding_grade_30d"]) == ("censored", 30.0, 0)
    assert (p2["treatment_type"], p2["has_cytokines"], p2["crs_grade"], p2["ptr"]) == ("chemotherapy", False, 0, False)
    assert (p2["infection"], p2["tocilizumab"], p2["tocilizumab_doses"], p2["cr"]) == (False, False, 0, False)


def test_transfusion_il6_same_calendar_day(reg):
    reg.patient("P1")
    reg.tx("P1", "T1", at(3, 10))
    reg.tx("P1", "T2", at(4, 10))
    reg.tx("P1", "T3", at(5, 10), storage=80.0)  # not evaluable: left out
    reg.lab("P1", "IL6", at(3, 0, 30), 120.0)
    reg.lab("P1", "IL6", at(3, 23, 30), 450.0)
    reg.lab("P1", "IL6", at(4, 0, 0) - dt.timedelta(minutes=1), 999.0)  # still day 3
    reg.lab("P1", "IL6", at(5, 9), 50.0)
    got = {r["transfusion_id"]: (r["il6_same_day"], r["n_il6_same_day"])
           for r in reg.rows("SELECT * FROM transfusion_il6")}
    assert got == {"T1": (999.0, 3), "T2": (None, 0)}


# ---------------------------------------------------------------------------------------------
# Definitions are validated before they reach SQL


@pytest.mark.parametrize(
    "override",
    [
        {"cci": {"refractory_below": "5000); DROP TABLE patients; --"}},
        {"cci": {"refractory_below": True}},
        {"cci": {"refractory_below": float("nan")}},
        {"cci": {"max_storage_h": -1}},
        {"ptr": {"rule": "sometimes"}},
        {"ptr": {"min_failed": 1.5}},
        {"bsa": {"formula": "dubois'; DROP TABLE patients; --"}},
        {"bsa": {"formula": "boyd"}},
        {"crs": {"astct2019": {"grade4_o2_devices": ["cpap", "helmet"]}}},
        {"crs": {"lee2014": {"ventilation_devices": "ventilator"}}},
        {"cci": {"require_abo_compatible": "yes"}},
    ],
)
def test_bad_definitions_are_refused(override):
    con = duckdb.connect()
    store.create_schema(con)
    with pytest.raises(derive.DefinitionError):
        derive.install_views(con, override)
    assert con.execute("SELECT count(*) FROM patients").fetchall() == [(0,)]


def test_missing_definition_key_is_named(monkeypatch):
    import ptrharmonize.definition_sql as d

    monkeypatch.setattr(d, "load_definitions", lambda: {"bsa": {"formula": "dubois"}})
    with pytest.raises(derive.DefinitionError, match="bsa.formulas"):
        d.definition_macros()


def test_a_registry_can_add_a_bsa_formula(reg):
    reg.reinstall({"bsa": {"formula": "unit", "formulas": {"unit": {
        "coefficient": 1.0, "height_exponent": 0.0, "weight_exponent": 0.0, "source": "test"}}}})
    reg.patient("P1")
    assert reg.one("patient_bsa", patient_id="P1")["bsa_m2"] == 1.0


def test_installed_definitions_are_listed(reg):
    values = dict(reg.con.execute("SELECT key, value FROM derivation_definitions").fetchall())
    assert values["cci.refractory_below"] == "5000.0"
    assert values["ptr.rule"] == "consecutive"
    assert values["crs.astct2019.grade4_o2_devices"] == "[cpap, bipap, ventilator]"


def test_temporary_install_on_a_read_only_store(tmp_path: Path):
    path = tmp_path / "registry.duckdb"
    con = store.connect(path)
    store.create_schema(con)
    con.close()
    ro = store.connect(path, read_only=True)
    derive.install_views(ro, {"ptr": {"rule": "any_two"}}, temporary=True)
    assert ro.execute("SELECT count(*) FROM patient_summary").fetchall() == [(0,)]
    assert ro.sql("SELECT ptr_rule FROM patient_ptr").fetchall() == []
    assert ro.execute("SELECT def_ptr_rule()").fetchall() == [("any_two",)]
    ro.close()


# ---------------------------------------------------------------------------------------------
# The SQL files themselves


def _sql_without_comments(text: str) -> str:
    return re.sub(r"--[^\n]*", "", text)


def test_view_files_create_exactly_the_listed_views():
    created = []
    for name in derive.VIEW_FILES:
        for stmt in derive.view_statements(name):
            m = re.search(r"CREATE OR REPLACE VIEW (\w+)", stmt)
            created.append(m.group(1))
    assert tuple(created) == derive.VIEW_NAMES
    assert sorted(p.name for p in derive.VIEWS_DIR.glob("*.sql")) == sorted(derive.VIEW_FILES)


# Numbers that are not thresholds: 0 and 1 (counting, day 0), 1000 (x10^9/L -> /uL) and
# 3600000000.0 (microseconds per hour); a small whole number after THEN is a result (a CRS
# grade, a zero sum), not a threshold. Every threshold is a def_*() macro.
ALLOWED_NUMBERS = {"0", "1", "1000", "3600000000.0"}


@pytest.mark.parametrize("name", derive.VIEW_FILES)
def test_no_threshold_literals_in_views(name):
    code = _sql_without_comments((derive.VIEWS_DIR / name).read_text())
    code = re.sub(r"'[^']*'", "''", code)  # string literals (codes) are not numbers
    code = re.sub(r"\bTHEN\s+\d(?:\.0)?\b", "THEN result", code)
    numbers = set(re.findall(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])", code))
    assert numbers <= ALLOWED_NUMBERS, numbers - ALLOWED_NUMBERS


# ---------------------------------------------------------------------------------------------
# Issue 17: the choices made explicit in definitions.yaml reach the views, and bad ones are refused


def test_lee_high_dose_table_bounds_come_from_the_table(reg):
    """With dopamine's threshold at 40 ug/kg/min (NE-equivalent 20) the lowest monotherapy
    NE-equivalent is epinephrine's 10: 5 ug/min is then low dose for every agent."""
    reg.patient("P1")
    reg.crs("P1", **FEVER, hypotension=True, vasopressors=1, ne_equiv_ug_min=5.0)
    got = reg.one("crs_graded", patient_id="P1")
    assert (got["lee2014_grade"], got["lee2014_high_dose_undetermined"]) == (2, True)
    reg.reinstall({"crs": {"lee2014": {"high_dose_monotherapy": {"dopamine": {"threshold": 40}}}}})
    got = reg.one("crs_graded", patient_id="P1")
    assert (got["lee2014_grade"], got["lee2014_high_dose_undetermined"]) == (2, False)


def test_vasopressin_counted_as_multiple_when_configured(reg):
    reg.patient("P1")
    reg.crs("P1", **FEVER, hypotension=True, vasopressors=2, vasopressin=True, ne_equiv_ug_min=4.0)
    assert reg.one("crs_graded", patient_id="P1")["lee2014_grade"] == 2
    reg.reinstall({"crs": {"lee2014": {"multiple_excludes_vasopressin": False}}})
    assert reg.one("crs_graded", patient_id="P1")["lee2014_grade"] == 3


def test_o2_table_and_event_gap_come_from_definitions(reg):
    reg.patient("P1")
    reg.crs("P1", **FEVER, o2_device="facemask")
    assert reg.one("crs_graded", patient_id="P1")["lee2014_grade"] == 3
    reg.reinstall({"crs": {"o2_fio2_equivalence": {"facemask_pct": 35}}})
    got = reg.one("crs_graded", patient_id="P1")
    assert (got["lee2014_grade"], got["fio2_for_grading"], got["fio2_source"]) == (2, 35.0, "o2_device_table")
    reg.tx("P1", "T1", at(1, 10), post_after_h=5)
    reg.tx("P1", "T2", at(1, 11), post_after_h=4)  # same pre count value, taken 1 h later
    events = reg.rows("SELECT event_id FROM transfusion_events")
    assert len(events) == 2  # the pre counts differ in time: two events
    reg.reinstall({"cci": {"event_same_pre_count": False}})
    assert [r["event_id"] for r in reg.rows("SELECT event_id FROM transfusion_events")] == ["T1"]
    reg.reinstall({"cci": {"event_same_pre_count": False, "event_gap_h": 0.5}})
    assert len(reg.rows("SELECT event_id FROM transfusion_events")) == 2


@pytest.mark.parametrize("override, key", [
    ({"cci": {"post_window": "two_hours"}}, "cci.post_window"),
    ({"cci": {"post_windows": {"study_12h": {"after_end_min_minutes": 720, "after_end_max_hours": 12}}}},
     "cci.post_windows.study_12h"),
    ({"crs": {"lee2014": {"high_dose_monotherapy": {"milrinone": {"threshold": 1}}}}},
     "milrinone.ne_equivalent_factor"),
    ({"ptr": {"window_days": "thirty"}}, "ptr.window_days"),
    ({"recovery": {"plt_transfusion_effect_days": -1}}, "recovery.plt_transfusion_effect_days"),
])
def test_bad_issue17_definitions_are_refused(override, key):
    with pytest.raises(derive.DefinitionError, match=re.escape(key)):
        derive.definition_macros(override)


# ---------------------------------------------------------------------------------------------
# Follow-up ending inside a window (issue 16)


def test_windowed_outcomes_are_unknown_when_followup_ends_inside_the_window(reg):
    """Issue 16 (brief of session 4): "a patient last seen alive on day 40 cannot be 'not
    recovered by day 90'"; definitions.yaml recovery.missing_data: "A death inside the window
    settles the 'no'". Each patient falls below normal on day 10 (PLT 5) and never recovers
    unless said; the expected values follow from those two sentences, not from the SQL."""
    for pid in ("LOST40", "DIED40", "SEEN95", "REC30", "NOFU", "LOST20"):
        reg.patient(pid)
    for pid in ("LOST40", "DIED40", "SEEN95", "NOFU"):
        _plt(reg, pid, {0: 30.0, 10: 5.0, 15: 8.0})
    _plt(reg, "REC30", {0: 30.0, 10: 5.0, 30: 150.0})  # back to normal on day 30
    reg.add("outcomes", patient_id="LOST40", last_followup_on=day(40))  # alive, last seen day 40
    reg.add("outcomes", patient_id="DIED40", death_on=day(40))  # died day 40 without recovery
    reg.add("outcomes", patient_id="SEEN95", last_followup_on=day(95))  # followed past day 90
    reg.add("outcomes", patient_id="REC30", last_followup_on=day(40))  # recovered, then lost
    # NOFU: no outcomes row; the last contact is the day-15 count
    # LOST20: below 20 on day 0..5, no improvement yet, never agranulocytic so far, last seen day 20
    _plt(reg, "LOST20", {range(0, 6): 10.0})
    reg.daily("LOST20", "ANC", {d: 1.5 for d in range(6)})
    reg.add("outcomes", patient_id="LOST20", last_followup_on=day(20))
    got = {r["patient_id"]: (r["platelet_recovery_90d"], r["followup_ends_before_90d"])
           for r in reg.rows("SELECT * FROM patient_recovery")}
    assert got == {
        "LOST40": (None, True),  # unknown, never "not recovered"
        "DIED40": (False, False),  # a death before day 90 settles it
        "SEEN95": (False, False),  # followed to day 90: a known "no"
        "REC30": (True, True),  # a recovery seen is known, however short the follow-up
        "NOFU": (None, True),  # last contact = last record (day 15)
        "LOST20": (None, True),
    }
    lost20 = reg.one("patient_recovery", patient_id="LOST20")
    # "Improvement ... within 30 days": seen on day 20 only; the fall below 20 is known (true),
    # whether it improves by day 30 and whether ANC falls below 0.5 by day 30 are unknown.
    assert (lost20["plt_below_trigger_30d"], lost20["platelet_improvement_30d"],
            lost20["anc_agranulocytosis_30d"], lost20["neutrophil_improvement_30d"]) == (True, None, None, None)
    # the reason an analysis reports for the patient it leaves out
    reasons = {(r["patient_id"], r["variable"]): r["reason"] for r in reg.rows(
        "SELECT * FROM patient_missing WHERE variable IN ('platelet_recovery_90d', 'platelet_improvement_30d')")}
    assert reasons[("LOST40", "platelet_recovery_90d")] == "followup_ended_in_window"
    assert reasons[("LOST20", "platelet_improvement_30d")] == "followup_ended_in_window"
    assert ("SEEN95", "platelet_recovery_90d") not in reasons and ("DIED40", "platelet_recovery_90d") not in reasons


def test_followup_window_follows_the_definitions(reg):
    """definitions.yaml recovery.window_recovery_days: the horizon the follow-up must reach is
    the configured window, not a constant (a 30-day recovery window makes day-40 follow-up enough)."""
    reg.patient("LOST40")
    _plt(reg, "LOST40", {0: 30.0, 10: 5.0})
    reg.add("outcomes", patient_id="LOST40", last_followup_on=day(40))
    assert reg.one("patient_recovery", patient_id="LOST40")["platelet_recovery_90d"] is None
    reg.reinstall({"recovery": {"window_recovery_days": 30}})
    assert reg.one("patient_recovery", patient_id="LOST40")["platelet_recovery_90d"] is False


def test_settled_through_day_is_the_followup_rule_of_issue_16(reg):
    """definitions.yaml followup: a windowed "no" by day W "needs follow-up to the window's end
    or a death inside it". patient_followup.settled_through_day states it once: a "no" by day W
    stands exactly when settled_through_day >= W. A known death settles every window (infinity),
    a patient last seen alive on day 40 is settled through day 40, one without any date through
    no day (NULL); followup.windowed_no_needs_followup false (the study's handling) settles
    every patient."""
    reg.patient("LOST40")
    reg.add("outcomes", patient_id="LOST40", last_followup_on=day(40))  # alive, last seen day 40
    reg.patient("DIED40")
    reg.add("outcomes", patient_id="DIED40", death_on=day(40))
    reg.patient("DIED100")  # died after every window, last follow-up day 20 recorded before it
    reg.add("outcomes", patient_id="DIED100", death_on=day(100), last_followup_on=day(20))
    reg.patient("NODATE")  # no outcomes row, no record: follow-up unknown
    reg.patient("NOINDEX", index=None)  # a death but no index date: no study day is known
    reg.add("outcomes", patient_id="NOINDEX", death_on=day(5))
    inf = float("inf")
    got = {r["patient_id"]: r["settled_through_day"]
           for r in reg.rows("SELECT patient_id, settled_through_day FROM patient_followup")}
    assert got == {"LOST40": 40.0, "DIED40": inf, "DIED100": inf, "NODATE": None, "NOINDEX": None}
    # the sentence itself, for every window W: followed to day W, or dead by day W
    for row in reg.rows("SELECT * FROM patient_followup"):
        for w in (0, 30, 40, 41, 90, 120):
            rule = ((row["death_day"] is not None and row["death_day"] <= w)
                    or (row["last_contact_day"] is not None and row["last_contact_day"] >= w))
            settled = row["settled_through_day"] is not None and row["settled_through_day"] >= w
            assert settled == rule, (row["patient_id"], w)
    reg.reinstall({"followup": {"windowed_no_needs_followup": False}})
    got = {r["patient_id"]: r["settled_through_day"]
           for r in reg.rows("SELECT patient_id, settled_through_day FROM patient_followup")}
    assert set(got.values()) == {inf}
