"""Excel reader: one sheet, every cell as text, `_row` the real sheet row number.

python-calamine reads fast. Formulas are never evaluated: calamine would return a formula's
cached result (or nothing, for a workbook written by a program), so when a sheet contains
formulas it is read with openpyxl instead, which gives the formula text (`=D4*2`); that text is
kept as the cell's value and the validation engine reports it as a value that is not data.
openpyxl is also the fallback when calamine cannot open a workbook.

Typed cells become canonical text: numbers with a '.' decimal (integral numbers without
`.0`), dates `YYYY-MM-DD`, date-times `YYYY-MM-DDTHH:MM:SS`, times `HH:MM:SS`, booleans
`true`/`false`. A number in a date column (an Excel serial date the sheet does not format as
a date) stays a number; the mapping converts it (`format: excel_serial`).
"""

from __future__ import annotations

import datetime as dt
import re
import zipfile
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import polars as pl

from . import ReadError, check_cell_lengths, display_name, header_names, require_file

_FORMULA = re.compile(rb"<(?:\w+:)?f[ >/]")
_NS_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_NS_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_NS_PKG = "{http://schemas.openxmlformats.org/package/2006/relationships}"


def cell_text(v: Any) -> str | None:
    """A cell value as canonical text; None for an empty cell."""
    if v is None:
        return None
    if isinstance(v, str):
        return v if v != "" else None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if v != v:  # NaN
            return None
        if v.is_integer() and abs(v) < 1e15:
            return str(int(v))
        return repr(v)
    if isinstance(v, dt.datetime):
        return v.replace(microsecond=0).isoformat() if v.microsecond == 0 else v.isoformat()
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, dt.time):
        return v.isoformat()
    if isinstance(v, dt.timedelta):
        secs = int(v.total_seconds())
        return f"{secs // 3600:02d}:{secs % 3600 // 60:02d}:{secs % 60:02d}"
    return str(v)


def _sheet_xml_paths(zf: zipfile.ZipFile) -> dict[str, str]:
    """Sheet name -> path of its XML part inside an .xlsx archive."""
    wb = ElementTree.fromstring(zf.read("xl/workbook.xml"))
    rels = ElementTree.fromstring(zf.read("xl/_rels/workbook.xml.rels"))
    targets = {r.get("Id"): r.get("Target", "") for r in rels.iter(f"{_NS_PKG}Relationship")}
    out = {}
    for s in wb.iter(f"{_NS_MAIN}sheet"):
        target = targets.get(s.get(f"{_NS_REL}id"), "")
        target = target.lstrip("/")
        if not target.startswith("xl/"):
            target = "xl/" + target
        out[s.get("name", "")] = target
    return out


def sheet_has_formulas(path: Path, sheet: str) -> bool:
    """Whether an .xlsx sheet contains any formula cell (scans its XML, in chunks)."""
    try:
        with zipfile.ZipFile(path) as zf:
            part = _sheet_xml_paths(zf).get(sheet)
            names = [part] if part in zf.namelist() else [n for n in zf.namelist() if n.startswith("xl/worksheets/")]
            for name in names:
                with zf.open(name) as fh:
                    tail = b""
                    while chunk := fh.read(4 * 1024 * 1024):
                        if _FORMULA.search(tail + chunk):
                            return True
                        tail = chunk[-8:]
    except (zipfile.BadZipFile, KeyError, ElementTree.ParseError):
        return True  # let openpyxl try, and report
    return False


# Cell references (`<c r="XFD1048576">`), row numbers (`<row r="7">`) and the sheet's own
# `<dimension ref="A1:XFD1048576"/>`, either quote style. Letters are matched without a length
# bound so that `ZZZZZZ4` (beyond Excel's last column) is seen, and refused, too.
_CELL_REF = re.compile(rb"<(?:\w+:)?c\b[^>]*?\sr=[\"']\$?([A-Za-z]+)\$?([0-9]+)[\"']")
_ROW_REF = re.compile(rb"<(?:\w+:)?row\b[^>]*?\sr=[\"']([0-9]+)[\"']")
_DIMENSION = re.compile(rb"<(?:\w+:)?dimension\b[^>]*?\sref=[\"']([^\"']*)[\"']")
_REF = re.compile(r"\$?([A-Za-z]*)\$?([0-9]*)")


def column_number(letters: str) -> int:
    """`A` -> 1, `XFD` -> 16,384, `ZZZZZZ` -> 321,272,406."""
    n = 0
    for ch in letters.upper():
        n = n * 26 + (ord(ch) - 64)
    return n


def column_letters(n: int) -> str:
    out = ""
    while n > 0:
        n, r = divmod(n - 1, 26)
        out = chr(65 + r) + out
    return out


def sheet_extent(path: Path, sheet: str) -> tuple[int, int]:
    """(last row, last column) of an .xlsx sheet, from its own metadata: the `<dimension>`
    element and every cell and row reference, read from the zip as a stream (never the grid)."""
    max_row = max_col = 0
    with zipfile.ZipFile(path) as zf:
        part = _sheet_xml_paths(zf).get(sheet)
        if part is None or part not in zf.namelist():
            return 0, 0
        with zf.open(part) as fh:
            tail = b""
            while chunk := fh.read(4 * 1024 * 1024):
                buf = tail + chunk
                for m in _DIMENSION.finditer(buf):
                    for ref in m.group(1).decode("ascii", "replace").split(":"):
                        rm = _REF.fullmatch(ref.strip())
                        if rm:
                            max_col = max(max_col, column_number(rm.group(1)) if rm.group(1) else 0)
                            max_row = max(max_row, int(rm.group(2)) if rm.group(2) else 0)
                for m in _CELL_REF.finditer(buf):
                    max_col = max(max_col, column_number(m.group(1).decode("ascii")))
                    max_row = max(max_row, int(m.group(2)))
                for m in _ROW_REF.finditer(buf):
                    max_row = max(max_row, int(m.group(1)))
                # A reference cut by the chunk boundary is seen whole in the next buffer.
                cut = buf.rfind(b"<")
                tail = buf[cut:] if cut >= 0 and len(buf) - cut < 4096 else b""
    return max_row, max_col


def check_sheet_size(path: Path, sheet: str, where: str) -> None:
    """Refuse a sheet whose extent exceeds schemas/limits.yaml, before any reader sizes a grid
    for it (python-calamine aborts the process on `XFD1048576` or `ZZZZZZ4`)."""
    from ..limits import limit

    rows, cols = sheet_extent(path, sheet)
    max_rows, max_cols, max_cells = (int(limit("max_sheet_rows")), int(limit("max_sheet_columns")),
                                     int(limit("max_sheet_cells")))
    if rows <= max_rows and cols <= max_cols and rows * cols <= max_cells:
        return
    last = f"{column_letters(cols)}{rows}"
    raise ReadError(
        where,
        message=f"the sheet's used range reaches cell {last} ({rows:,} rows x {cols:,} columns = {rows * cols:,} "
        f"cells), more than this registry reads (at most {max_rows:,} rows, {max_cols:,} columns and "
        f"{max_cells:,} cells: max_sheet_rows/columns/cells in schemas/limits.yaml or PTRH_MAX_SHEET_CELLS); "
        "delete the stray cells after the data (Ctrl+End shows the last one) and save again",
    )


def xls_formula_cells(path: Path) -> dict[str, tuple[int, int]]:
    """Sheet name -> (row, column), 1-based, of its first formula cell, in an old-format .xls
    (BIFF8): read from the workbook stream's own records (BOUNDSHEET names each sheet's offset,
    FORMULA records are the formula cells), without evaluating or loading the sheets."""
    import struct

    import olefile

    with olefile.OleFileIO(str(path)) as ole:
        name = next((n for n in ("Workbook", "Book") if ole.exists(n)), None)
        if name is None:
            return {}
        data = ole.openstream(name).read()
    sheets: dict[int, str] = {}
    found: dict[str, tuple[int, int]] = {}
    current: str | None = None
    pos = 0
    while pos + 4 <= len(data):
        rid, size = struct.unpack_from("<HH", data, pos)
        body = data[pos + 4: pos + 4 + size]
        if rid == 0x0085 and len(body) >= 8:  # BOUNDSHEET: offset of the sheet's BOF, then its name
            offset, cch, flags = struct.unpack_from("<IxxBB", body, 0)
            raw = body[8: 8 + (cch * 2 if flags & 1 else cch)]
            sheets[offset] = raw.decode("utf-16-le" if flags & 1 else "latin-1", "replace")
        elif rid == 0x0809:  # BOF: a sheet's records start here
            current = sheets.get(pos, current)
        elif rid in (0x0006, 0x0406) and len(body) >= 4 and current is not None and current not in found:
            row, col = struct.unpack_from("<HH", body, 0)
            found[current] = (row + 1, col + 1)
        pos += 4 + size
    return found


def _pick_sheet(names: list[str], sheet: str | int | None, display: str) -> str:
    if sheet is None:
        if not names:
            raise ReadError(display, message="the workbook has no sheets")
        return names[0]
    if isinstance(sheet, int):
        if not 1 <= sheet <= len(names):
            raise ReadError(display, message=f"the workbook has no sheet number {sheet} (it has {len(names)})")
        return names[sheet - 1]
    if sheet in names:
        return sheet
    folded = {n.strip().casefold(): n for n in names}
    if sheet.strip().casefold() in folded:
        return folded[sheet.strip().casefold()]
    raise ReadError(display, message=f"no sheet named '{sheet}'; the sheets are: {', '.join(names)}")


def _rows_calamine(path: Path, sheet: str | int | None, display: str) -> tuple[str, list[list[Any]]]:
    import python_calamine

    wb = python_calamine.CalamineWorkbook.from_path(str(path))
    name = _pick_sheet(list(wb.sheet_names), sheet, display)
    return name, wb.get_sheet_by_name(name).to_python(skip_empty_area=False)


def _rows_openpyxl(path: Path, sheet: str | int | None, display: str) -> tuple[str, list[list[Any]]]:
    import openpyxl

    wb = openpyxl.load_workbook(path, read_only=True, data_only=False)
    try:
        name = _pick_sheet(list(wb.sheetnames), sheet, display)
        ws = wb[name]
        rows = [list(r) for r in ws.iter_rows(min_row=1, values_only=True)]
    finally:
        wb.close()
    return name, rows


def _refuse_xls_formulas(path: Path, sheet: str | int | None, display: str) -> None:
    """An old .xls holds only the last computed result of a formula (python-calamine reads it as
    an empty cell when the workbook was written by a program): a sheet with formula cells is
    refused, naming the first, instead of being read with values that may be stale or missing."""
    try:
        cells = xls_formula_cells(path)
    except Exception:  # noqa: BLE001 - not an OLE workbook: let the reader say so
        return
    if not cells:
        return
    names = list(cells)
    try:
        import python_calamine

        names = list(python_calamine.CalamineWorkbook.from_path(str(path)).sheet_names)
    except Exception:  # noqa: BLE001
        pass
    target = _pick_sheet(names, sheet, display) if names else None
    if target in cells:
        row, col = cells[target]
        raise ReadError(
            f"{display} [{target}]", row=row, column=column_letters(col),
            message="this old-format (.xls) sheet has formula cells, whose values an .xls keeps only as "
            "the last computed result (empty when a program wrote the file); save the sheet as .xlsx, or "
            "paste the values over the formulas, and send it again",
        )


def read_excel(
    path: Path,
    root: Path | None = None,
    *,
    sheet: str | int | None = None,
    header_row: int = 1,
    skip_rows: int = 0,
    skip_rows_after_header: int = 0,
    engine: str | None = None,
) -> pl.DataFrame:
    """Read one sheet (by name, or 1-based number; default the first) as text columns.

    `header_row` is the sheet row holding the column names; data starts below it (after
    `skip_rows_after_header` more rows). `_row` is the sheet row number Excel shows."""
    path = Path(path)
    display = display_name(path, root)
    require_file(path, display)
    if skip_rows:
        header_row = skip_rows + 1
    is_xlsx = path.suffix.lower() in (".xlsx", ".xlsm")
    if engine is None:
        engine = "calamine"
        if is_xlsx:
            try:
                with zipfile.ZipFile(path) as zf:
                    names = list(_sheet_xml_paths(zf))
                target = _pick_sheet(names, sheet, display)
                check_sheet_size(path, target, f"{display} [{target}]")
                if sheet_has_formulas(path, target):
                    engine = "openpyxl"
            except (zipfile.BadZipFile, KeyError, ElementTree.ParseError):
                raise ReadError(display, message="not a readable Excel workbook (the .xlsx archive is damaged)") from None
    if path.suffix.lower() == ".xls":
        _refuse_xls_formulas(path, sheet, display)
    try:
        if engine == "openpyxl":
            name, rows = _rows_openpyxl(path, sheet, display)
        else:
            try:
                name, rows = _rows_calamine(path, sheet, display)
            except ReadError:
                raise
            except Exception:  # noqa: BLE001 - calamine failed: try openpyxl before giving up
                if not is_xlsx:
                    raise
                name, rows = _rows_openpyxl(path, sheet, display)
    except ReadError:
        raise
    except Exception as exc:  # noqa: BLE001 - any library failure is "cannot read this workbook"
        raise ReadError(display, message=f"not a readable Excel workbook ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None

    where = f"{display} [{name}]"
    if len(rows) < header_row:
        raise ReadError(where, row=header_row, message=f"the sheet is empty (no header on row {header_row})")
    header_cells = [cell_text(v) for v in rows[header_row - 1]]
    data = rows[header_row + skip_rows_after_header :]
    width = max([len(header_cells), *(len(r) for r in data)]) if data else len(header_cells)
    # Drop trailing columns that have neither a name nor any value.
    while width > 0:
        i = width - 1
        named = i < len(header_cells) and header_cells[i] is not None
        used = any(i < len(r) and cell_text(r[i]) is not None for r in data)
        if named or used:
            break
        width -= 1
    if width == 0:
        raise ReadError(where, row=header_row, message=f"the sheet is empty (no header on row {header_row})")
    names = header_names(header_cells[i] if i < len(header_cells) else None for i in range(width))

    for reserved in ("_file", "_row"):
        if reserved in names:
            raise ReadError(where, row=header_row, column=reserved, message="a column may not be named _file or _row (reserved)")
    first = header_row + skip_rows_after_header + 1
    columns: list[list[str | None]] = [[] for _ in range(width)]
    row_numbers: list[int] = []
    for offset, r in enumerate(data):
        texts = [cell_text(r[i]) if i < len(r) else None for i in range(width)]
        if all(t is None for t in texts):
            continue
        for i, t in enumerate(texts):
            columns[i].append(t)
        row_numbers.append(first + offset)
    frame = {
        n: pl.Series(n, col, dtype=pl.Utf8)
        for i, (n, col) in enumerate(zip(names, columns, strict=True))
        # A column with neither a name nor any value (e.g. an empty column A) is not data.
        if (i < len(header_cells) and header_cells[i] is not None) or any(t is not None for t in col)
    }
    frame["_file"] = pl.Series("_file", [display] * len(row_numbers), dtype=pl.Utf8)
    frame["_row"] = pl.Series("_row", row_numbers, dtype=pl.Int64)
    df = pl.DataFrame(frame)
    check_cell_lengths(df, where)
    return df
