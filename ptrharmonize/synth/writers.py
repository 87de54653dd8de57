"""Write a center's parts as its files: CSV (its encoding, delimiter), one Excel workbook
(a sheet per block, header on the declared row), SPSS (value labels), or Parquet."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import polars as pl

from .render import Written

_NUM = re.compile(r"^-?\d+(\.\d+)?$")


def write_csv(w: Written, path: Path) -> None:
    opts = w.part.block.reader_options
    encoding = str(opts.get("encoding") or "utf-8")
    delimiter = str(opts.get("delimiter") or ",").replace("\\t", "\t")
    text = w.frame.select(pl.all().cast(pl.Utf8)).write_csv(
        separator=delimiter, quote_style="necessary", line_terminator="\r\n" if encoding.lower() not in ("utf-8", "utf8") else "\n")
    header_row = int(opts.get("header_row") or int(opts.get("skip_rows") or 0) + 1)
    lines = text.splitlines(keepends=True)
    after = int(opts.get("skip_rows_after_header") or 0)
    nl = "\r\n" if "\r\n" in text else "\n"
    text = nl * (header_row - 1) + "".join(lines[:1]) + nl * after + "".join(lines[1:])
    path.write_bytes(text.encode(encoding))


def _excel_cell(v: Any, numeric_text: bool) -> Any:
    if numeric_text and isinstance(v, str) and _NUM.match(v):
        f = float(v)
        return int(f) if f.is_integer() and "." not in v else f
    return v


def write_excel(items: list[Written], path: Path, title: str) -> None:
    import openpyxl

    wb = openpyxl.Workbook(write_only=True)
    for w in items:
        opts = w.part.block.reader_options
        sheet = opts.get("sheet")
        ws = wb.create_sheet(str(sheet) if sheet is not None and not isinstance(sheet, int) else w.part.table)
        header_row = int(opts.get("header_row") or int(opts.get("skip_rows") or 0) + 1)
        for row in range(1, header_row):
            ws.append([title if row == 1 else None])
        ws.append(list(w.frame.columns))
        for _ in range(int(opts.get("skip_rows_after_header") or 0)):
            ws.append([None])
        flags = [c in w.numeric_text for c in w.frame.columns]
        for rec in w.frame.iter_rows():
            ws.append([_excel_cell(v, f) for v, f in zip(rec, flags, strict=True)])
    wb.save(path)


def write_spss(w: Written, path: Path) -> None:
    import pyreadstat

    frame = w.frame
    labels: dict[str, dict[float, str]] = {}
    exprs = []
    for name, (false, true) in w.booleans.items():
        labels[name] = {0.0: false, 1.0: true}
        exprs.append(pl.col(name).replace_strict({false: 0.0, true: 1.0}, default=None, return_dtype=pl.Float64))
    for name, texts in w.labels.items():
        labels[name] = {float(i + 1): t for i, t in enumerate(texts)}
        exprs.append(pl.col(name).replace_strict({t: float(i + 1) for i, t in enumerate(texts)}, default=None,
                                                 return_dtype=pl.Float64))
    if exprs:
        frame = frame.with_columns(exprs)
    pyreadstat.write_sav(frame, str(path), variable_value_labels=labels)


def write_parquet(w: Written, path: Path) -> None:
    w.frame.write_parquet(path)


def write_center(items: list[Written], folder: Path, title: str) -> list[Path]:
    """Every part into its file (parts of one workbook share it); returns the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    books: dict[str, list[Written]] = {}
    written = []
    for w in items:
        path = folder / w.part.block.file
        path.parent.mkdir(parents=True, exist_ok=True)
        kind = w.part.kind
        if kind in ("excel", "redcap"):  # parts that share one file
            books.setdefault(w.part.block.file, []).append(w)
            continue
        {"csv": write_csv, "spss": write_spss, "parquet": write_parquet}[kind](w, path)
        written.append(path)
    for file, ws in books.items():
        if ws[0].part.kind == "redcap":
            from .redcap import write_redcap

            written += write_redcap(ws, folder)
            continue
        write_excel(ws, folder / file, title)
        written.append(folder / file)
    return written
