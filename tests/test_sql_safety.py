"""Nothing from a file or a mapping is pasted into SQL text (issue 9).

Two static checks read the package's source: every f-string that builds SQL interpolates only
quoted identifiers (`qi`), quoted literals (`_literal`, `_sql_str`) or a value reviewed below
(catalog-derived names, validated definitions, constants); every statement passed to DuckDB is a
literal, such an f-string, or a reviewed builder. A new interpolation fails the test until it is
reviewed and listed here with its reason. A dynamic check then runs validate, ingest, status and
the QA report on a submission whose names and values are SQL, with every statement DuckDB
receives recorded: none contains the hostile text, and the store keeps every table.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import duckdb
import pytest
import yaml
from typer.testing import CliRunner

from extract_factory import HEADERS, clean_rows, write_extract
from ptrharmonize.cli import app
from ptrharmonize.store import qi

PACKAGE = Path(__file__).resolve().parent.parent / "ptrharmonize"
SQL_WORDS = re.compile(r"\b(SELECT|INSERT|DELETE|UPDATE|CREATE|DROP|ATTACH|COPY|PRAGMA|ALTER|FROM|WHERE|VIEW|MACRO|"
                       r"TABLE|AS|CAST|JOIN|VALUES|INTO|SET|UNION)\b")
QUOTERS = {"qi", "_literal", "_sql_str"}  # identifier and string-literal quoting (tested below)

# (file, interpolated expression) -> why it is safe. Keep this list short and the reasons true.
REVIEWED_INTERPOLATIONS: dict[tuple[str, str], str] = {
    ("analysis/runner.py", "STORE"): "a constant alias",
    ("analysis/runner.py", "restrict"): "built from constants and _literal(...) values",
    ("analysis/runner.py", "', '.join(_literal(c) for c in centers)"): "each center quoted by _literal",
    ("analysis/runner.py", "where"): "'' or IN (...) of centers quoted by _literal",
    ("analysis/population.py", "sql"): "a step predicate of the packaged analysis/flows.yaml, never user input",
    ("analysis/sensitivity.py", "c"): "a column name of the constant BINARY",
    ("report/missing.py", "var"): "schemas/completeness.yaml variable, checked by str.isidentifier()",
    ("store.py", "names"): "issue columns, each quoted by qi",
    ("report/missing.py", "rule['population']"): "a condition of schemas/completeness.yaml (the registry's own catalog, like rules.yaml)",
    ("report/missing.py", "pop"): "built above from var and rule['population']",
    ("report/completeness_check.py", "var"): "a column of patient_summary (checked against DESCRIBE just above)",
    ("report/completeness_check.py", "population"): "a condition of completeness.yaml, compiled here to refuse a broken one at load",
    ("report/missing.py", "name"): "the constants 'collection', 'patient_summary', 'patient_missing'",
    ("analysis/sensitivity.py", "sets"): "'c = coalesce(c, TRUE|FALSE)' over the constant BINARY",
    ("definition_sql.py", "float(value)"): "a number (definitions.yaml, typed by float())",
    ("definition_sql.py", "int(value)"): "a number (definitions.yaml, typed by int())",
    ("derive.py", "temp"): "'TEMP ' or ''",
    ("definition_sql.py", "temp"): "'TEMP ' or ''",
    ("derive.py", "name"): "macro names from the DEFS whitelist, asserted against _NAME_RE",
    ("definition_sql.py", "name"): "macro names from the DEFS whitelist, asserted against _NAME_RE",
    ("definition_sql.py", "literal"): "rendered by _render from a typed, validated definition",
    ("derive.py", "key"): "definition keys, filtered by re.fullmatch('[a-z0-9_.]+')",
    ("definition_sql.py", "file_name"): "an error message, not SQL",
    ("definition_sql.py", "sql[:80]"): "an error message, not SQL",
    ("ingest.py", "cols"): "', '.join(qi(c.name) ...) over catalog columns",
    ("report/qa_source.py", "STORE_ALIAS"): "a constant alias",
    ("report/qa_source.py", "cols"): "', '.join(qi(c.name) ...) over catalog columns",
    ("report/qa.py", "expr"): "qi(col.name) of a catalog column, optionally wrapped in NULLIF(trim(...))",
    ("report/qa.py", "i"): "a loop counter",
    ("report/qa.py", "', '.join(parts)"): "count(<qi(catalog column)>) AS c<i>",
    ("report/qa.py", "sql"): "a query of the packaged report/distributions.yaml (never a registry's file)",
    ("validate/cross_table.py", "', '.join(cols)"): "CAST(NULL AS <catalog type>) AS qi(<catalog column>)",
    ("validate/cross_table.py", "c.duckdb_type"): "a DuckDB type from cdm.DUCKDB_TYPES",
    ("ingest.py", "method"): "store.row_digest_sql: the constant expression 'duckdb-hash-' || version()",
    ("report/history.py", "method"): "one of two constant expressions",
    ("validate/catalog_compile.py", "cols"): "', '.join(qi(<column>) <type from cdm.DUCKDB_TYPES>)",
    ("validate/catalog_compile.py", "condition"): "a column's applies_when from tables/*.yaml, compiled on an empty in-memory table",
    ("ingest.py", "key"): "store.row_digest_sql: md5 over qi(<catalog column>) casts",
    ("ingest.py", "digest"): "store.row_digest_sql: md5 over qi(<catalog column>) casts",
    ("report/qa.py", "when"): "a column's applies_when from tables/*.yaml, compiled by the catalog check at load",
    ("report/qa.py", "cond"): "' FILTER (WHERE <applies_when>)' or ''",
    ("validate/catalog_compile.py", "', '.join(cols)"): "qi(<catalog column>) <type from cdm.DUCKDB_TYPES>",
    ("validate/catalog_compile.py", "q.failing"): "a rule query of the catalog, compiled against empty in-memory tables",
    ("validate/catalog_compile.py", "q.denominator"): "a rule query of the catalog, compiled against empty in-memory tables",
    ("validate/checks/during_life.py", "grace"): "' + INTERVAL <int()> DAY' or ''",
}

# (file, SQL argument) -> why a statement that is not a literal or an f-string is safe.
REVIEWED_STATEMENTS: dict[tuple[str, str], str] = {
    ("analysis/population.py", "population_sql(analysis_id)"): "an analysis's own population SQL file, as Context.population runs it",
    ("db.py", "sql"): "the helpers themselves; their callers are checked",
    ("report/history.py", "sql"): "a constant statement, values bound with ?",
    ("store.py", "SUBMISSION_ROWS_DDL"): "a constant DDL",
    ("analysis/_common.py", "population_sql(analysis_id)"): "a packaged file analysis/sql/<id>.sql",
    ("analysis/runner.py", "table_ddl(catalog, table)"): "DDL from the catalog, identifiers through qi",
    ("analysis/runner.py", 'sql + " ORDER BY center_id, submitted_at"'): "a constant statement",
    ("derive.py", "sql"): "statements of the packaged views/*.sql files",
    ("definition_sql.py", "sql"): "statements of the packaged views/*.sql files",
    ("derive.py", 'f"CREATE OR REPLACE {temp}VIEW derivation_definitions AS\\n" + "\\nUNION ALL ".join(parts)'):
        "parts are the reviewed f-strings of _create_definitions_view",
    ("report/qa_source.py", 'sql.format(w="WHERE database_name = ?")'): "a constant clause, value bound",
    ("report/qa_source.py", "sql.format(w=where)"): "where is one of two constant clauses, values bound",
    ("report/qa_source.py", "table_ddl(catalog, table)"): "DDL from the catalog",
    ("report/qa_source.py", "ddl"): "the store's constant DDL strings",
    ("report/qa_source.py", "sql"): "packaged view statements (derive.view_statements)",
    ("store.py", "table_ddl(catalog, table)"): "DDL from the catalog",
    ("store.py", "SUBMISSIONS_DDL"): "a constant",
    ("store.py", "ISSUES_DDL"): "a constant",
    ("store.py", "RULE_RESULTS_DDL"): "a constant",
    ("store.py", "COLLECTION_DDL"): "a constant",
    ("collection.py", "COLLECTION_DDL"): "a constant",
    ("derive.py", "COLLECTION_DDL.replace('CREATE TABLE', 'CREATE TEMP TABLE', 1)"): "a constant made temporary",
    ("validate/cross_table.py", "_empty_view_sql(catalog, table)"): "a reviewed f-string over the catalog",
    ("validate/cross_table.py", "sql"): "rules.yaml (the catalog), or the reviewed references f-string",
    ("validate/cross_table.py", "den"): "rules.yaml (the catalog), or the reviewed references f-string",
}


def _normalized(reviewed: dict[tuple[str, str], str]) -> dict[tuple[str, str], str]:
    """Keys as `ast.unparse` writes them (quotes and spacing normalized)."""
    return {(f, ast.unparse(ast.parse(e, mode="eval").body)): why for (f, e), why in reviewed.items()}


REVIEWED_INTERPOLATIONS = _normalized(REVIEWED_INTERPOLATIONS)
REVIEWED_STATEMENTS = _normalized(REVIEWED_STATEMENTS)


def sources() -> list[tuple[str, str, ast.Module]]:
    out = []
    for f in sorted(PACKAGE.rglob("*.py")):
        text = f.read_text(encoding="utf-8")
        out.append((f.relative_to(PACKAGE).as_posix(), text, ast.parse(text)))
    return out


def quoted_call(node: ast.expr) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in QUOTERS


def sql_fstrings() -> list[tuple[str, int, str]]:
    """(file, line, expression) of every value interpolated into an f-string that reads as SQL."""
    found = []
    for name, _text, tree in sources():
        for node in ast.walk(tree):
            if not isinstance(node, ast.JoinedStr):
                continue
            const = "".join(v.value for v in node.values if isinstance(v, ast.Constant))
            if not SQL_WORDS.search(const):
                continue
            for v in node.values:
                if isinstance(v, ast.FormattedValue):
                    found.append((name, node.lineno, v.value))
    return [(n, line, ast.unparse(e)) for n, line, e in found if not quoted_call(e)] + \
           [(n, line, "<quoted>") for n, line, e in found if quoted_call(e)]


def test_sql_fstrings_interpolate_only_quoted_or_reviewed_values() -> None:
    hits = sql_fstrings()
    assert len(hits) > 20  # the scan sees the package's SQL
    unreviewed = [(n, line, e) for n, line, e in hits if e != "<quoted>" and (n, e) not in REVIEWED_INTERPOLATIONS]
    assert unreviewed == [], "SQL f-strings interpolating unreviewed values (quote with qi/_literal, bind with ?, " \
                             f"or review and list them): {unreviewed}"
    stale = set(REVIEWED_INTERPOLATIONS) - {(n, e) for n, _, e in hits}
    assert stale == set(), f"reviewed entries no longer in the code (remove them): {stale}"


EXEC_METHODS = {"execute", "sql", "executemany", "query"}
DB_HELPERS = {"run", "rows", "scalar", "frame"}


def statements() -> list[tuple[str, int, ast.expr]]:
    """(file, line, SQL argument) of every call that hands SQL to DuckDB."""
    out = []
    for name, _text, tree in sources():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            fn, arg = node.func, None
            if isinstance(fn, ast.Attribute) and fn.attr in EXEC_METHODS and node.args:
                arg = node.args[0]
            elif len(node.args) >= 2 and (
                (isinstance(fn, ast.Attribute) and fn.attr in DB_HELPERS and isinstance(fn.value, ast.Name) and fn.value.id == "db")
                or (isinstance(fn, ast.Name) and fn.id in DB_HELPERS)
            ):
                arg = node.args[1]
            if arg is not None:
                out.append((name, node.lineno, arg))
    return out


def test_statements_are_literals_fstrings_or_reviewed_builders() -> None:
    calls = statements()
    assert len(calls) > 30
    unreviewed, seen = [], set()
    for name, line, arg in calls:
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            continue
        if isinstance(arg, ast.JoinedStr):
            continue  # checked by the f-string test
        src = ast.unparse(arg)
        seen.add((name, src))
        if (name, src) not in REVIEWED_STATEMENTS:
            unreviewed.append((name, line, src))
    assert unreviewed == [], f"SQL statements built from unreviewed values: {unreviewed}"
    stale = {k for k in REVIEWED_STATEMENTS if k not in seen}
    assert stale == set(), f"reviewed entries no longer in the code (remove them): {stale}"


def test_no_percent_or_format_sql_outside_the_reviewed_ones() -> None:
    """`%` formatting or `.format()` of SQL text: only the two reviewed `.format(w=...)` in qa.py."""
    hits = []
    for name, _text, tree in sources():
        for node in ast.walk(tree):
            if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod) and isinstance(node.left, ast.Constant) \
                    and isinstance(node.left.value, str) and SQL_WORDS.search(node.left.value):
                hits.append((name, node.lineno, "%"))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
                base = node.func.value
                if isinstance(base, ast.Constant) and isinstance(base.value, str) and SQL_WORDS.search(base.value):
                    hits.append((name, node.lineno, ast.unparse(node)))
    assert hits == []


HOSTILE = [
    'a"b', "a'b", 'x"; DROP TABLE patients; --', "'); DROP TABLE labs; --", "\\", "a\nb", "ä 中 ☃", "--", "/*", "",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_quoting_functions_round_trip_through_duckdb(text: str, tmp_path: Path) -> None:
    from ptrharmonize.analysis.runner import _literal as runner_literal
    from ptrharmonize.report.qa_source import _literal as qa_literal
    from ptrharmonize.validate.cross_table import _sql_str

    con = duckdb.connect()
    try:
        name = text or "empty"
        con.execute(f"CREATE TABLE t ({qi(name)} VARCHAR)").fetchall()
        con.execute("INSERT INTO t VALUES (?)", [text]).fetchall()
        assert con.execute(f"SELECT {qi(name)} FROM t").fetchall() == [(text,)]
        assert con.execute("SELECT column_name FROM information_schema.columns WHERE table_name = 't'").fetchall() == [(name,)]
        for lit in (runner_literal, qa_literal):
            assert con.execute(f"SELECT {lit(text)}").fetchall() == [(text,)]
        assert con.execute(f"SELECT {_sql_str(Path(text))}").fetchall() == [(str(Path(text)),)]
        assert {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()} == {"t"}
    finally:
        con.close()


# --------------------------------------------------------------------------- end to end

# Every hostile text below carries "; DROP TABLE" (the code's own `DROP TABLE temp.x` of a table
# it made is not one of them).
MARK = "; DROP TABLE"
# A center id is a code checked against schemas/limits.yaml's pattern (issue 23): a hostile one is
# refused before any SQL (tests/test_hostile.py::test_center_id_refused); the other hostile texts
# below are data and must pass through as such.
CENTER = "C-01"
SOURCE_COL = 's"; DROP TABLE outcomes; --'
EXTRA_COL = 'u"; DROP TABLE labs; --'
CELL = "'); DROP TABLE issues; --"
BAD_NUMBER = "1'); DROP TABLE rule_results; --"


class RecordingConnection:
    """A DuckDB connection that records the text of every statement it is given."""

    def __init__(self, con: duckdb.DuckDBPyConnection, log: list[str]) -> None:
        self._con, self._log = con, log

    def execute(self, sql: str, *args, **kwargs):
        self._log.append(sql)
        return self._con.execute(sql, *args, **kwargs)

    def executemany(self, sql: str, *args, **kwargs):
        self._log.append(sql)
        return self._con.executemany(sql, *args, **kwargs)

    def sql(self, sql: str, *args, **kwargs):
        self._log.append(sql)
        return self._con.sql(sql, *args, **kwargs)

    def query(self, sql: str, *args, **kwargs):
        self._log.append(sql)
        return self._con.query(sql, *args, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self._con, name)


def csv_name(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def hostile_rows() -> dict[str, list[dict[str, str]]]:
    rows = clean_rows(CENTER)
    rows["outcomes"][1]["death_cause"] = CELL
    rows["labs"][2]["value"] = BAD_NUMBER
    return rows


def hostile_extract(tmp: Path) -> Path:
    """A canonical extract: hostile center id, cell values and an extra column's name."""
    sub = write_extract(tmp / "canonical'; DROP TABLE treatments; --", hostile_rows())
    f = sub / "labs.csv"
    lines = f.read_text(encoding="utf-8").splitlines()
    f.write_text("\n".join([lines[0] + "," + csv_name(EXTRA_COL), *[ln + ",x" for ln in lines[1:]]]) + "\n",
                 encoding="utf-8")
    return sub


def hostile_mapped(tmp: Path) -> tuple[Path, Path]:
    """A center's files read through a mapping: a hostile source column name and value-map key."""
    sub = write_extract(tmp / "mapped'; DROP TABLE treatments; --", hostile_rows())
    f = sub / "outcomes.csv"
    text = f.read_text(encoding="utf-8")
    f.write_text(text.replace("death_cause", csv_name(SOURCE_COL), 1), encoding="utf-8")
    spec = {t: {"file": f"{t}.csv", "columns": {c: c for c in cols if c != "center_id"}} for t, cols in HEADERS.items()}
    spec["outcomes"]["columns"]["death_cause"] = SOURCE_COL
    spec["patients"]["columns"]["sex"] = {"column": "sex", "values": {"M": "M", "F": "F", "x'); DROP TABLE x; --": "U"}}
    mapping = tmp / "mapping'q.yaml"
    mapping.write_text(yaml.safe_dump({"center_id": CENTER, "tables": spec}, allow_unicode=True), encoding="utf-8")
    return sub, mapping


def test_hostile_names_and_values_never_reach_sql_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log: list[str] = []
    real_connect = duckdb.connect
    monkeypatch.setattr(duckdb, "connect", lambda *a, **k: RecordingConnection(real_connect(*a, **k), log))
    work = tmp_path / "tmp'q\"w"  # the engine's work files: quoted where their paths reach SQL
    work.mkdir()
    monkeypatch.setenv("TMPDIR", str(work))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    canonical = hostile_extract(tmp_path)
    mapped, mapping = hostile_mapped(tmp_path)
    store = tmp_path / "reg'q\"x.duckdb"  # a CLI path (quoted where it reaches SQL: ATTACH)
    thresholds = tmp_path / "th.csv"
    thresholds.write_text("rule_id,center_id,threshold\nlabs.value.type,,5\n", encoding="utf-8")
    runner = CliRunner()
    for sub, extra in ((canonical, []), (mapped, ["--mapping", str(mapping)])):
        res = runner.invoke(app, ["validate", str(sub), *extra, "--format", "json"])
        assert res.exit_code == 1, res.output[-2000:]
        assert '"status": "error"' not in res.stdout  # every rule ran: the quoted work paths worked
        res = runner.invoke(app, ["ingest", str(sub), *extra, "--store", str(store), "--thresholds", str(thresholds),
                                  "--quiet"])
        assert res.exit_code == 0, res.output[-2000:]
    res = runner.invoke(app, ["status", "--store", str(store)])
    assert res.exit_code == 0, res.output[-2000:]
    res = runner.invoke(app, ["qa-report", "--store", str(store), "--out", str(tmp_path / "qa.html")])
    assert res.exit_code == 0, res.output[-2000:]
    assert "Traceback" not in res.output

    assert len(log) > 50
    leaked = [sql for sql in log if MARK in sql or SOURCE_COL in sql or EXTRA_COL in sql or CELL in sql]
    assert leaked == []

    con = real_connect(str(store), read_only=True)
    try:
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        assert {*HEADERS, "submissions", "issues", "rule_results"} <= tables
        assert con.execute("SELECT DISTINCT center_id FROM patients").fetchall() == [(CENTER,)]
        assert (CELL,) in con.execute("SELECT death_cause FROM outcomes").fetchall()
        assert con.execute("SELECT value FROM issues WHERE rule_id = 'labs.value.type'").fetchall() == [(BAD_NUMBER,)]
        assert (EXTRA_COL,) not in con.execute("SELECT column_name FROM information_schema.columns").fetchall()
        assert con.execute("SELECT count(*) FROM submissions WHERE center_id = ? AND status = 'active'",
                           [CENTER]).fetchall() == [(1,)]
    finally:
        con.close()
