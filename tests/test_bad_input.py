"""The bad-input battery (issue 9): whatever a center sends, `ptrh` answers clearly.

Every case in `CASES` is run through the real CLI twice: `ptrh validate --format json` and
`ptrh ingest` into a store that already holds a clean submission of the same center. Each must
end with the exit code the case expects (1: errors found in the data, 2: could not run; 0 only
for the cases where hostile text must simply be kept as data), a message that names the file
(and the row and column where they apply), no traceback, a small output, and — for 1 and 2 —
a store exactly as it was. A few cases run again through the real `ptrh` executable.
`test_ten_million_rows_one_bad` is the registry-scale case. `test_battery_size` prints the count.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import random
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import openpyxl
import polars as pl
import pytest
import yaml
from store_snapshot import snapshot
from typer.testing import CliRunner

from extract_factory import HEADERS, clean_rows, outcomes_workbook, write_extract
from ptrharmonize.cli import app

runner = CliRunner()
NATIONAL_ID = "110105199003071234"  # never repeated by any message, whatever the case
Rows = dict[str, list[dict[str, str]]]


def ptrh_executable() -> list[str]:
    """The installed `ptrh` console script (the real entry point, not a shim when avoidable)."""
    beside = Path(sys.executable).parent / "ptrh"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("ptrh")
    assert found, "the ptrh console script is not installed (pip install -e .)"
    return [found]


# --------------------------------------------------------------------------- building blocks


def write(rows: Rows, tmp: Path) -> Path:
    return write_extract(tmp / "sub", rows)


def with_cells(*edits: tuple[str, int, str, str]) -> Callable[[Path], Path]:
    """A clean extract with cells replaced: (table, data index, column, value)."""

    def build(tmp: Path) -> Path:
        rows = clean_rows()
        for table, idx, col, value in edits:
            rows[table][idx][col] = value
        return write(rows, tmp)

    return build


def with_bytes(table: str, make: Callable[[bytes], bytes], rows: Rows | None = None) -> Callable[[Path], Path]:
    """A clean extract whose `table`.csv bytes are rewritten by `make`."""

    def build(tmp: Path) -> Path:
        sub = write(rows if rows is not None else clean_rows(), tmp)
        f = sub / f"{table}.csv"
        f.write_bytes(make(f.read_bytes()))
        return sub

    return build


def csv_text(table: str, rows: Rows) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=HEADERS[table], lineterminator="\n")
    w.writeheader()
    w.writerows(rows[table])
    return buf.getvalue()


def line_endings(table: str, endings: list[str], edits: tuple[tuple[int, str, str], ...]) -> Callable[[Path], Path]:
    """`table`.csv with its lines ending in `endings` in turn, after cell edits."""

    def build(tmp: Path) -> Path:
        rows = clean_rows()
        for idx, col, value in edits:
            rows[table][idx][col] = value
        sub = write(rows, tmp)
        lines = csv_text(table, rows).split("\n")[:-1]
        (sub / f"{table}.csv").write_bytes("".join(ln + endings[i % len(endings)] for i, ln in enumerate(lines)).encode())
        return sub

    return build


def encoded(table: str, encoding: str, edits: tuple[tuple[int, str, str], ...], bom: bytes = b"") -> Callable[[Path], Path]:
    def build(tmp: Path) -> Path:
        rows = clean_rows()
        for idx, col, value in edits:
            rows[table][idx][col] = value
        sub = write(rows, tmp)
        (sub / f"{table}.csv").write_bytes(bom + csv_text(table, rows).encode(encoding))
        return sub

    return build


def header_only(*tables: str) -> Callable[[Path], Path]:
    def build(tmp: Path) -> Path:
        rows = clean_rows()
        for t in tables or tuple(rows):
            rows[t] = []
        return write(rows, tmp)

    return build


def edit_frame(table: str, fn: Callable[[pl.DataFrame], pl.DataFrame]) -> Callable[[Path], Path]:
    def build(tmp: Path) -> Path:
        sub = write(clean_rows(), tmp)
        f = sub / f"{table}.csv"
        fn(pl.read_csv(f, infer_schema=False)).write_csv(f)
        return sub

    return build


def identity_mapping(folder: Path, tables: dict[str, dict] | None = None, center: str = "T01") -> Path:
    """A mapping that reads each canonical CSV as a center's own file (column names unchanged)."""
    spec = {t: {"file": f"{t}.csv", "columns": {c: c for c in cols if c != "center_id"}} for t, cols in HEADERS.items()}
    spec.update(tables or {})
    path = folder.parent / "mapping.yaml"
    path.write_text(yaml.safe_dump({"center_id": center, "tables": spec}, sort_keys=False, allow_unicode=True),
                    encoding="utf-8")
    return path


# --------------------------------------------------------------------------- the cases


@dataclass
class Case:
    id: str
    build: Callable[[Path], Path | tuple[Path, list[str]]]
    exit: int
    says: tuple[str, ...] = ()  # in the output of both commands (exit 2) or of ingest (exit 1)
    issues: tuple[tuple[str, str, int | None, str | None], ...] = ()  # (rule_id, file, row, column)
    only: bool = False  # the issues above are all the issues there are
    check: Callable[[dict, Path], None] | None = None  # more assertions on the JSON result
    ingest_exit: int | None = None  # when ingest ends differently from validate
    store_check: Callable[[Path], None] | None = None  # after an ingest that stores (exit 0)
    secrets: tuple[str, ...] = (NATIONAL_ID,)
    max_output: int = 300_000
    tags: set[str] = field(default_factory=set)


def b_random(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


def b_zip(_: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("xl/workbook.xml", "<workbook/>")
    return buf.getvalue()


def big_value(n: int) -> str:
    return "9" * n


def duplicated_value(b: bytes) -> bytes:
    """The labs header with `value` twice (and a cell for it on every row)."""
    lines = b.decode().splitlines()
    return ("\n".join([lines[0] + ",value"] + [ln + ",1" for ln in lines[1:]]) + "\n").encode()


def ragged(_: bytes) -> bytes:
    rows = clean_rows()
    text = csv_text("labs", rows).split("\n")
    text[5] += f",{NATIONAL_ID},more"  # data row 5 of the file: line 6
    return "\n".join(text).encode()


def unclosed_quote(_: bytes) -> bytes:
    text = csv_text("outcomes", clean_rows()).split("\n")
    text[3] = text[3].replace(",CR,", ',"CR,', 1)  # line 4
    return "\n".join(text).encode()


def symlink_outside(tmp: Path) -> Path:
    sub = write(clean_rows(), tmp)
    outside = tmp / "elsewhere"
    outside.mkdir()
    (sub / "labs.csv").rename(outside / "labs.csv")
    os.symlink(outside / "labs.csv", sub / "labs.csv")
    return sub


def not_a_folder(tmp: Path) -> Path:
    sub = write(clean_rows(), tmp)
    return sub / "patients.csv"


def missing_folder(tmp: Path) -> Path:
    return tmp / "no-such-submission"


FORMULAS = ['=HYPERLINK("http://x","y")', "+cmd", "@SUM(1)", "=1+1", "-2+3|cmd"]


def formulas_csv(tmp: Path) -> Path:
    rows = clean_rows()
    for i, f in enumerate(FORMULAS):
        rows["outcomes"][i]["response"] = f
        rows["outcomes"][i]["death_cause"] = f
    rows["labs"][0]["value"] = "=1+1"
    return write(rows, tmp)


def check_formulas_neutralized(out: dict, tmp: Path) -> None:
    bad = {i["value"] for i in out["issues"] if i["rule_id"] in ("outcomes.response.codes", "labs.value.type")}
    assert set(FORMULAS) | {"=1+1"} <= bad  # the JSON keeps the text as written: it is data
    exported = (tmp / "issues.csv").read_text(encoding="utf-8")
    cells = [c for r in csv.reader(io.StringIO(exported)) for c in r]
    for f in FORMULAS:
        assert f not in cells and "'" + f in cells, f
    assert not [c for c in cells if c[:1] in ("=", "+", "@") or (c[:1] == "-" and not _number(c))]


def check_formulas_xlsx(store: Path) -> None:
    """The issue list written by `ingest --output issues.xlsx`: no cell is a formula."""
    ws = openpyxl.load_workbook(store.parent / "issues.xlsx")["issues"]  # after the summary sheet
    values = [c for row in ws.iter_rows() for c in row]
    assert values
    for c in values:
        assert c.data_type != "f", c.value
        if isinstance(c.value, str):
            assert not c.value.startswith(("=", "+", "@")), c.value
    texts = {c.value for c in values}
    assert {"'" + f for f in FORMULAS} <= texts


def _number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def formulas_excel(tmp: Path) -> tuple[Path, list[str]]:
    """The outcomes of a center as an Excel workbook with real formula cells."""
    rows = clean_rows()
    sub = write(rows, tmp)
    (sub / "outcomes.csv").unlink()
    wb = outcomes_workbook(rows)
    ws = wb.active
    ws["E2"] = '=HYPERLINK("http://x","y")'  # death_cause, row 2: a formula in a text column
    ws["C3"] = '=HYPERLINK("http://x","y")'  # response, row 3
    ws["C4"] = "+cmd"
    ws["C5"] = "@SUM(1)"
    ws["C6"] = "=1+1"
    wb.save(sub / "outcomes.xlsx")
    cols = {c: c for c in HEADERS["outcomes"] if c != "center_id"}
    m = identity_mapping(sub, {"outcomes": {"file": "outcomes.xlsx", "format": "excel", "columns": cols}})
    return sub, ["--mapping", str(m)]


def check_excel_formulas_kept_as_text(out: dict, tmp: Path) -> None:
    from ptrharmonize.mapping import apply_mapping

    got = {(i["row"], i["value"]) for i in out["issues"] if i["rule_id"] == "outcomes.response.codes"}
    assert got == {(3, '=HYPERLINK("http://x","y")'), (4, "+cmd"), (5, "@SUM(1)"), (6, "=1+1")}
    # Never evaluated: the cell holds the formula's text, not its result ('y', 2).
    sub = apply_mapping(tmp / "mapping.yaml", tmp / "sub").tables["outcomes"]
    assert sub.filter(pl.col("_row") == 2)["death_cause"].item() == '=HYPERLINK("http://x","y")'
    exported = (tmp / "issues.csv").read_text(encoding="utf-8")
    assert "'=HYPERLINK" in exported and ',=HYPERLINK' not in exported and '"=HYPERLINK' not in exported


def check_control_xlsx(store: Path) -> None:
    ws = openpyxl.load_workbook(store.parent / "issues.xlsx")["issues"]  # after the summary sheet
    assert "12\\x1b[31m\\x07" in {c.value for row in ws.iter_rows() for c in row}


def mapping_case(file_value: str | Callable[[Path], str]) -> Callable[[Path], tuple[Path, list[str]]]:
    """A mapping whose patients block names `file_value` (a path that leaves the folder)."""

    def build(tmp: Path) -> tuple[Path, list[str]]:
        sub = write(clean_rows(), tmp)
        (tmp / "x.csv").write_text(csv_text("patients", clean_rows()), encoding="utf-8")
        target = file_value(tmp) if callable(file_value) else file_value
        cols = {c: c for c in HEADERS["patients"] if c != "center_id"}
        m = identity_mapping(sub, {"patients": {"file": target, "columns": cols}})
        return sub, ["--mapping", str(m)]

    return build


def link_out(tmp: Path) -> str:
    os.symlink(tmp / "x.csv", tmp / "sub" / "linked.csv")
    return "linked.csv"


SQL_NAME = 'x"; DROP TABLE patients; --'
SQL_CENTER = "T09'); DROP TABLE patients; --"


def sql_column_mapping(tmp: Path) -> tuple[Path, list[str]]:
    """The center's patient code column is called `x"; DROP TABLE patients; --` (and so is a
    column of its labs file); the mapping names it. Center T02, so T01 must stay untouched."""
    rows = clean_rows("T02")
    sub = write(rows, tmp)
    for t in ("patients", "labs"):
        f = sub / f"{t}.csv"
        quoted = '"' + SQL_NAME.replace('"', '""') + '"'  # as a spreadsheet writes it
        f.write_text(f.read_text(encoding="utf-8").replace("patient_id", quoted, 1), encoding="utf-8")
    tables = {}
    for t in ("patients", "labs"):
        cols = {c: c for c in HEADERS[t] if c != "center_id"}
        cols["patient_id"] = SQL_NAME
        tables[t] = {"file": f"{t}.csv", "columns": cols}
    m = identity_mapping(sub, tables, center="T02")
    return sub, ["--mapping", str(m)]


def check_sql_column_stored(store: Path) -> None:
    con = duckdb.connect(str(store), read_only=True)
    try:
        got = dict(con.execute("SELECT center_id, count(*) FROM patients GROUP BY 1").fetchall())
        assert got == {"T01": 6, "T02": 6}
        assert con.execute("SELECT count(*) FROM labs WHERE center_id = 'T01'").fetchall()[0][0] == 50
        ids = {r[0] for r in con.execute("SELECT patient_id FROM labs WHERE center_id = 'T02'").fetchall()}
        assert ids == {f"P00{i}" for i in range(1, 7)}
    finally:
        con.close()


def sql_table_mapping(tmp: Path) -> tuple[Path, list[str]]:
    sub = write(clean_rows(), tmp)
    cols = {c: c for c in HEADERS["patients"] if c != "center_id"}
    m = identity_mapping(sub, {"patients; DROP TABLE patients; --": {"file": "patients.csv", "columns": cols}})
    return sub, ["--mapping", str(m)]


def dup_column_mapping(tmp: Path) -> tuple[Path, list[str]]:
    sub = write(clean_rows(), tmp)
    f = sub / "labs.csv"
    lines = f.read_text(encoding="utf-8").splitlines()
    f.write_text("\n".join([lines[0] + ",value"] + [ln + ",1" for ln in lines[1:]]) + "\n", encoding="utf-8")
    return sub, ["--mapping", str(identity_mapping(sub))]


def bad_yaml_mapping(tmp: Path) -> tuple[Path, list[str]]:
    sub = write(clean_rows(), tmp)
    m = tmp / "mapping.yaml"
    m.write_bytes(b_random(2000, 5))
    return sub, ["--mapping", str(m)]


def sql_center_value(tmp: Path) -> Path:
    rows = clean_rows(SQL_CENTER)
    return write(rows, tmp)


def garbage_store(tmp: Path) -> tuple[Path, list[str]]:
    """A clean submission; the store named is not a DuckDB file (checked by ingest only)."""
    return write(clean_rows(), tmp), []


def check_truncated(out: dict, tmp: Path) -> None:
    (issue,) = [i for i in out["issues"] if i["rule_id"] == "labs.value.type"]
    assert len(issue["value"]) <= 201 and issue["value"].endswith("…")
    assert (tmp / "issues.csv").stat().st_size < 5_000


def check_wrong_type(out: dict, tmp: Path) -> None:
    # A column wrong throughout is one column-level issue with its count (validate/collapse.py)
    (issue,) = [i for i in out["issues"] if i["rule_id"] == "labs.value.type"]
    assert issue["row"] is None and "in all 84 rows" in issue["message"] and "rows 2, 3, 4" in issue["message"]
    rule = next(r for r in out["rules"] if r["rule_id"] == "labs.value.type")
    assert (rule["failed"], rule["checked"], rule["status"]) == (84, 84, "failed")


def check_t01_replaced(store: Path) -> None:
    con = duckdb.connect(str(store), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM labs WHERE center_id = 'T01'").fetchall()[0][0] == 84
        active = con.execute("SELECT count(*) FROM submissions WHERE center_id = 'T01' AND status = 'active'")
        assert active.fetchall()[0][0] == 1
    finally:
        con.close()


def check_sql_header_literal(out: dict, tmp: Path) -> None:
    (issue,) = [i for i in out["issues"] if i["rule_id"] == "labs.unknown_column"]
    assert issue["column"] == SQL_NAME and issue["value"] == SQL_NAME


CASES: list[Case] = [
    # -- files that are not tables
    Case("empty_file", with_bytes("labs", lambda b: b""), 2, ("labs.csv", "empty")),
    Case("blank_lines_only", with_bytes("labs", lambda b: b"  \r\n\n \t\n"), 2, ("labs.csv", "empty")),
    Case("header_only_required_table", header_only("patients"), 2,
         ("patients.csv, row 1", "header but no data rows")),
    Case("header_only_every_table", header_only(), 2, ("patients.csv, row 1", "no data rows")),
    Case("binary_garbage", with_bytes("labs", lambda b: b_random(8192, 1)), 2, ("labs.csv", "not a CSV text file")),
    Case("zip_named_csv", with_bytes("labs", b_zip), 2, ("labs.csv", "zip archive")),
    Case("high_bytes_garbage", with_bytes("labs", lambda b: b + bytes(range(128, 256)) * 4), 2,
         ("labs.csv, row 86", "cannot be decoded as utf-8")),
    Case("nul_byte_in_text", with_bytes("labs", lambda b: b[:300] + b"\x00" + b[300:]), 2,
         ("labs.csv", "binary data")),
    # -- encodings and line endings
    Case("gbk_in_utf8_extract", encoded("outcomes", "gbk", ((2, "death_cause", "死于感染"),)), 2,
         ("outcomes.csv, row 4", "cannot be decoded as utf-8", "gbk")),
    Case("cp1252_in_utf8_extract", encoded("treatments", "cp1252", ((1, "regimen", "Protokoll Müller"),)), 2,
         ("treatments.csv, row 3", "cannot be decoded as utf-8", "latin-1")),
    Case("utf16_with_bom", encoded("labs", "utf-16", ((7, "value", "abc"),)), 1,
         ("labs.csv, row 9, column value",), (("labs.value.type", "labs.csv", 9, "value"),), only=True),
    Case("utf8_bom", encoded("labs", "utf-8", ((3, "value", "abc"),), bom=codecs.BOM_UTF8), 1,
         ("labs.csv, row 5, column value",), (("labs.value.type", "labs.csv", 5, "value"),), only=True),
    Case("mixed_line_endings", line_endings("labs", ["\r\n", "\n", "\r"], ((10, "value", "abc"),)), 1,
         ("labs.csv, row 12, column value",), (("labs.value.type", "labs.csv", 12, "value"),), only=True),
    Case("cr_only_line_endings", line_endings("labs", ["\r"], ((40, "value", "abc"),)), 1,
         ("labs.csv, row 42, column value",), (("labs.value.type", "labs.csv", 42, "value"),), only=True),
    # -- structure
    Case("missing_required_table", lambda tmp: _unlink(write(clean_rows(), tmp), "patients.csv"), 1,
         ("patients.csv", "patients.missing_table"), (("patients.missing_table", "patients.csv", None, None),)),
    Case("missing_required_column", edit_frame("labs", lambda df: df.drop("value")), 1,
         ("labs.csv, row 1, column value",), (("labs.missing_column", "labs.csv", 1, "value"),), only=True),
    Case("duplicated_column", with_bytes("labs", duplicated_value), 2,
         ("labs.csv, row 1, column 'value'", "appears 2 times")),
    Case("ragged_row", with_bytes("labs", ragged), 2, ("labs.csv, row 6", "9 fields but the header has 7")),
    Case("unclosed_quote", with_bytes("outcomes", unclosed_quote), 2, ("outcomes.csv, row 4", "never closed")),
    # -- values
    Case("wrong_type_throughout", edit_frame("labs", lambda df: df.with_columns(value=pl.lit("high"))), 1,
         ("labs.csv", "in all 84 rows"), check=check_wrong_type),
    Case("one_mb_in_a_text_cell", with_cells(("outcomes", 2, "death_cause", "x" * (1 << 20))), 2,
         ("outcomes.csv, row 4, column 'death_cause'", "1,048,576 characters"), max_output=2_000),
    Case("one_mb_in_a_number_cell", with_cells(("labs", 40, "value", big_value(1 << 20))), 2,
         ("labs.csv, row 42, column 'value'", "1,048,576 characters"), max_output=2_000),
    Case("long_cell_value_truncated", with_cells(("labs", 5, "value", big_value(30_000))), 1,
         ("labs.csv, row 7, column value",), (("labs.value.type", "labs.csv", 7, "value"),), only=True,
         check=check_truncated, max_output=60_000),
    Case("date_in_year_20219", with_cells(("outcomes", 2, "last_followup_on", "20219-06-01")), 1,
         ("outcomes.csv, row 4, column last_followup_on",),
         (("outcomes.last_followup_on.type", "outcomes.csv", 4, "last_followup_on"),), only=True),
    Case("timestamp_in_year_20219", with_cells(("transfusions", 5, "transfused_at", "20219-03-09T10:00:00")), 1,
         ("transfusions.csv, row 7, column transfused_at",),
         (("transfusions.transfused_at.type", "transfusions.csv", 7, "transfused_at"),)),
    Case("control_characters_in_a_cell", with_cells(("labs", 3, "value", "12\x1b[31m\x07")), 1,
         ("labs.csv, row 5, column value",), (("labs.value.type", "labs.csv", 5, "value"),), only=True,
         store_check=check_control_xlsx, tags={"xlsx"}),
    # -- formula text
    Case("formula_text_in_csv_cells", formulas_csv, 1, ("outcomes.csv, row 2, column response",),
         (("outcomes.response.codes", "outcomes.csv", 2, "response"), ("labs.value.type", "labs.csv", 2, "value")),
         check=check_formulas_neutralized, store_check=check_formulas_xlsx, tags={"xlsx"}),
    Case("formula_cells_in_excel", formulas_excel, 1, ("outcomes.xlsx, row 3, column response",),
         (("outcomes.response.codes", "outcomes.xlsx", 3, "response"),), check=check_excel_formulas_kept_as_text),
    # -- where the files are
    Case("symlink_out_of_extract", symlink_outside, 2, ("labs.csv", "outside the submission folder")),
    Case("submission_is_a_file", not_a_folder, 2, ("patients.csv", "is a folder with one file per table")),
    Case("submission_missing", missing_folder, 2, ("no-such-submission", "not found")),
    Case("mapping_parent_path", mapping_case("../x.csv"), 2, ("../x.csv", "leaves the submission folder")),
    Case("mapping_absolute_path", mapping_case(lambda tmp: str(tmp / "x.csv")), 2, ("x.csv", "absolute path")),
    Case("mapping_symlink_outside", mapping_case(link_out), 2, ("linked.csv", "outside the submission folder")),
    Case("mapping_binary_garbage", bad_yaml_mapping, 2, ("mapping.yaml",)),
    Case("mapping_duplicated_column", dup_column_mapping, 2, ("labs.csv", "'value'", "more than once")),
    # -- SQL in names and values: data, never code
    Case("sql_in_mapped_column_name", sql_column_mapping, 0, store_check=check_sql_column_stored),
    Case("sql_in_mapping_table_name", sql_table_mapping, 2, ("mapping.yaml", "is not a CDM table")),
    Case("sql_in_extract_header", edit_frame("labs", lambda df: df.with_columns(pl.lit("1").alias(SQL_NAME))), 0,
         check=check_sql_header_literal, store_check=check_t01_replaced),
    # A center id is a code (issue 23): SQL in it is refused before any work, the store untouched.
    Case("sql_in_center_id_values", sql_center_value, 2, ("patients.csv, column 'center_id'", "must be a code")),
    # -- the store
    Case("store_is_not_duckdb", garbage_store, 0, ("cannot open the store",), ingest_exit=2, tags={"garbage_store"}),
]


def _unlink(sub: Path, name: str) -> Path:
    (sub / name).unlink()
    return sub


# --------------------------------------------------------------------------- running them


@pytest.fixture(scope="module")
def base_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding an earlier, clean submission of center T01 (the one most cases send)."""
    d = tmp_path_factory.mktemp("base")
    rows = clean_rows()
    rows["labs"] = rows["labs"][:50]
    store = d / "reg.duckdb"
    res = runner.invoke(app, ["ingest", str(write_extract(d / "old", rows)), "--store", str(store), "--quiet"])
    assert res.exit_code == 0, res.output
    return store


def build_case(case: Case, tmp: Path) -> tuple[Path, list[str]]:
    built = case.build(tmp)
    return built if isinstance(built, tuple) else (built, [])


def assert_clean_output(case: Case, output: str) -> None:
    assert "Traceback" not in output, output[-3000:]
    assert len(output) <= case.max_output, f"{len(output):,} characters of output"
    for s in case.secrets:
        assert s not in output


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_submission(case: Case, tmp_path: Path, base_store: Path) -> None:
    sub, extra = build_case(case, tmp_path)

    # 1. validate --format json
    res = runner.invoke(app, ["validate", str(sub), *extra, "--format", "json", "--output", str(tmp_path / "issues.csv")])
    assert_clean_output(case, res.output)
    assert res.exit_code == case.exit, res.output[-3000:]
    if case.exit == 2:
        err = res.stderr.strip()
        assert err.startswith("error:") and "\n" not in err, err
        for s in case.says:
            assert s in err, (s, err)
    else:
        out = json.loads(res.stdout)
        found = {(i["rule_id"], i["file"], i["row"], i["column"]) for i in out["issues"]}
        for want in case.issues:
            assert want in found, (want, sorted(found)[:20])
        if case.only:
            assert {i["rule_id"] for i in out["issues"]} == {w[0] for w in case.issues}, found
        if case.check:
            case.check(out, tmp_path)

    # 2. ingest into a store holding an older submission
    store = tmp_path / "reg.duckdb"
    if "garbage_store" in case.tags:
        store.write_bytes(b"not a database " + b_random(5000, 3))
        before_bytes = store.read_bytes()
    else:
        shutil.copy(base_store, store)
    before = None if "garbage_store" in case.tags else snapshot(store)
    args = ["ingest", str(sub), *extra, "--store", str(store)]
    if "xlsx" in case.tags:
        args += ["--output", str(tmp_path / "issues.xlsx")]
    res = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert_clean_output(case, res.output)
    expected = case.ingest_exit if case.ingest_exit is not None else case.exit
    assert res.exit_code == expected, res.output[-3000:]
    for s in case.says:
        assert s in res.output, (s, res.output[-3000:])
    if "garbage_store" in case.tags:
        assert store.read_bytes() == before_bytes
    elif expected in (1, 2):
        assert snapshot(store) == before
    if expected == 1:
        assert "was not changed" in res.output
    if case.store_check:
        case.store_check(store)
    if expected == 0:
        con = duckdb.connect(str(store), read_only=True)
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        con.close()
        assert {"patients", "labs", "submissions", "issues"} <= tables  # nothing was dropped


# The same answers from the installed `ptrh` program (its own process, stdout and stderr).
REAL = ["empty_file", "gbk_in_utf8_extract", "unclosed_quote", "one_mb_in_a_text_cell", "mapping_parent_path",
        "formula_text_in_csv_cells", "mixed_line_endings"]


@pytest.mark.parametrize("case_id", REAL)
def test_bad_submission_real_ptrh(case_id: str, tmp_path: Path) -> None:
    case = next(c for c in CASES if c.id == case_id)
    sub, extra = build_case(case, tmp_path)
    proc = subprocess.run([*ptrh_executable(), "validate", str(sub), *extra, "--quiet"],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "200"})
    both = proc.stdout + proc.stderr
    assert_clean_output(case, both)
    assert proc.returncode == case.exit, both[-3000:]
    for s in case.says:
        assert s in both, (s, both[-3000:])


def test_battery_size() -> None:
    """How many bad-input cases the battery holds (printed; `-s` shows it)."""
    n = len(CASES) + 1  # + the ten-million-row case below
    print(f"\nbad-input battery: {n} cases ({len(CASES)} parametrised + 1 at registry scale), "
          f"{len(REAL)} of them also through the installed ptrh program")
    assert len({c.id for c in CASES}) == len(CASES)
    assert n >= 40


# --------------------------------------------------------------------------- registry scale

TEN_MILLION = 10_000_000
BAD_INDEX = 7_654_321  # the bad row's 0-based data index: spreadsheet row BAD_INDEX + 2


@pytest.mark.slow
def test_ten_million_rows_one_bad(tmp_path: Path) -> None:
    """A labs file of ten million rows (~500 MB), one cell bad: found at its exact spreadsheet row."""
    rows = clean_rows()
    rows["labs"] = rows["labs"][:0]
    sub = write_extract(tmp_path / "big", rows)
    t0 = time.perf_counter()
    i = pl.col("i")
    labs = pl.DataFrame({"i": pl.int_range(0, TEN_MILLION, eager=True)}).select(
        center_id=pl.lit("T01"),
        patient_id=pl.format("P00{}", (i % 6) + 1),
        measured_at=(pl.datetime(2019, 3, 1) + pl.duration(seconds=(i % 500_000) * 2))
        .dt.strftime("%Y-%m-%dT%H:%M:%S"),
        analyte=pl.when(i % 2 == 0).then(pl.lit("PLT")).otherwise(pl.lit("IL6")),
        value=pl.when(i == BAD_INDEX).then(pl.lit("12,5")).otherwise(((i % 50) + 10).cast(pl.Utf8)),
        unit=pl.when(i % 2 == 0).then(pl.lit("10^9/L")).otherwise(pl.lit("pg/mL")),
        below_lod=pl.lit("false"),
    )
    labs.write_csv(sub / "labs.csv")
    del labs
    size_mb = (sub / "labs.csv").stat().st_size / 1e6
    t1 = time.perf_counter()
    try:
        proc = subprocess.run([*ptrh_executable(), "validate", str(sub), "--format", "json", "--quiet"],
                              capture_output=True, text=True, timeout=600)
        t2 = time.perf_counter()
        assert "Traceback" not in proc.stderr
        assert proc.returncode == 1, proc.stderr[-2000:]
        out = json.loads(proc.stdout)
    finally:
        shutil.rmtree(sub, ignore_errors=True)
    assert out["summary"]["rows"]["labs"] == TEN_MILLION
    assert [(i["rule_id"], i["file"], i["row"], i["column"], i["value"]) for i in out["issues"]] == [
        ("labs.value.type", "labs.csv", BAD_INDEX + 2, "value", "12,5")
    ]
    print(f"\n10M-row labs file ({size_mb:,.0f} MB) written in {t1 - t0:.1f} s, validated in {t2 - t1:.1f} s; "
          f"the bad cell found at row {BAD_INDEX + 2:,}")
