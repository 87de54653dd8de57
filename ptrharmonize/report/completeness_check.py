"""The queries of `completeness.yaml`, compiled before any data is read (issue 24).

`validate` checks the file's keys, severities and thresholds at load (`validate/catalog_files`),
but an outcome's `population` is SQL over `patient_summary` and its `variable` a column of it:
both need the derived views, which sit above `validate` in the layer order. Without this
check a typo there (`treatment_typ = 'car_t'`) passed every load check and failed only when
the missing-data block ran, after the data had been read (and was then reported as "could not
derive the outcomes", not as a broken catalog).

So the commands that run the block (`validate`, `ingest`, `qa-report`) and `ptrh schema check`
compile every outcome's query here, against the views installed over the empty CDM tables of an
in-memory DuckDB: the same statement shape `report/missing.py` runs, bound by `DESCRIBE`
(DuckDB binds and types it, and runs nothing). A problem
names the file, the line and the key (`population` or `variable`), and the commands stop with
exit 2 (`CatalogError`) before reading a submission. The compile costs one in-memory store per
process, about 0.35 s (cached by catalog folder).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import duckdb

from ..paths import schemas_dir
from ..validate.catalog_doc import CatalogError, Problem, _Doc

FILE = "completeness.yaml"


def _views(root: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the CDM tables of the catalog at `root` (empty) and every derived
    view over them."""
    from .. import derive, store
    from ..cdm import load_catalog

    con = duckdb.connect(":memory:")
    store.create_schema(con, load_catalog(root))
    derive.install_views(con)
    return con


def _outcome_problems(con: duckdb.DuckDBPyConnection, doc: _Doc, i: int, rule: dict[str, Any],
                      columns: set[str]) -> list[Problem]:
    var, population = rule.get("variable"), rule.get("population")
    if not isinstance(var, str) or not isinstance(population, str):
        return []  # the key check of validate/catalog_files names these
    if var not in columns:
        return [doc.problem(("outcomes", i, "variable"),
                            f"{var!r} is not a column of patient_summary (known: {', '.join(sorted(columns))})")]
    try:
        # population: the registry's own catalog file, compiled here precisely so that a broken
        # one is refused before `report/missing.py` runs the same WHERE clause over data
        con.execute(f"DESCRIBE SELECT center_id, patient_id, {var} AS v FROM patient_summary "
                    f"WHERE ({population})").fetchall()
    except duckdb.Error as exc:
        why = str(exc).splitlines()[0]
        return [doc.problem(("outcomes", i, "population"),
                            f"does not compile as a condition over patient_summary: {why}")]
    return []


def completeness_problems(root: Path | None = None) -> list[Problem]:
    """Every outcome of `<root>/completeness.yaml` whose variable or population does not compile."""
    root = Path(root or schemas_dir())
    path = root / FILE
    if not path.is_file():
        return []
    try:
        doc = _Doc(path, str(path))
    except Exception:  # noqa: BLE001 - unreadable YAML is named by the catalog's own check
        return []
    outcomes = (doc.data or {}).get("outcomes") if isinstance(doc.data, dict) else None
    if not isinstance(outcomes, list) or not outcomes:
        return []
    con = _views(root)
    try:
        columns = {r[0] for r in con.execute("DESCRIBE patient_summary").fetchall()}
        return [p for i, rule in enumerate(outcomes) if isinstance(rule, dict)
                for p in _outcome_problems(con, doc, i, rule, columns)]
    finally:
        con.close()


@lru_cache(maxsize=8)
def _checked(root: str) -> None:
    problems = completeness_problems(Path(root))
    if problems:
        raise CatalogError(problems)


def ensure_completeness_compiles(root: Path | None = None) -> None:
    """Raise CatalogError (exit 2) when an outcome's query of completeness.yaml cannot run."""
    _checked(str(Path(root or schemas_dir())))
