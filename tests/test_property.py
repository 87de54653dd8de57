"""Property-based tests (hypothesis): malformed rows never crash the engine, and are reported.

Each example takes the clean extract, writes malformed cells into one table (random text,
random unicode, digits of other scripts, impossible dates, empty cells, quotes, delimiters and
line breaks inside cells) and runs `ptrh validate --format json`. The engine must end cleanly
(exit 0 or 1, no traceback), and every cell an independent oracle knows to be malformed must be
reported at its spreadsheet row (the file's physical line) and column: a bad number, timestamp or
boolean as `<table>.<column>.type`, a code outside the list as `.codes`, an empty required cell
as `.required`. A second property adds and removes fields: a row longer than the header ends
with exit 2 naming that row; short rows are read with their missing cells empty.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import tempfile
from datetime import datetime
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from extract_factory import HEADERS, clean_rows, write_extract
from ptrharmonize.cdm import load_catalog
from ptrharmonize.cli import app
from ptrharmonize.validate.parse import FALSE_WORDS, TIMESTAMP_FORMATS, TRUE_WORDS

runner = CliRunner()
CAT = load_catalog()
TABLES = ["labs", "transfusions", "patients", "crs_assessments"]
TYPED = ("integer", "decimal", "timestamp", "date", "boolean", "code")
SETTINGS = settings(max_examples=30, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# --------------------------------------------------------------------------- the oracle

NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
ASCII_SPACE = " \t\r\n"


def blank(s: str) -> bool:
    return s.strip(ASCII_SPACE) == ""


def malformed(value: str, typ: str, codes: tuple[str, ...] | None) -> bool | None:
    """True: certainly malformed; False: certainly fine; None: the oracle does not judge
    (e.g. whitespace that Python strips but the engine may keep). Conservative by design:
    'malformed' is only claimed where no reading of the cell could make it valid."""
    if blank(value):
        return False  # empty: a `required` matter, checked separately
    s = value.strip()  # Python strips at least every character the engine strips
    if s != value.strip(ASCII_SPACE) and not s:
        return None
    if typ in ("integer", "decimal"):
        if not NUMBER.fullmatch(s):
            return True
        x = float(s)
        if not math.isfinite(x):
            return True
        if typ == "integer" and (x != round(x) or abs(x) >= 9e15):
            return True
        return False
    if typ == "boolean":
        return s.lower() not in TRUE_WORDS + FALSE_WORDS
    if typ == "code":
        return s not in (codes or ())
    if typ in ("timestamp", "date"):
        if re.search(r"\.\d{7,}$", s):
            return None  # sub-microsecond digits: Python cannot judge them
        # A date is exactly YYYY-MM-DD; a timestamp one of the accepted formats (or a bare date)
        # with its year in 1900-2200 (so that 20219-03-09 is not read as a year 20219).
        formats = ["%Y-%m-%d"] if typ == "date" else [*[f.replace("%.f", ".%f") for f in TIMESTAMP_FORMATS], "%Y-%m-%d"]
        for f in formats:
            try:
                d = datetime.strptime(s, f)
            except ValueError:
                continue
            if f == "%Y-%m-%d" and len(s) != 10:
                continue
            return typ == "timestamp" and not 1900 <= d.year <= 2200
        return True
    return None


def physical_rows(records: list[list[str]]) -> list[int]:
    """The line each data record starts on, as a text editor shows it (header = line 1):
    a line break inside a quoted cell ('\\r\\n', '\\r' or '\\n') pushes the later rows down."""
    out, line = [], 2
    for rec in records:
        out.append(line)
        line += 1 + sum(len(re.findall(r"\r\n|\r|\n", cell)) for cell in rec)
    return out


def write_table(folder: Path, table: str, header: list[str], records: list[list[str]]) -> None:
    buf = io.StringIO()
    # '\r\n' as the terminator, so that the writer also quotes a cell holding a lone '\r'.
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(header)
    w.writerows(records)
    (folder / f"{table}.csv").write_text(buf.getvalue(), encoding="utf-8", newline="")


def run_validate(folder: Path) -> tuple[int, str, str]:
    res = runner.invoke(app, ["validate", str(folder), "--format", "json"])
    return res.exit_code, res.stdout, res.stderr


# --------------------------------------------------------------------------- strategies

TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=25)
ODD = st.sampled_from([
    "", " ", "  \t", "NA", "n/a", "-", "?", "<5", ">1000", "1,5", "1.2.3", "1e999", "inf", "-inf", "NaN",
    "１２", "١٢", "12 mg", "0x1F", "1_000", "TRUE ", " yes", "Y", "nein", "ja", "31/02/2019", "2019-02-31",
    "2019-13-01T10:00:00", "20219-03-09T10:00:00", "2019-03-05 25:00", "1899-12-31", "2201-01-01",
    "2019-3-5", "2019-03-05T10:00:00Z", "=1+1", '"quoted"', "a,b", "line\nbreak", "cr\ronly", "crlf\r\nx",
    "'", "\\", "\ufeff12", "12\u00a0", "\u200b", "DROP TABLE patients; --", "'); DROP TABLE labs; --",
])
NUMBERS = st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr), st.integers(-10**20, 10**20).map(str),
                    st.from_regex(r"[+-]?\d{0,4}[.,]?\d{0,3}([eE][+-]?\d{1,3})?", fullmatch=True))
DATES = st.one_of(st.datetimes().map(lambda d: d.isoformat()), st.dates().map(str),
                  st.from_regex(r"\d{1,5}-\d{1,2}-\d{1,2}([T ]\d{1,2}:\d{1,2}(:\d{1,2})?)?", fullmatch=True))
VALUES = st.one_of(TEXT, ODD, NUMBERS, DATES)


@st.composite
def malformed_table(draw: st.DrawFn) -> tuple[str, list[list[str]], list[tuple[int, str, str]]]:
    table = draw(st.sampled_from(TABLES))
    rows = clean_rows()[table]
    header = HEADERS[table]
    cols = [c.name for c in CAT.tables[table].columns if c.type in TYPED and c.name in header]
    cells = draw(st.lists(st.tuples(st.integers(0, len(rows) - 1), st.sampled_from(cols), VALUES),
                          min_size=1, max_size=12, unique_by=lambda t: (t[0], t[1])))
    records = [[r[c] for c in header] for r in rows]
    for idx, col, value in cells:
        records[idx][header.index(col)] = value
    return table, records, cells


# --------------------------------------------------------------------------- properties


@SETTINGS
@given(malformed_table())
def test_malformed_cells_are_always_reported(example: tuple[str, list[list[str]], list[tuple[int, str, str]]]) -> None:
    table, records, cells = example
    with tempfile.TemporaryDirectory(prefix="ptrh-prop-") as tmp:
        folder = write_extract(Path(tmp) / "sub", clean_rows())
        write_table(folder, table, HEADERS[table], records)
        code, out, err = run_validate(folder)
    assert "Traceback" not in out + err
    assert code in (0, 1), err  # no cell may stop the check: bad cells are findings
    issues = {(i["rule_id"], i["row"], i["column"]) for i in json.loads(out)["issues"]}
    lines = physical_rows(records)
    expected = []
    for idx, col, value in cells:
        spec = CAT.tables[table].column(col)
        verdict = malformed(value, spec.type, tuple(spec.codes or ()))
        if verdict:
            check = "codes" if spec.type == "code" else "type"
            expected.append((f"{table}.{col}.{check}", lines[idx], col))
        elif blank(value) and spec.required:
            expected.append((f"{table}.{col}.required", lines[idx], col))
    missing = [e for e in expected if e not in issues]
    assert not missing, (missing, [c for c in cells])
    if expected:
        assert code == 1


@st.composite
def ragged_table(draw: st.DrawFn) -> tuple[list[list[str]], list[int]]:
    rows = clean_rows()["labs"][:20]
    header = HEADERS["labs"]
    records = [[r[c] for c in header] for r in rows]
    changed = draw(st.lists(st.integers(0, len(records) - 1), min_size=1, max_size=5, unique=True))
    for idx in changed:
        width = draw(st.integers(1, len(header) + 3).filter(lambda w: w != len(header)))
        rec = records[idx][:width]
        rec += [draw(st.one_of(TEXT, ODD)) for _ in range(width - len(rec))]
        records[idx] = rec
    return records, changed


@settings(max_examples=15, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(ragged_table())
def test_extra_and_missing_fields_end_cleanly(example: tuple[list[list[str]], list[int]]) -> None:
    records, _ = example
    header = HEADERS["labs"]
    with tempfile.TemporaryDirectory(prefix="ptrh-prop-") as tmp:
        folder = write_extract(Path(tmp) / "sub", clean_rows())
        write_table(folder, "labs", header, records)
        code, out, err = run_validate(folder)
    assert "Traceback" not in out + err
    lines = physical_rows(records)
    long_rows = [lines[i] for i, r in enumerate(records) if len(r) > len(header)]
    if long_rows:
        assert code == 2, (code, err, out[-500:])
        assert f"labs.csv, row {long_rows[0]}:" in err and f"the header has {len(header)}" in err, err
        return
    assert code in (0, 1), err
    issues = {(i["rule_id"], i["row"], i["column"]) for i in json.loads(out)["issues"]}
    for i, rec in enumerate(records):
        if all(v == "" for v in rec):
            continue  # an empty line: skipped, as in a spreadsheet
        for j, col in enumerate(header):
            spec = CAT.tables["labs"].column(col)
            if j >= len(rec) and spec.required:
                assert (f"labs.{col}.required", lines[i], col) in issues
