"""Who each analysis uses, and who it leaves out and why (issue 16).

`analysis/flows.yaml` declares the analysis sets (chains of steps from the registry to the
analysed patients) and, per analysis, its set, groups and the variables it tests one by one.
From it and the derived views (`patient_summary`, `patient_missing`) this module computes:

- `flow(con, set_id)`: the CONSORT-style flow of a set: each step's n, who left and why, per
  center; drawn by `flow_figure`, written under `flows` in results.json;
- `population(con, analysis_id)`: the `population` entry of an analysis:
  `{"included": N, "excluded": {"<reason>": n}, "groups": {...}, "variables": {...},
  "by_center": {...}}`, where a reason for a missing value is the `patient_missing` reason
  ("PTR not assessable: storage_unknown"), so an unknown is never silently a "no";
- `caption(population)`: "n = 25 (1 excluded: no cytokine data)" for tables and figures.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from functools import cache
from importlib.resources import files
from typing import Any

import duckdb
import polars as pl
import yaml

from ..db import frame

# Group keys of a boolean grouping column: (true, false), as in _common and results.json.
BOOLEAN_GROUPS = {
    "ptr": ("ptr", "non_ptr"),
    "crs_grade_3plus": ("crs_ge3", "crs_le2"),
}


@cache
def flows_spec() -> dict[str, Any]:
    text = (files("ptrharmonize.analysis") / "flows.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def set_steps(set_id: str) -> list[dict[str, Any]]:
    """The steps of a set, those of its `from` chain first."""
    sets = flows_spec()["sets"]
    spec = sets[set_id]
    base = set_steps(spec["from"]) if spec.get("from") else []
    return base + list(spec.get("steps", []))


def _summary(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return frame(con, "SELECT * FROM patient_summary ORDER BY center_id, patient_id")


def _missing(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    try:
        return frame(con, "SELECT center_id, patient_id, variable, state, reason FROM patient_missing")
    except duckdb.Error:  # a connection without the view (hand-made tables): reasons unknown
        return pl.DataFrame(schema={"center_id": pl.Utf8, "patient_id": pl.Utf8, "variable": pl.Utf8,
                                    "state": pl.Utf8, "reason": pl.Utf8})


def _keep_mask(con: duckdb.DuckDBPyConnection, df: pl.DataFrame, sql: str) -> pl.Series:
    """The step's SQL predicate evaluated by DuckDB on the current rows (NULL counts as false)."""
    con.register("_flow_rows", df.select("center_id", "patient_id", *[c for c in df.columns
                                                                       if c not in ("center_id", "patient_id")]))
    try:
        # the predicate comes from flows.yaml in the package, never from the user
        out = frame(con, f"SELECT coalesce(({sql}), false) AS k FROM _flow_rows")["k"]
    finally:
        con.unregister("_flow_rows")
    return out


def _reasons(df: pl.DataFrame, column: str, missing: pl.DataFrame, prefix: str) -> pl.Series:
    """Why `column` is NULL for each row of df (the patient_missing reason, else 'unknown')."""
    m = missing.filter(pl.col("variable") == column).select("center_id", "patient_id", "reason")
    joined = df.select("center_id", "patient_id").join(m, on=["center_id", "patient_id"], how="left",
                                                       maintain_order="left")
    return joined["reason"].fill_null("unknown").map_elements(lambda r: f"{prefix}: {r}", return_dtype=pl.Utf8)


def _by_center(df: pl.DataFrame) -> dict[str, int]:
    return {str(c): int(n) for c, n in df.group_by("center_id").len().sort("center_id").iter_rows()}


def _run_steps(con: duckdb.DuckDBPyConnection, set_id: str, summary: pl.DataFrame,
               missing: pl.DataFrame) -> tuple[pl.DataFrame, list[dict[str, Any]], pl.DataFrame]:
    """(the set's patients, the flow's steps, every patient who left with step/reason/scope)."""
    df = summary
    steps = [{"label": "Registry", "n": df.height, "by_center": _by_center(df)}]
    left: list[pl.DataFrame] = []
    for i, step in enumerate(set_steps(set_id)):
        if "require" in step:
            keep = df[step["require"]].is_not_null()
            reasons = _reasons(df, step["require"], missing, step.get("excluded", step["require"]))
        else:
            keep = _keep_mask(con, df, step["keep"])
            reasons = pl.Series([step.get("excluded", "excluded")] * df.height, dtype=pl.Utf8)
        gone = df.select("center_id", "patient_id").with_columns(
            reason=reasons, step=pl.lit(i + 1), scope=pl.lit(bool(step.get("scope", False)))).filter(~keep)
        left.append(gone)
        df = df.filter(keep)
        steps[-1]["excluded"] = dict(Counter(gone["reason"].to_list()))
        steps[-1]["excluded_by_center"] = {
            str(c): dict(Counter(sub["reason"].to_list()))
            for (c,), sub in gone.group_by(["center_id"], maintain_order=True)
        }
        steps[-1]["scope"] = bool(step.get("scope", False))
        steps.append({"label": step["label"], "n": df.height, "by_center": _by_center(df)})
    schema = {"center_id": pl.Utf8, "patient_id": pl.Utf8, "reason": pl.Utf8, "step": pl.Int32,
              "scope": pl.Boolean}
    gone_all = pl.concat([g.cast(schema) for g in left]) if left else pl.DataFrame(schema=schema)
    return df, steps, gone_all


def flow(con: duckdb.DuckDBPyConnection, set_id: str) -> dict[str, Any]:
    """The CONSORT-style flow of one set: `{label, steps: [{label, n, by_center, excluded,
    excluded_by_center, scope}]}` (the last step has no exclusions)."""
    _, steps, _ = _run_steps(con, set_id, _summary(con), _missing(con))
    return {"label": flows_spec()["sets"][set_id].get("label", set_id), "steps": steps}


def flows(con: duckdb.DuckDBPyConnection, analyses: Iterable[str] | None = None) -> dict[str, Any]:
    """Every set that one of `analyses` (default: every declared analysis) uses. A flow that
    cannot be computed (a store without the columns its steps read) is an entry with its error,
    never a failed run: run-analysis does not abort on data."""
    declared = flows_spec()["analyses"]
    wanted = declared if analyses is None else [a for a in analyses if a in declared]
    used = dict.fromkeys(declared[a]["set"] for a in wanted)
    if not used:
        return {}
    out: dict[str, Any] = {}
    try:
        summary, missing = _summary(con), _missing(con)
    except duckdb.Error as exc:
        return {s: {"label": flows_spec()["sets"][s].get("label", s), "error": str(exc).splitlines()[0]}
                for s in used}
    for set_id in used:
        label = flows_spec()["sets"][set_id].get("label", set_id)
        try:
            _, steps, _ = _run_steps(con, set_id, summary, missing)
        except duckdb.Error as exc:
            out[set_id] = {"label": label, "error": str(exc).splitlines()[0]}
            continue
        out[set_id] = {"label": label, "steps": steps}
    return out


def _undeclared(con: duckdb.DuckDBPyConnection, analysis_id: str) -> dict[str, Any] | None:
    """An analysis without a flow in flows.yaml (a registry's own): who its population SQL
    selects, and how many patients of the registry it leaves out, without the reasons."""
    from ._common import population_sql

    try:
        rows = frame(con, population_sql(analysis_id))
    except Exception:  # noqa: BLE001 - no population SQL, or one not over patients
        return None
    if not {"center_id", "patient_id"} <= set(rows.columns):
        return None
    n = rows.select("center_id", "patient_id").unique().height
    total = int(frame(con, "SELECT count(*) AS n FROM patient_summary")["n"][0])
    return {"set": None, "unit": "patient", "included": n,
            "excluded": {"not selected by its population SQL (no flow in analysis/flows.yaml)": total - n}
            if total > n else {}, "scope": []}


def _group_key(column: str, value: Any) -> str:
    if column in BOOLEAN_GROUPS and isinstance(value, bool):
        return BOOLEAN_GROUPS[column][0 if value else 1]
    return str(value)


def _excluded(gone: pl.DataFrame) -> dict[str, int]:
    lost = gone.filter(~pl.col("scope"))
    return dict(sorted(Counter(lost["reason"].to_list()).items(), key=lambda kv: (-kv[1], kv[0])))


def population(con: duckdb.DuckDBPyConnection, analysis_id: str) -> dict[str, Any] | None:
    """The `population` entry of an analysis (None for an analysis flows.yaml does not know)."""
    spec = flows_spec()["analyses"].get(analysis_id)
    if spec is None:
        return _undeclared(con, analysis_id)
    summary, missing = _summary(con), _missing(con)
    df, steps, gone = _run_steps(con, spec["set"], summary, missing)
    out: dict[str, Any] = {
        "set": spec["set"],
        "unit": spec.get("unit", "patient"),
        "included": df.height,
        "excluded": _excluded(gone),
        "scope": [s["label"] for s, nxt in zip(set_steps(spec["set"]), steps[1:], strict=False)
                  if s.get("scope")],
    }
    out["by_center"] = {}
    for c in sorted({*summary["center_id"].to_list()}):
        out["by_center"][str(c)] = {
            "included": int((df["center_id"] == c).sum()),
            "excluded": _excluded(gone.filter(pl.col("center_id") == c)),
        }
    group_col = spec.get("groups")
    if group_col:
        # the excluded patients whose group is known (e.g. treatment type) count in their group
        info = summary.select("center_id", "patient_id", group_col)
        gone_g = gone.join(info, on=["center_id", "patient_id"], how="left")
        groups: dict[str, Any] = {}
        for value in sorted(df[group_col].drop_nulls().unique().to_list(), key=str):
            key = _group_key(group_col, value)
            groups[key] = {"included": int((df[group_col] == value).sum()),
                           "excluded": _excluded(gone_g.filter(pl.col(group_col) == value))}
        out["groups"] = groups
        out["groups_by"] = group_col
    variables = spec.get("variables") or {}
    if variables:
        out["variables"] = {name: _variable(df, column, group_col, missing, name)
                            for name, column in variables.items()}
    return out


def _variable(df: pl.DataFrame, column: str, group_col: str | None, missing: pl.DataFrame,
              name: str) -> dict[str, Any]:
    """A variable tested row by row: who has it known, who does not and why (per group).
    Unknown: NULL, or listed by patient_missing (sex 'U' is a code that means unknown)."""
    listed = missing.filter(pl.col("variable") == column).select("center_id", "patient_id").with_columns(
        _listed=pl.lit(True))
    df = df.join(listed, on=["center_id", "patient_id"], how="left", maintain_order="left").with_columns(
        _unknown=pl.col(column).is_null() | pl.col("_listed").fill_null(False))
    null = df.filter(pl.col("_unknown"))
    reasons = _reasons(null, column, missing, name) if null.height else pl.Series([], dtype=pl.Utf8)
    tagged = null.select("center_id", "patient_id", *([group_col] if group_col else [])).with_columns(
        reason=reasons)
    out: dict[str, Any] = {
        "included": int((~df["_unknown"]).sum()),
        "excluded": dict(Counter(tagged["reason"].to_list())),
    }
    if group_col:
        out["groups"] = {}
        for value in sorted(df[group_col].drop_nulls().unique().to_list(), key=str):
            sub = df.filter(pl.col(group_col) == value)
            out["groups"][_group_key(group_col, value)] = {
                "included": int((~sub["_unknown"]).sum()),
                "excluded": dict(Counter(tagged.filter(pl.col(group_col) == value)["reason"].to_list())),
            }
    return out


def caption(pop: dict[str, Any] | None) -> str:
    """'n = 25 (1 excluded: no cytokine data)', with the groups when there are some."""
    if not pop:
        return ""
    unit = "patients" if pop.get("unit", "patient") == "patient" else "patients (their transfusions analysed)"
    text = f"n = {pop['included']} {unit}"
    excl = pop.get("excluded") or {}
    k = sum(excl.values())
    if k:
        text += f" ({k} excluded: " + "; ".join(f"{r} ({n})" for r, n in excl.items()) + ")"
    else:
        text += " (none excluded)"
    if pop.get("scope"):
        text += "; scope: " + ", ".join(pop["scope"])
    groups = pop.get("groups") or {}
    if groups:
        text += "; " + ", ".join(
            f"{g} n = {v['included']}" + (f" ({sum(v['excluded'].values())} excluded)" if v["excluded"] else "")
            for g, v in groups.items())
    return text


def variable_note(pop: dict[str, Any] | None, column: str) -> str:
    """'3 excluded: crs_grade_3plus: crs_not_collected 3' for a table row, '' when none."""
    v = ((pop or {}).get("variables") or {}).get(column)
    if not v or not v["excluded"]:
        return ""
    return f"{sum(v['excluded'].values())} excluded: " + "; ".join(f"{r} ({n})" for r, n in v["excluded"].items())


def attach(con: duckdb.DuckDBPyConnection, analysis_id: str, res: Any) -> None:
    """Put the population into an analysis result: `population` in its data, the caption under
    its table and figure, and, when its table has a row per variable, an `excluded` column."""
    pop = population(con, analysis_id)
    if pop is None:
        return
    res.data["population"] = pop
    res.caption = caption(pop)
    table = res.table
    if "variable" in table.columns and pop.get("variables"):
        notes = [variable_note(pop, v) for v in table["variable"].to_list()]
        res.table = table.with_columns(pl.Series("excluded", notes, dtype=pl.Utf8))
