"""The clinical definitions as SQL: every threshold of `schemas/definitions.yaml` as a typed
DuckDB macro `def_<section>_<key>()`, the packaged view files read as statements, and the CRS
grade (`crs_graded`) over any relation named `crs_assessments`.

Part of the declarative model, below every step of the flow: the validation engine grades CRS
with the same SQL the analyses use, and it reads it here, never from `derive` (the step that
installs every derived view over the store, after the store in the flow).

Before a value reaches SQL text it is checked against its declared kind (a finite number, a
whole number, a boolean, or a choice from a fixed list) and rendered as a typed literal, so a
configuration file can change a threshold but can never inject SQL.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import yaml

from .cdm import deep_merge, load_catalog, load_definitions

VIEWS_DIR = Path(__file__).resolve().parent / "views"

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


def _load_defs() -> tuple[Def, ...]:
    """The whitelist (views/macros.yaml): only these keys reach SQL, each with its kind."""
    data = yaml.safe_load((VIEWS_DIR / "macros.yaml").read_text(encoding="utf-8"))["macros"]
    out = []
    for macro, spec in data.items():
        codes_of = tuple(spec.get("codes_of", "crs_assessments.o2_device").split("."))
        out.append(Def(macro, tuple(spec["key"].split(".")), spec["kind"], spec.get("min"),
                       tuple(spec["choices"]) if "choices" in spec else None, codes_of))  # type: ignore[arg-type]
    return tuple(out)


DEFS: tuple[Def, ...] = _load_defs()

# Keys of definitions.yaml that no macro reads. The analyses' statistical choices (read by
# analysis/ through `Context.params`; `run-analysis` options override them), and keys that
# document the others (a source, a note on missing data), which are allowed anywhere.
ANALYSIS_KEYS = frozenset({
    "min_expected", "shapiro_alpha", "candidate_p", "entry_p", "removal_p", "entry_test",
    "multivariable_pool", "tocilizumab_max_doses", "horizon_days", "cmh_correct", "confidence",
    "mann_whitney", "landmark_days", "gee_corstr",
})
_NOTE_KEYS = ("source", "missing_data")


def _known_tree() -> dict[str, Any]:
    """Every key definitions.yaml may hold, as a tree; `*` stands for a name the file chooses
    (a BSA formula, a post-count window, a vasopressor); None marks a value."""
    tree: dict[str, Any] = {}
    for d in DEFS:
        node = tree
        for part in d.path[:-1]:
            node = node.setdefault(part, {})
        node[d.path[-1]] = None
    tree.setdefault("bsa", {}).update(
        formula=None, formulas={"*": dict.fromkeys(("coefficient", "height_exponent", "weight_exponent"))})
    tree["cci"].update(post_window=None,
                       post_windows={"*": dict.fromkeys(("after_end_min_minutes", "after_end_max_hours"))})
    tree["crs"]["lee2014"]["high_dose_monotherapy"] = {"*": dict.fromkeys(("threshold", "unit", "ne_equivalent_factor"))}
    tree["analysis"] = dict.fromkeys(ANALYSIS_KEYS)
    return tree


def unknown_keys(defs: Any) -> list[tuple[str, ...]]:
    """The paths of keys in a definitions mapping that nothing reads (a typo such as
    `refractory_belw` would otherwise leave the default in force without a word)."""
    out: list[tuple[str, ...]] = []

    def walk(node: Any, known: dict[str, Any], path: tuple[str, ...]) -> None:
        if not isinstance(node, dict):
            return
        for key, value in node.items():
            if not isinstance(key, str):
                out.append((*path, str(key)))
                continue
            if key in _NOTE_KEYS or key.endswith("_source"):
                continue
            sub = known[key] if key in known else known.get("*", False)
            if sub is False:
                out.append((*path, key))
            elif isinstance(sub, dict):
                walk(value, sub, (*path, key))

    walk(defs, _known_tree(), ())
    return out


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


def create_macros(con: duckdb.DuckDBPyConnection, macros: list[tuple[str, str, str]], temporary: bool) -> None:
    temp = "TEMP " if temporary else ""
    for name, _key, literal in macros:
        # name comes from the whitelist above; literal from _render (typed, validated).
        assert _NAME_RE.match(name), name
        con.execute(f"CREATE OR REPLACE {temp}MACRO def_{name}() AS {literal}")


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
    if not has_relation(con, "crs_assessments"):
        return False
    create_macros(con, macros, temporary)
    if has_relation(con, "medications"):
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


def has_relation(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    try:
        con.execute(f"SELECT * FROM {name} LIMIT 0").fetchall()
    except duckdb.CatalogException:
        return False
    return True
