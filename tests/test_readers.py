"""Readers: every format gives text (or typed) columns plus `_file` and `_row` as a person
counts rows in the file; problems that stop a read raise ReadError with a clear message."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import openpyxl
import polars as pl
import pyreadstat
import pytest

from ptrharmonize.read import ReadError, read_source
from ptrharmonize.read import encoding as enc
from ptrharmonize.read.canonical import read_canonical
from ptrharmonize.read.csv import read_csv
from ptrharmonize.read.excel import read_excel
from ptrharmonize.read.parquet import read_parquet
from ptrharmonize.read.spss import read_spss


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


# --------------------------------------------------------------------------------- CSV


def test_csv_rows_are_file_lines(tmp_path: Path) -> None:
    # A quoted cell spanning two lines, a blank line and an all-empty row: the rows after
    # them keep the numbers a text editor shows.
    p = _write(tmp_path / "a.csv", 'id,note,n\nP1,"two\nlines",1\n\nP2,,2\n,,\nP3,"x",3\n')
    df = read_csv(p, tmp_path)
    assert df.columns == ["id", "note", "n", "_file", "_row"]
    assert df["id"].to_list() == ["P1", "P2", "P3"]
    assert df["_row"].to_list() == [2, 5, 7]
    assert df["_file"].unique().to_list() == ["a.csv"]
    assert df.schema["_row"] == pl.Int64
    assert all(df.schema[c] == pl.Utf8 for c in ("id", "note", "n"))
    assert df["note"].to_list() == ["two\nlines", None, "x"]


def test_csv_header_row_and_units_line(tmp_path: Path) -> None:
    p = _write(tmp_path / "b.csv", "Export of 2024-01-01\nsecond preamble line\nid;plt\n;x10^9/L\nP1;12\nP2;15\n")
    df = read_csv(p, tmp_path, header_row=3, skip_rows_after_header=1)
    assert df["id"].to_list() == ["P1", "P2"]
    assert df["_row"].to_list() == [5, 6]
    same = read_csv(p, tmp_path, skip_rows=2, skip_rows_after_header=1)
    assert same.equals(df)


def test_csv_sniffs_semicolon_and_keeps_decimal_comma_text(tmp_path: Path) -> None:
    p = _write(tmp_path / "c.csv", 'id;weight;remark\nP1;70,5;"a; b"\nP2;60,25;\n')
    df = read_csv(p, tmp_path)
    assert df.columns[:3] == ["id", "weight", "remark"]
    assert df["weight"].to_list() == ["70,5", "60,25"]  # the mapping reads decimal commas
    assert df["remark"].to_list() == ["a; b", None]


@pytest.mark.parametrize(
    ("encoding", "declared"),
    [("gbk", "gbk"), ("gbk", None), ("latin-1", "latin-1"), ("latin-1", None), ("utf-8-sig", None), ("utf-8-sig", "utf-8"), ("utf-8", None)],
)
def test_csv_encodings(tmp_path: Path, encoding: str, declared: str | None) -> None:
    if encoding == "gbk":
        text = "住院号,性别,血小板(×10^9/L)\nHZ001,男,<1.5\nHZ002,女,12\n"
        expect = [["HZ001", "男", "<1.5"], ["HZ002", "女", "12"]]
    else:
        text = "Patiënt;Geslacht;Temp (°C);Dosis (µg)\nP1;männlich;38,5;1,5\nP2;weiblich;37,0;2\n"
        expect = [["P1", "männlich", "38,5", "1,5"], ["P2", "weiblich", "37,0", "2"]]
    p = _write(tmp_path / "e.csv", text, encoding)
    df = read_csv(p, tmp_path, encoding=declared)
    header = text.splitlines()[0].split("," if encoding == "gbk" else ";")
    assert df.columns[:-2] == header
    assert [list(r[:-2]) for r in df.iter_rows()] == expect
    assert df["_row"].to_list() == [2, 3]


def test_csv_transcodes_in_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Tiny chunks split two-byte GBK characters across reads: the incremental decoder must
    # join them, and a bad byte must still be reported on its line.
    monkeypatch.setattr(enc, "CHUNK", 7)
    rows = [f"P{i},男性患者{i},{i}.5" for i in range(50)]
    p = _write(tmp_path / "g.csv", "id,名称,值\n" + "\n".join(rows) + "\n", "gbk")
    df = read_csv(p, tmp_path, encoding="gbk")
    assert df.height == 50
    assert df["名称"][49] == "男性患者49"
    assert df["_row"][49] == 51
    bad = tmp_path / "bad.csv"
    bad.write_bytes("id,名称\nP1,男\nP2,".encode("gbk") + b"\xff\xff" + b"\n")
    with pytest.raises(ReadError) as err:
        read_csv(bad, tmp_path, encoding="gbk")
    assert err.value.row == 3 and "gbk" in err.value.message


def test_csv_undecodable_utf8_names_the_line(tmp_path: Path) -> None:
    p = tmp_path / "u.csv"
    p.write_bytes(b"id,name\nP1,ok\nP2,caf\xe9\n")
    with pytest.raises(ReadError) as err:
        read_csv(p, tmp_path, encoding="utf-8")
    assert err.value.file == "u.csv"
    assert err.value.row == 3
    assert "encoding" in str(err.value)


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"", "empty"),
        (b"  \r\n\r\n", "empty"),
        (b"PK\x03\x04rest-of-a-zip", "Excel"),
        (b"PAR1....", "Parquet"),
        (b"id,x\x00\x01\x02binary", "binary"),
    ],
)
def test_csv_not_readable(tmp_path: Path, content: bytes, needle: str) -> None:
    p = tmp_path / "x.csv"
    p.write_bytes(content)
    with pytest.raises(ReadError) as err:
        read_csv(p, tmp_path)
    assert needle in str(err.value)


def test_csv_missing_file_and_ragged_row(tmp_path: Path) -> None:
    with pytest.raises(ReadError, match="file not found"):
        read_csv(tmp_path / "nope.csv", tmp_path)
    p = _write(tmp_path / "r.csv", "a,b\n1,2\n3,4,5\n")
    with pytest.raises(ReadError) as err:
        read_csv(p, tmp_path)
    assert err.value.row == 3 and "3 fields" in err.value.message


def test_csv_duplicate_and_blank_headers(tmp_path: Path) -> None:
    p = _write(tmp_path / "d.csv", "Datum,Datum, ,x\n1,2,3,4\n")
    assert read_csv(p, tmp_path).columns == ["Datum", "Datum.1", "column_3", "x", "_file", "_row"]


def test_excel_and_mapping_name_a_header_as_the_csv_reader_does(tmp_path: Path) -> None:
    """One naming for every reader (read.header_names): the same header row as a sheet gives the
    CSV's names, and so does the mapping's header-only look at the sheet."""
    from ptrharmonize.mapping.readers import _header_only

    wb = openpyxl.Workbook()
    wb.active.append(["Datum", "Datum", None, "x", "Datum"])
    wb.active.append([1, 2, 3, 4, 5])
    wb.save(tmp_path / "d.xlsx")
    want = ["Datum", "Datum.1", "column_3", "x", "Datum.2"]
    assert read_excel(tmp_path / "d.xlsx", tmp_path).columns == [*want, "_file", "_row"]
    assert _header_only(tmp_path / "d.xlsx", tmp_path, {}) == want


def test_file_names_relative_to_submission(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    p = _write(tmp_path / "sub" / "a.csv", "a\n1\n")
    assert read_source(p, tmp_path)["_file"][0] == "sub/a.csv"


# --------------------------------------------------------------------------------- Excel


def _workbook(path: Path, formulas: bool) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Labs"
    ws["A1"] = "Registry export"
    ws.append([])
    ws.append(["MRN", "Collected", "PLT", "Note", "Flag"])  # header on row 3
    ws.append(["B1", dt.datetime(2019, 3, 4, 8, 30), 15000, "=C4/1000" if formulas else "text", True])
    ws.append(["B2", dt.date(2019, 3, 5), 2.5, None, False])
    ws.append([])  # an empty row 6
    ws.append(["B3", None, 1.25e-7, "'quoted", None])
    other = wb.create_sheet("Other")
    other.append(["x"])
    other.append([1])
    wb.save(path)
    return path


@pytest.mark.parametrize("formulas", [False, True])
def test_excel_sheet_rows_and_text(tmp_path: Path, formulas: bool) -> None:
    p = _workbook(tmp_path / "w.xlsx", formulas)
    df = read_excel(p, tmp_path, sheet="Labs", header_row=3)
    assert df.columns == ["MRN", "Collected", "PLT", "Note", "Flag", "_file", "_row"]
    assert df["_row"].to_list() == [4, 5, 7]
    assert df["MRN"].to_list() == ["B1", "B2", "B3"]
    assert df["Collected"][0] == "2019-03-04T08:30:00"
    assert df["Collected"][1] in ("2019-03-05", "2019-03-05T00:00:00")
    assert df["PLT"].to_list() == ["15000", "2.5", "1.25e-07"]
    assert df["Flag"].to_list() == ["true", "false", None]
    # A formula is never evaluated: its text is the value, for validation to reject.
    assert df["Note"][0] == ("=C4/1000" if formulas else "text")
    assert df["_file"][0] == "w.xlsx"


def test_excel_sheet_by_number_and_errors(tmp_path: Path) -> None:
    p = _workbook(tmp_path / "w.xlsx", False)
    df = read_excel(p, tmp_path, sheet=2)
    assert df["x"].to_list() == ["1"] and df["_row"].to_list() == [2]
    with pytest.raises(ReadError, match="no sheet named 'Missing'"):
        read_excel(p, tmp_path, sheet="Missing")
    with pytest.raises(ReadError, match="empty"):
        read_excel(p, tmp_path, sheet="Other", header_row=9)
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"PK\x03\x04 not really a workbook")
    with pytest.raises(ReadError, match="Excel"):
        read_excel(broken, tmp_path)


def test_excel_openpyxl_and_calamine_agree(tmp_path: Path) -> None:
    p = _workbook(tmp_path / "w.xlsx", False)
    a = read_excel(p, tmp_path, sheet="Labs", header_row=3, engine="calamine")
    b = read_excel(p, tmp_path, sheet="Labs", header_row=3, engine="openpyxl")
    # Only a date cell's rendering may differ (a date vs a date-time at midnight).
    assert a.drop("Collected").equals(b.drop("Collected"))


# --------------------------------------------------------------------------------- Parquet, SPSS


def test_parquet_rows_are_record_numbers_plus_one(tmp_path: Path) -> None:
    p = tmp_path / "t.parquet"
    pl.DataFrame({"id": ["a", "b", "c"], "n": [1.5, None, 3.0], "d": [dt.date(2019, 1, 1)] * 3}).write_parquet(p)
    df = read_parquet(p, tmp_path)
    assert df["_row"].to_list() == [2, 3, 4]
    assert df.schema["n"] == pl.Float64 and df.schema["d"] == pl.Date
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet")
    with pytest.raises(ReadError, match="Parquet"):
        read_parquet(bad, tmp_path)


def test_spss_value_labels(tmp_path: Path) -> None:
    p = tmp_path / "s.sav"
    df = pl.DataFrame({"codice": ["M1", "M2", "M3"], "sesso": [1.0, 2.0, 3.0], "eta": [34.0, None, 5.0]})
    pyreadstat.write_sav(df, str(p), variable_value_labels={"sesso": {1: "Maschio", 2: "Femmina"}})
    raw = read_spss(p, tmp_path)
    assert raw["sesso"].to_list() == [1.0, 2.0, 3.0]
    assert raw["_row"].to_list() == [2, 3, 4]
    labelled = read_spss(p, tmp_path, value_labels=True)
    assert labelled["sesso"].to_list() == ["Maschio", "Femmina", "3"]  # an unlabelled code stays
    assert labelled["eta"].to_list() == [34.0, None, 5.0]
    only = read_spss(p, tmp_path, value_labels=["sesso"])
    assert only["sesso"][0] == "Maschio"
    bad = tmp_path / "bad.sav"
    bad.write_bytes(b"nope")
    with pytest.raises(ReadError, match="SPSS"):
        read_spss(bad, tmp_path)


# --------------------------------------------------------------------------------- canonical


def test_read_canonical(tmp_path: Path) -> None:
    _write(tmp_path / "patients.csv", "\ufeffcenter_id,patient_id,sex,age_years\nC1,P1,M,34\nC1,P2,F,\n")
    pl.DataFrame({"center_id": ["C1"], "patient_id": ["P1"], "treatment_type": ["car_t"]}).write_parquet(tmp_path / "treatments.parquet")
    _write(tmp_path / "notes.txt", "ignored")
    sub = read_canonical(tmp_path)
    assert set(sub.tables) == {"patients", "treatments"}
    assert sub.center_id == "C1"
    p = sub.tables["patients"]
    assert isinstance(p, pl.DataFrame)
    assert p.columns == ["center_id", "patient_id", "sex", "age_years", "_file", "_row"]
    assert p["age_years"].to_list() == ["34", None]
    assert p["_row"].to_list() == [2, 3]
    assert sub.tables["treatments"]["_row"].to_list() == [2]
    lazy = read_canonical(tmp_path, lazy=True)
    assert isinstance(lazy.tables["patients"], pl.LazyFrame)
    assert lazy.tables["patients"].collect().equals(p)


def test_read_canonical_errors(tmp_path: Path) -> None:
    with pytest.raises(ReadError, match="folder not found"):
        read_canonical(tmp_path / "missing")
    _write(tmp_path / "labs.csv", "a\n1\n")
    pl.DataFrame({"a": [1]}).write_parquet(tmp_path / "labs.parquet")
    with pytest.raises(ReadError, match="one file per table"):
        read_canonical(tmp_path)


def test_scratch_folder_is_one_per_process_even_from_threads(monkeypatch) -> None:
    """Two submissions read in two threads (`ptrh validate A B`) once each created a scratch
    folder; the loser was garbage-collected, deleting the other's transcoded file."""
    import threading

    from ptrharmonize.read import encoding

    monkeypatch.setattr(encoding, "_TMPDIR", None)
    start = threading.Barrier(8)
    seen: list[Path] = []

    def grab() -> None:
        start.wait()
        seen.append(encoding.temp_dir())

    threads = [threading.Thread(target=grab) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(seen)) == 1 and seen[0].is_dir()
