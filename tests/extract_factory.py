"""A tiny, clean canonical extract built by hand, and planted defects, one per rule.

Every rule of the catalog that can fail on a canonical extract has a defect here, with the
file, spreadsheet row and column where the engine must report it.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import polars as pl

from ptrharmonize.synth.defects import plant_cells

HEADERS = {
    "patients": ["center_id", "patient_id", "sex", "age_years", "height_cm", "weight_kg", "diagnosis",
                 "disease_status", "n_relapses", "prior_allo_hsct", "extramedullary", "bm_blast_pct"],
    "treatments": ["center_id", "patient_id", "treatment_type", "regimen", "car_target", "index_date"],
    "transfusions": ["center_id", "patient_id", "transfusion_id", "transfused_at", "product", "units_reported",
                     "dose_e11", "storage_h", "abo_compatible", "crossmatched", "pre_count_e9l", "pre_count_at",
                     "post_count_e9l", "post_count_at"],
    "labs": ["center_id", "patient_id", "measured_at", "analyte", "value", "unit", "below_lod"],
    "crs_assessments": ["center_id", "patient_id", "assessed_on", "max_temp_c", "hypotension", "vasopressors",
                        "ne_equiv_ug_min", "vasopressin", "fio2_pct", "o2_device", "o2_flow_l_min",
                        "organ_toxicity_grade", "transaminitis_grade", "reported_grade", "reported_scale"],
    "bleeding_events": ["center_id", "patient_id", "onset_on", "site", "who_grade", "rbc_transfusion_24h",
                        "hemodynamic_instability", "fatal"],
    "medications": ["center_id", "patient_id", "drug", "started_on", "n_doses"],
    "infections": ["center_id", "patient_id", "onset_on", "kind"],
    "outcomes": ["center_id", "patient_id", "response", "death_on", "death_cause", "last_followup_on"],
}


def clean_rows(center: str = "T01") -> dict[str, list[dict[str, str]]]:
    """Six patients (P001-P004 CAR-T, P005-P006 chemotherapy) of `center` that pass validation."""
    c = center
    rows: dict[str, list[dict[str, str]]] = {t: [] for t in HEADERS}
    for i in range(1, 7):
        pid = f"P{i:03d}"
        cart = i <= 4
        rows["patients"].append(dict(center_id=c, patient_id=pid, sex="M" if i % 2 else "F", age_years=str(20 + i),
                                     height_cm="170.5", weight_kg="65", diagnosis="B-ALL", disease_status="relapsed",
                                     n_relapses="1", prior_allo_hsct="false", extramedullary="false", bm_blast_pct="45.5"))
        rows["treatments"].append(dict(center_id=c, patient_id=pid, treatment_type="car_t" if cart else "chemotherapy",
                                       regimen="CD19 CAR-T" if cart else "FLAG", car_target="CD19" if cart else "",
                                       index_date="2019-03-01"))
        for k in range(2):
            day = 5 + 2 * k
            rows["transfusions"].append(dict(
                center_id=c, patient_id=pid, transfusion_id=f"{pid}-T{k + 1}", transfused_at=f"2019-03-{day:02d}T10:00:00",
                product="apheresis", units_reported="1", dose_e11="2.5", storage_h="24", abo_compatible="true",
                crossmatched="false", pre_count_e9l="8", pre_count_at=f"2019-03-{day:02d}T07:00:00",
                post_count_e9l="30", post_count_at=f"2019-03-{day:02d}T20:00:00"))
        for d in range(1, 8):
            rows["labs"].append(dict(center_id=c, patient_id=pid, measured_at=f"2019-03-{d:02d}T06:00:00",
                                     analyte="PLT", value=str(10 + d), unit="10^9/L", below_lod="false"))
            rows["labs"].append(dict(center_id=c, patient_id=pid, measured_at=f"2019-03-{d:02d}T06:00:00",
                                     analyte="IL6", value=str(100.5 * d), unit="pg/mL", below_lod="false"))
        if cart:
            rows["crs_assessments"].append(dict(
                center_id=c, patient_id=pid, assessed_on="2019-03-03", max_temp_c="39.1", hypotension="false",
                vasopressors="0", ne_equiv_ug_min="0", vasopressin="false", fio2_pct="21", o2_device="none",
                o2_flow_l_min="0", organ_toxicity_grade="0", transaminitis_grade="0", reported_grade="1",
                reported_scale="lee2014"))
            rows["medications"].append(dict(center_id=c, patient_id=pid, drug="tocilizumab",
                                            started_on="2019-03-04", n_doses="1"))
        rows["bleeding_events"].append(dict(center_id=c, patient_id=pid, onset_on="2019-03-10", site="skin",
                                            who_grade="1", rbc_transfusion_24h="false",
                                            hemodynamic_instability="false", fatal="false"))
        rows["infections"].append(dict(center_id=c, patient_id=pid, onset_on="2019-03-12", kind="bacterial"))
        rows["outcomes"].append(dict(center_id=c, patient_id=pid, response="CR", death_on="", death_cause="",
                                     last_followup_on="2019-06-01"))
    return rows


def write_extract(folder: Path, rows: dict[str, list[dict[str, str]]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for table, recs in rows.items():
        with (folder / f"{table}.csv").open("w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=HEADERS[table])
            w.writeheader()
            for r in recs:
                w.writerow(r)
    return folder


# (table, index of the data row, column, new value, expected rule id). Spreadsheet row = index + 2.
DEFECTS: list[tuple[str, int, str, str, str]] = [
    ("patients", 0, "sex", "", "patients.sex.required"),
    ("patients", 1, "sex", "X", "patients.sex.codes"),
    ("patients", 2, "age_years", "<5", "patients.age_years.type"),
    ("patients", 3, "height_cm", "1.75", "patients.height_cm.range"),
    ("treatments", 1, "car_target", "", "treatments.car_target_required"),
    ("treatments", 4, "car_target", "CD19", "treatments.car_target_only_for_cart"),
    ("treatments", 0, "index_date", "31/02/2019", "treatments.index_date.type"),
    ("transfusions", 0, "post_count_at", "2019-03-05T09:00:00", "transfusions.post_after_transfusion"),
    ("transfusions", 1, "pre_count_at", "2019-03-07T11:00:00", "transfusions.pre_before_transfusion"),
    ("transfusions", 2, "pre_count_e9l", "15000", "transfusions.count_wrong_unit"),
    ("transfusions", 3, "transfusion_id", "P002-T1", "transfusions.transfusion_id.unique"),
    ("transfusions", 4, "patient_id", "P999", "transfusions.patient_id.references"),
    ("transfusions", 5, "storage_h", "200", "transfusions.storage_over_7_days"),
    ("transfusions", 6, "dose_e11", "0", "transfusions.dose_e11.range"),
    ("transfusions", 7, "transfused_at", "20219-03-09T10:00:00", "transfusions.transfused_at.type"),
    ("labs", 3, "unit", "ng/mL", "labs.unit_canonical"),
    ("labs", 4, "value", "15000", "labs.plt_wrong_unit"),
    ("labs", 5, "analyte", "PLATELETS", "labs.analyte.codes"),
    ("crs_assessments", 1, "reported_scale", "", "crs_assessments.scale_required"),
    ("crs_assessments", 2, "max_temp_c", "102.5", "crs_assessments.max_temp_c.range"),
    ("bleeding_events", 0, "who_grade", "3", "bleeding_events.grade3_needs_rbc"),
    ("bleeding_events", 1, "who_grade", "4", "bleeding_events.grade4_defining_fact"),
    ("bleeding_events", 2, "fatal", "true", "bleeding_events.fatal_is_grade4"),
    ("medications", 0, "n_doses", "0", "medications.n_doses.range"),
    ("infections", 0, "kind", "parasitic", "infections.kind.codes"),
    ("outcomes", 1, "death_on", "2019-01-01", "outcomes.death_after_index"),
    ("outcomes", 2, "last_followup_on", "2018-12-31", "outcomes.followup_after_index"),
]
# Rules whose defect needs more than one cell changed (see dirty_rows).
MULTI_DEFECTS = [
    ("bleeding_events", 2, "fatal", "bleeding_events.fatal_needs_death"),
    ("outcomes", 3, "last_followup_on", "outcomes.followup_after_death"),
    ("labs", 20, "measured_at", "labs.after_death"),
    ("transfusions", 6, "transfused_at", "transfusions.after_death"),
    ("patients", 5, "patient_id", "patients.has_treatment"),
    ("patients", 4, "patient_id", "patients.bsa_inputs_for_transfused"),
    ("crs_assessments", 3, "reported_grade", "crs_assessments.reported_grade_consistent"),
    ("crs_assessments", 0, "reported_grade", "crs_assessments.fever_for_crs"),
    ("transfusions", 8, "dose_e11", "transfusions.dose_or_units"),
]


# Cells changed together with the defects above, so that each multi-cell rule has its case.
MULTI_CELLS: list[tuple[str, int, str, str]] = [
    ("bleeding_events", 2, "who_grade", "2"),  # keeps fatal_is_grade4 on row 2 (P003's fatal bleed, no death date)
    # P004: dead on 2019-03-20, but followed up later; a lab after death (P004 labs start at index 42)
    ("outcomes", 3, "death_on", "2019-03-20"), ("outcomes", 3, "last_followup_on", "2019-04-01"),
    ("labs", 20, "patient_id", "P004"), ("labs", 20, "measured_at", "2019-03-25T06:00:00"),
    # P004's transfusion dated after death: transfusion index 6 is P004-T1
    ("transfusions", 6, "transfused_at", "2019-03-28T10:00:00"), ("transfusions", 6, "pre_count_at", "2019-03-28T07:00:00"),
    ("transfusions", 6, "post_count_at", "2019-03-28T20:00:00"),
    ("patients", 4, "height_cm", ""),  # P005 has no height
    ("crs_assessments", 3, "reported_grade", "3"),  # reported Lee grade 3 for signs that only give grade 1
    ("transfusions", 8, "dose_e11", ""), ("transfusions", 8, "units_reported", ""),  # neither dose nor units
    # ASTCT grade 1 without fever
    ("crs_assessments", 0, "reported_scale", "astct2019"), ("crs_assessments", 0, "max_temp_c", "37.2"),
    ("crs_assessments", 0, "reported_grade", "1"),
]


def outcomes_workbook(rows: dict[str, list[dict[str, str]]]) -> Any:
    """The outcomes of `rows` as an openpyxl workbook (header row, then one row per record, an
    empty cell where the value is blank), for a test to edit and save in place of outcomes.csv."""
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(HEADERS["outcomes"])
    for r in rows["outcomes"]:
        ws.append([r[c] or None for c in HEADERS["outcomes"]])
    return wb


def dirty_rows() -> dict[str, list[dict[str, str]]]:
    """The clean extract with every defect planted, by the one defect planter of the toolkit."""
    rows = clean_rows()
    frames = {t: pl.DataFrame(recs, schema=dict.fromkeys(HEADERS[t], pl.Utf8)) for t, recs in rows.items()}
    frames = plant_cells(frames, [(t, i, c, v) for t, i, c, v, _ in DEFECTS] + MULTI_CELLS)
    out = {t: f.to_dicts() for t, f in frames.items()}
    # P006 has no treatment row
    out["treatments"] = [t for t in out["treatments"] if t["patient_id"] != "P006"]
    return out


# The column a rule reports when it is not the cell that was changed.
REPORTED_COLUMN = {
    "bleeding_events.grade3_needs_rbc": "rbc_transfusion_24h",
    "bleeding_events.fatal_is_grade4": "who_grade",
    "patients.bsa_inputs_for_transfused": "height_cm",
    "treatments.car_target_required": "car_target",
    "crs_assessments.fever_for_crs": "reported_grade",
}
# Issues that follow from a planted defect without being one (a death dated before the index
# date makes every later lab and transfusion "after death"; 15000 x10^9/L is also out of range).
CONSEQUENCES = {"transfusions.pre_count_e9l.range", "labs.after_death", "transfusions.after_death",
                "outcomes.followup_after_death"}


def expected_defects() -> list[tuple[str, str, int, str]]:
    """(rule_id, file, spreadsheet row, column) of every planted defect."""
    out = []
    for table, idx, col, _, rule in DEFECTS:
        out.append((rule, f"{table}.csv", idx + 2, REPORTED_COLUMN.get(rule, col)))
    for table, idx, col, rule in MULTI_DEFECTS:
        out.append((rule, f"{table}.csv", idx + 2, REPORTED_COLUMN.get(rule, col)))
    return out
