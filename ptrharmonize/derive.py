"""The study's clinical derivations, installed as SQL views in a DuckDB connection.

The views live in `ptrharmonize/views/*.sql`, one readable file per derivation. No threshold
is written in them: every threshold is a call to a DuckDB macro `def_<section>_<key>()` that
this module creates from `schemas/definitions.yaml` (merged with an analyst's `--config`).
Before a value reaches SQL text it is checked against its declared kind (a finite number, a
whole number, a boolean, or a choice from a fixed list) and rendered as a typed literal, so a
configuration file can change a threshold but can never inject SQL.

Entry points:
- `install_views(con, definitions)`: every view over the store tables of `store.create_schema`.
- `install_crs_graded(con, definitions)`: only `crs_graded`, over any relation named
  `crs_assessments` (the validation engine's submission tables carry `_file`/`_row`).
- `definition_macros(definitions)`: the validated `(macro, key, literal)` triples, for reports.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from .cdm import deep_merge, load_catalog, load_definitions

VIEWS_DIR = Path(__file__).resolve().parent / "views"

# Installation order: each file only reads tables and views created before it.
VIEW_FILES: tuple[str, ...] = (
    "patient_index.sql",
    "collection.sql",
    "bsa.sql",
    "transfusion_cci.sql",
    "ptr.sql",
    "crs_masking.sql",
    "crs_graded.sql",
    "crs.sql",
    "transfusion_il6.sql",
    "lab_daily.sql",
    "followup.sql",
    "recovery.sql",
    "platelet_dose.sql",
    "bleeding.sql",
    "peaks.sql",
    "exposures.sql",
    "patient_summary.sql",
    "missing.sql",
)

# Every view the files create, in order (checked by the tests against the files).
VIEW_NAMES: tuple[str, ...] = (
    "patient_index",
    "center_collects",
    "patient_bsa",
    "transfusion_units",
    "transfusion_events",
    "transfusion_cci",
    "patient_ptr",
    "crs_fever_masking",
    "crs_graded",
    "patient_crs",
    "transfusion_il6",
    "lab_daily",
    "lab_runs",
    "patient_followup",
    "patient_recovery",
    "patient_platelet_dose",
    "patient_bleeding",
    "patient_peaks",
    "patient_exposures",
    "patient_summary",
    "patient_missing",
)

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


class DefinitionError(ValueError):
    """A definitions value that cannot be used: names the key, the value and what was expected."""


@dataclass(frozen=True)
class Def:
    """One definitions key exposed to SQL as the macro `def_<macro>()`."""

    macro: str
    path: tuple[str, ...]
    kind: str  # number | integer | boolean | choice | choices
    minimum: float | None = None
    choices: tuple[str, ...] | None = None  # for choice / choices; None: filled in at run time
    codes_of: tuple[str, str] = ("crs_assessments", "o2_device")  # CDM column whose codes a `choices` list takes


def _codes(table: str, column: str) -> tuple[str, ...]:
    codes = load_catalog().tables[table].column(column).codes
    return tuple(codes or ())


# The whitelist: only these keys reach SQL, each with its kind.
DEFS: tuple[Def, ...] = (
    # BSA (the formula's constants are added from bsa.formulas[bsa.formula], see _bsa_macros)
    # CCI and evaluability
    Def("cci_refractory_below", ("cci", "refractory_below"), "number", 0),
    Def("cci_pre_window_h", ("cci", "pre_window_h"), "number", 0),
    Def("cci_infusion_h", ("cci", "infusion_h"), "number", 0),
    Def("cci_event_gap_h", ("cci", "event_gap_h"), "number", 0),
    Def("cci_event_same_pre_count", ("cci", "event_same_pre_count"), "boolean"),
    Def("cci_max_storage_h", ("cci", "max_storage_h"), "number", 0),
    Def("cci_require_abo_compatible", ("cci", "require_abo_compatible"), "boolean"),
    Def("cci_abo_unknown_evaluable", ("cci", "abo_unknown_evaluable"), "boolean"),
    Def("cci_storage_unknown_evaluable", ("cci", "storage_unknown_evaluable"), "boolean"),
    Def("cci_accept_untimed_counts", ("cci", "accept_untimed_counts"), "boolean"),
    Def("cci_post_before_next_transfusion", ("cci", "post_before_next_transfusion"), "boolean"),
    # PTR
    Def("ptr_rule", ("ptr", "rule"), "choice", choices=("consecutive", "any_two")),
    Def("ptr_min_failed", ("ptr", "min_failed"), "integer", 1),
    Def("ptr_window_start_days", ("ptr", "window_start_days"), "integer"),
    Def("ptr_window_days", ("ptr", "window_days"), "integer", 0),
    # Lab-series recovery
    Def("recovery_window_improvement_days", ("recovery", "window_improvement_days"), "integer", 0),
    Def("recovery_window_recovery_days", ("recovery", "window_recovery_days"), "integer", 0),
    Def("recovery_anc_agranulocytosis_below", ("recovery", "anc_agranulocytosis_below"), "number", 0),
    Def("recovery_anc_improvement_above", ("recovery", "anc_improvement_above"), "number", 0),
    Def("recovery_anc_improvement_days", ("recovery", "anc_improvement_days"), "integer", 0),
    Def("recovery_anc_normal_low", ("recovery", "anc_normal_low"), "number", 0),
    Def("recovery_plt_trigger_below", ("recovery", "plt_trigger_below"), "number", 0),
    Def("recovery_plt_improvement_above", ("recovery", "plt_improvement_above"), "number", 0),
    Def("recovery_plt_improvement_days", ("recovery", "plt_improvement_days"), "integer", 1),
    Def("recovery_plt_transfusion_effect_days", ("recovery", "plt_transfusion_effect_days"), "integer", 0),
    Def("recovery_plt_normal_low", ("recovery", "plt_normal_low"), "number", 0),
    Def("recovery_plt_dose_until_stays_above", ("recovery", "plt_dose_until_stays_above"), "number", 0),
    Def("recovery_plt_stays_days", ("recovery", "plt_stays_days"), "integer", 1),
    Def("recovery_max_gap_days", ("recovery", "max_gap_days"), "integer", 1),
    Def("recovery_plt_dose_window_days", ("recovery", "plt_dose_window_days"), "integer", 0),
    Def("recovery_plt_stays_after_fall", ("recovery", "plt_stays_after_fall"), "boolean"),
    Def("recovery_plt_stays_without_transfusion", ("recovery", "plt_stays_without_transfusion"), "boolean"),
    # Peaks
    Def("peaks_window_start_days", ("peaks", "window_start_days"), "integer"),
    Def("peaks_window_days", ("peaks", "window_days"), "integer", 0),
    # Bleeding
    Def("bleeding_window_days", ("bleeding", "window_days"), "integer", 0),
    Def("bleeding_severe_min_grade", ("bleeding", "severe_min_grade"), "integer", 1),
    Def("bleeding_last_contact_from_records", ("bleeding", "last_contact_from_records"), "boolean"),
    Def("followup_last_contact_from_records", ("followup", "last_contact_from_records"), "boolean"),
    Def("followup_windowed_no_needs_followup", ("followup", "windowed_no_needs_followup"), "boolean"),
    # Exposures (infection, medications)
    Def("exposures_window_start_days", ("exposures", "window_start_days"), "integer"),
    Def("exposures_window_days", ("exposures", "window_days"), "integer", 0),
    Def("exposures_include_undated", ("exposures", "include_undated"), "boolean"),
    # CRS
    Def("crs_group_high_min_grade", ("crs", "group_high_min_grade"), "integer", 0),
    Def("crs_room_air_fio2_pct", ("crs", "room_air_fio2_pct"), "number", 0),
    Def("crs_o2eq_cannula_devices", ("crs", "o2_fio2_equivalence", "cannula_devices"), "choices"),
    Def("crs_o2eq_cannula_base_pct", ("crs", "o2_fio2_equivalence", "cannula_base_pct"), "number", 0),
    Def("crs_o2eq_cannula_pct_per_l_min", ("crs", "o2_fio2_equivalence", "cannula_pct_per_l_min"), "number", 0),
    Def("crs_o2eq_max_pct", ("crs", "o2_fio2_equivalence", "max_pct"), "number", 0),
    Def("crs_o2eq_high_flow_devices", ("crs", "o2_fio2_equivalence", "high_flow_devices"), "choices"),
    Def("crs_o2eq_high_flow_min_l_min", ("crs", "o2_fio2_equivalence", "high_flow_min_l_min"), "number", 0),
    Def("crs_o2eq_facemask_pct", ("crs", "o2_fio2_equivalence", "facemask_pct"), "number", 0),
    Def("crs_o2eq_nonrebreather_pct", ("crs", "o2_fio2_equivalence", "nonrebreather_pct"), "number", 0),
    Def("lee2014_fever_min_c", ("crs", "lee2014", "fever_min_c"), "number", 0),
    Def("lee2014_fio2_grade3_min_pct", ("crs", "lee2014", "fio2_grade3_min_pct"), "number", 0),
    Def("lee2014_high_dose_ne_ug_min", ("crs", "lee2014", "high_dose_ne_ug_min"), "number", 0),
    Def("lee2014_vasopressin_plus_ne_ug_min", ("crs", "lee2014", "vasopressin_plus_ne_ug_min"), "number", 0),
    Def("lee2014_multiple_vasopressors_min", ("crs", "lee2014", "multiple_vasopressors_min"), "integer", 1),
    Def("lee2014_multiple_excludes_vasopressin", ("crs", "lee2014", "multiple_excludes_vasopressin"), "boolean"),
    Def("lee2014_organ_toxicity_grade2", ("crs", "lee2014", "organ_toxicity_grade2"), "integer", 0),
    Def("lee2014_organ_toxicity_grade3", ("crs", "lee2014", "organ_toxicity_grade3"), "integer", 0),
    Def("lee2014_organ_toxicity_grade4", ("crs", "lee2014", "organ_toxicity_grade4"), "integer", 0),
    Def("lee2014_transaminitis_grade2", ("crs", "lee2014", "transaminitis_grade2"), "integer", 0),
    Def("lee2014_transaminitis_grade4", ("crs", "lee2014", "transaminitis_grade4"), "integer", 0),
    Def("lee2014_ventilation_devices", ("crs", "lee2014", "ventilation_devices"), "choices"),
    Def("astct2019_fever_min_c", ("crs", "astct2019", "fever_min_c"), "number", 0),
    Def("astct2019_fever_masking_drugs", ("crs", "astct2019", "fever_masking_drugs"), "choices",
        codes_of=("medications", "drug")),
    Def("astct2019_fever_masking_from_day", ("crs", "astct2019", "fever_masking_from_day"), "integer", 0),
    Def("astct2019_low_flow_max_l_min", ("crs", "astct2019", "low_flow_max_l_min"), "number", 0),
    Def("astct2019_multiple_vasopressors_min", ("crs", "astct2019", "multiple_vasopressors_min"), "integer", 1),
    Def("astct2019_cannula_devices", ("crs", "astct2019", "cannula_devices"), "choices"),
    Def("astct2019_cannula_high_flow_when_flow_unknown", ("crs", "astct2019", "cannula_high_flow_when_flow_unknown"), "choices"),
    Def("astct2019_grade3_o2_devices", ("crs", "astct2019", "grade3_o2_devices"), "choices"),
    Def("astct2019_grade4_o2_devices", ("crs", "astct2019", "grade4_o2_devices"), "choices"),
)

# The macros `crs_graded` needs (installed alone by install_crs_graded).
CRS_MACRO_PREFIXES = ("crs_", "lee2014_", "astct2019_")


def _get(defs: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = defs
    for i, part in enumerate(path):
        if not isinstance(node, dict) or part not in node:
            raise DefinitionError(
                f"definitions: key {'.'.join(path[: i + 1])} is missing (needed by the derived views)"
            )
        node = node[part]
    return node


def _number(key: str, value: Any, minimum: float | None, integer: bool) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DefinitionError(f"definitions: {key} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise DefinitionError(f"definitions: {key} must be a finite number, got {value!r}")
    if minimum is not None and value < minimum:
        raise DefinitionError(f"definitions: {key} must be >= {minimum:g}, got {value!r}")
    if integer:
        if float(value) != int(value):
            raise DefinitionError(f"definitions: {key} must be a whole number, got {value!r}")
        return f"CAST({int(value)} AS BIGINT)"
    return f"CAST({float(value)!r} AS DOUBLE)"


def _choice_literal(key: str, value: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices or not _NAME_RE.match(value):
        raise DefinitionError(
            f"definitions: {key} must be one of {', '.join(choices)}, got {value!r}"
        )
    return "'" + value.replace("'", "''") + "'"


def _post_window_macros(defs: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The post-count window named by cci.post_window, as hours after the transfusion's end."""
    windows = _get(defs, ("cci", "post_windows"))
    if not isinstance(windows, dict) or not windows:
        raise DefinitionError("definitions: cci.post_windows must map window names to their bounds")
    names = tuple(n for n in windows if isinstance(n, str) and _NAME_RE.match(n))
    name = _get(defs, ("cci", "post_window"))
    out = [("cci_post_window", "cci.post_window", _choice_literal("cci.post_window", name, names))]
    low = _get(defs, ("cci", "post_windows", name, "after_end_min_minutes"))
    high = _get(defs, ("cci", "post_windows", name, "after_end_max_hours"))
    key = f"cci.post_windows.{name}"
    _number(f"{key}.after_end_min_minutes", low, 0, False)
    _number(f"{key}.after_end_max_hours", high, 0, False)
    if low / 60 >= high:
        raise DefinitionError(f"definitions: {key} must start before it ends")
    out.append(("cci_post_min_h", f"{key}.after_end_min_minutes", _number(key, low / 60, 0, False)))
    out.append(("cci_post_max_h", f"{key}.after_end_max_hours", _number(key, high, 0, False)))
    return out


def _high_dose_macros(defs: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Lee 2014 Table 3 monotherapy thresholds as NE-equivalent bounds.

    CDM v1 records the NE-equivalent dose of the day, not the agent, so one pressor is high
    dose for every agent at or above the highest threshold, and for some agents only between
    the lowest and the highest (`lee2014_high_dose_undetermined`)."""
    key = "crs.lee2014.high_dose_monotherapy"
    table = _get(defs, ("crs", "lee2014", "high_dose_monotherapy"))
    if not isinstance(table, dict) or not table:
        raise DefinitionError(f"definitions: {key} must map agents to threshold and ne_equivalent_factor")
    ne = []
    for agent, spec in table.items():
        if not isinstance(spec, dict):
            raise DefinitionError(f"definitions: {key}.{agent} must have threshold and ne_equivalent_factor")
        for part in ("threshold", "ne_equivalent_factor"):
            if part not in spec:
                raise DefinitionError(f"definitions: key {key}.{agent}.{part} is missing")
            _number(f"{key}.{agent}.{part}", spec[part], 0, False)
        ne.append(float(spec["threshold"]) * float(spec["ne_equivalent_factor"]))
    return [
        ("lee2014_high_dose_mono_ne_all", f"{key}.highest_ne_equivalent", _number(key, max(ne), 0, False)),
        ("lee2014_high_dose_mono_ne_any", f"{key}.lowest_ne_equivalent", _number(key, min(ne), 0, False)),
    ]


def _render(d: Def, value: Any, choices: tuple[str, ...]) -> str:
    key = ".".join(d.path)
    if d.kind in ("number", "integer"):
        return _number(key, value, d.minimum, d.kind == "integer")
    if d.kind == "boolean":
        if not isinstance(value, bool):
            raise DefinitionError(f"definitions: {key} must be true or false, got {value!r}")
        return "TRUE" if value else "FALSE"
    if d.kind == "choice":
        return _choice_literal(key, value, d.choices or choices)
    if d.kind == "choices":
        if not isinstance(value, list | tuple):
            raise DefinitionError(f"definitions: {key} must be a list of codes, got {value!r}")
        items = [_choice_literal(key, v, d.choices or choices) for v in value]
        # An empty list still needs an element type for list_contains.
        return "CAST([" + ", ".join(items) + "] AS VARCHAR[])"
    raise AssertionError(d.kind)


def _bsa_macros(defs: dict[str, Any]) -> list[tuple[str, str, str]]:
    formulas = _get(defs, ("bsa", "formulas"))
    if not isinstance(formulas, dict) or not formulas:
        raise DefinitionError("definitions: bsa.formulas must map formula names to coefficients")
    names = tuple(n for n in formulas if isinstance(n, str) and _NAME_RE.match(n))
    name = _get(defs, ("bsa", "formula"))
    out = [("bsa_formula", "bsa.formula", _choice_literal("bsa.formula", name, names))]
    for part in ("coefficient", "height_exponent", "weight_exponent"):
        path = ("bsa", "formulas", name, part)
        value = _get(defs, path)
        out.append((f"bsa_{part}", ".".join(path), _number(".".join(path), value, 0, False)))
    if _get(defs, ("bsa", "formulas", name, "coefficient")) <= 0:
        raise DefinitionError(f"definitions: bsa.formulas.{name}.coefficient must be > 0")
    return out


def definition_macros(definitions: dict[str, Any] | None = None) -> list[tuple[str, str, str]]:
    """Validated `(macro name without def_, definitions key, SQL literal)` for every whitelisted key.

    `definitions` is merged over the defaults of `schemas/definitions.yaml`, so a partial dict
    (for example `{"ptr": {"rule": "any_two"}}`) changes only what it names.
    """
    defs = deep_merge(load_definitions(), definitions or {})
    out = _bsa_macros(defs) + _post_window_macros(defs) + _high_dose_macros(defs)
    for d in DEFS:
        out.append((d.macro, ".".join(d.path), _render(d, _get(defs, d.path), _codes(*d.codes_of))))
    return out


def _create_macros(con: duckdb.DuckDBPyConnection, macros: list[tuple[str, str, str]], temporary: bool) -> None:
    temp = "TEMP " if temporary else ""
    for name, _key, literal in macros:
        # name comes from the whitelist above; literal from _render (typed, validated).
        assert _NAME_RE.match(name), name
        con.execute(f"CREATE OR REPLACE {temp}MACRO def_{name}() AS {literal}")


def _create_definitions_view(con: duckdb.DuckDBPyConnection, macros: list[tuple[str, str, str]], temporary: bool) -> None:
    """`derivation_definitions(key, macro, value)`: what the installed views use, as text."""
    temp = "TEMP " if temporary else ""
    parts = [
        f"SELECT '{key}' AS key, 'def_{name}' AS macro, CAST(def_{name}() AS VARCHAR) AS value"
        for name, key, _literal in macros
        if _NAME_RE.match(name) and re.fullmatch(r"[a-z0-9_.]+", key)
    ]
    con.execute(f"CREATE OR REPLACE {temp}VIEW derivation_definitions AS\n" + "\nUNION ALL ".join(parts))


_CREATE_VIEW_RE = re.compile(r"^(\s*(?:--[^\n]*\n\s*)*)CREATE\s+OR\s+REPLACE\s+VIEW\b", re.IGNORECASE)


def view_statements(file_name: str, temporary: bool = False) -> list[str]:
    """The statements of one view file, each a `CREATE OR REPLACE [TEMP] VIEW`."""
    text = (VIEWS_DIR / file_name).read_text(encoding="utf-8")
    out = []
    for stmt in duckdb.extract_statements(text):
        sql = stmt.query.strip()
        if not sql or sql == ";":
            continue
        m = _CREATE_VIEW_RE.match(sql)
        if not m:
            raise ValueError(f"{file_name}: every statement must be CREATE OR REPLACE VIEW: {sql[:80]!r}")
        if temporary:
            sql = _CREATE_VIEW_RE.sub(lambda m: m.group(1) + "CREATE OR REPLACE TEMP VIEW", sql, count=1)
        out.append(sql)
    return out


def install_views(
    con: duckdb.DuckDBPyConnection,
    definitions: dict[str, Any] | None = None,
    *,
    temporary: bool = False,
) -> None:
    """Create (or replace) every derived view over the store tables.

    The CDM tables must exist (`store.create_schema`). With `temporary=True` the macros and
    views are session-local, so an analysis can apply its own `--config` to a store opened
    read-only without changing what other readers of the file see.
    """
    macros = definition_macros(definitions)
    _create_macros(con, macros, temporary)
    _create_definitions_view(con, macros, temporary)
    _ensure_collection(con)
    for name in VIEW_FILES:
        for sql in view_statements(name, temporary):
            con.execute(sql)


def _ensure_collection(con: duckdb.DuckDBPyConnection) -> None:
    """The views read `collection` (which tables and columns each center collects, written at
    ingest). A connection without it (a store from before the record, hand-made tables) gets
    an empty session-local one: every center is then taken as collecting everything."""
    try:
        con.execute("SELECT * FROM collection LIMIT 0").fetchall()
    except duckdb.CatalogException:
        from .collection import COLLECTION_DDL

        con.execute(COLLECTION_DDL.replace("CREATE TABLE", "CREATE TEMP TABLE", 1)).fetchall()


def install_crs_graded(
    con: duckdb.DuckDBPyConnection,
    definitions: dict[str, Any] | None = None,
    *,
    temporary: bool = False,
) -> bool:
    """Create view `crs_graded` over whatever relation is named `crs_assessments` in `con`.

    Every column of `crs_assessments` is kept (including `_file` and `_row` of a submission)
    and `signs_recorded`, `lee2014_grade`, `astct2019_grade` are added. Returns False, creating
    nothing, when `con` has no relation `crs_assessments` (the table was not submitted); a
    definitions error is raised either way.
    """
    macros = [m for m in definition_macros(definitions) if m[0].startswith(CRS_MACRO_PREFIXES)]
    if not _has_relation(con, "crs_assessments"):
        return False
    _create_macros(con, macros, temporary)
    if _has_relation(con, "medications"):
        statements = view_statements("crs_masking.sql", temporary)
    else:
        # medications not submitted: no course is known, so no fever is masked (ASTCT 2019
        # then requires fever on every day it grades)
        temp = "TEMP " if temporary else ""
        statements = [f"CREATE OR REPLACE {temp}VIEW crs_fever_masking AS "
                      "SELECT CAST(NULL AS VARCHAR) AS center_id, CAST(NULL AS VARCHAR) AS patient_id, "
                      "CAST(NULL AS VARCHAR) AS drug, CAST(NULL AS DATE) AS started_on WHERE false"]
    for sql in statements + view_statements("crs_graded.sql", temporary):
        con.execute(sql)
    return True


def _has_relation(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    try:
        con.execute(f"SELECT * FROM {name} LIMIT 0").fetchall()
    except duckdb.CatalogException:
        return False
    return True
