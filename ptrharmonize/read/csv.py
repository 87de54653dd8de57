"""CSV reader: any delimiter, quoting, any declared encoding; every cell read as text.

Row numbers are the file's physical line numbers (what a text editor or a spreadsheet shows):
the header is on `header_row` (default 1), and a quoted cell that spans lines pushes the rows
after it down, exactly as in the file. Blank lines and rows whose cells are all empty are
dropped after numbering, so the numbers of the rows after them stay right.

Decimal commas are a property of numbers, not of the file: the cells stay text here and the
mapping reads `1,5` as 1.5 in the columns it parses as numbers (`decimal: ","`).
"""

from __future__ import annotations

import csv as pycsv
import io
from pathlib import Path

import polars as pl

from . import (
    ReadError,
    cell_length_guard,
    check_cell_lengths,
    display_name,
    header_names,
    require_file,
)
from .encoding import bom_encoding, normalize, scan_text, sniff, transcode_to_utf8

DELIMITERS = [",", ";", "\t", "|"]
SAMPLE_CHARS = 256 * 1024

_MAGIC = [
    (b"PK\x03\x04", "a zip archive (an Excel .xlsx workbook?); declare `format: excel`"),
    (b"\xd0\xcf\x11\xe0", "an old-style Office file (an Excel .xls workbook?); declare `format: excel`"),
    (b"PAR1", "a Parquet file; declare `format: parquet`"),
    (b"$FL2", "an SPSS .sav file; declare `format: spss`"),
    (b"$FL3", "an SPSS .zsav file; declare `format: spss`"),
    (b"%PDF", "a PDF document"),
]


def _check_file(path: Path, display: str) -> bytes:
    require_file(path, display, allow_empty=True)
    with path.open("rb") as fh:
        head = fh.read(64 * 1024)
    if not head.strip(b" \t\r\n\xef\xbb\xbf"):
        raise ReadError(display, message="the file is empty")
    for magic, what in _MAGIC:
        if head.startswith(magic):
            raise ReadError(display, message=f"this is not a CSV text file but {what}")
    if b"\x00" in head and not bom_encoding(head):
        raise ReadError(display, message="this is not a CSV text file (it contains binary data)")
    return head


def _sample_text(path: Path, encoding: str) -> str:
    with path.open("r", encoding=encoding, errors="replace", newline="") as fh:
        return fh.read(SAMPLE_CHARS)


def _split_lines(text: str, n: int) -> str:
    """`text` without its first `n` physical lines."""
    pos = 0
    for _ in range(n):
        nl = text.find("\n", pos)
        if nl < 0:
            return ""
        pos = nl + 1
    return text[pos:]


def sniff_delimiter(sample: str, quote: str = '"') -> str:
    """The delimiter that splits the first records into the most consistent number (> 1) of fields."""
    best = (",", -1, 0)
    for d in DELIMITERS:
        try:
            rows = []
            reader = pycsv.reader(io.StringIO(sample, newline=""), delimiter=d, quotechar=quote)
            for i, r in enumerate(reader):
                if i >= 50:
                    break
                rows.append(len(r))
        except pycsv.Error:
            continue
        # The last sampled record may be cut; ignore it when the sample was cut.
        if len(rows) > 1 and len(sample) >= SAMPLE_CHARS:
            rows = rows[:-1]
        if not rows or rows[0] < 2:
            continue
        consistent = sum(1 for n in rows if n == rows[0])
        score = (consistent, rows[0])
        if score > (best[1], best[2]):
            best = (d, consistent, rows[0])
    return best[0]


def _header(names: list[str]) -> list[str]:
    return header_names(raw.replace("\ufeff", "") for raw in names)


def duplicated_columns(names: list[str]) -> dict[str, list[int]]:
    """Header names written more than once -> their 1-based column numbers."""
    where: dict[str, list[int]] = {}
    for i, raw in enumerate(names):
        name = raw.replace("\ufeff", "").strip()
        if name:
            where.setdefault(name, []).append(i + 1)
    return {n: cols for n, cols in where.items() if len(cols) > 1}


def _diagnose(path: Path, display: str, delimiter: str, quote: str, header_row: int, width: int, first_line: int) -> ReadError:
    """Find the first record whose field count differs from the header's, or a quote that is
    never closed (slow path, on error only). Messages never quote a cell's content."""
    last: tuple[int, list[str]] | None = None
    with path.open("r", encoding="utf-8", newline="") as fh:
        for _ in range(header_row - 1):
            fh.readline()
        reader = pycsv.reader(fh, delimiter=delimiter, quotechar=quote)
        try:
            next(reader)
            prev_end = reader.line_num
            for rec in reader:
                if len(rec) > width:
                    return ReadError(
                        display,
                        row=header_row + prev_end,
                        message=f"this row has {len(rec)} fields but the header has {width}; "
                        f"check the delimiter ('{delimiter}') and the quoting of cells that contain it",
                    )
                last = (header_row + prev_end, rec)
                prev_end = reader.line_num
        except pycsv.Error as exc:
            return ReadError(display, row=header_row + reader.line_num - 1, message=f"not a readable CSV: {exc}")
    if last is not None and any("\n" in f or "\r" in f for f in last[1]):
        # The last record swallowed the lines after it: a quote opened and never closed.
        return ReadError(
            display,
            row=last[0],
            message=f"a cell on this row starts with a quote ({quote}) that is never closed, so every "
            "line after it would be read as part of that cell; close the quote or remove it",
        )
    return ReadError(display, message="not a readable CSV file (check the delimiter, quoting and encoding)")


def read_csv(
    path: Path,
    root: Path | None = None,
    *,
    delimiter: str | None = None,
    encoding: str | None = None,
    quote: str = '"',
    header_row: int = 1,
    skip_rows: int = 0,
    skip_rows_after_header: int = 0,
    comment: str | None = None,
    lazy: bool = False,
    duplicate_columns: str = "rename",
) -> pl.DataFrame | pl.LazyFrame:
    """Read a CSV file as text columns plus `_file` and `_row`.

    `header_row` is the line the column names are on (1-based); `skip_rows` lines before the
    header are an alternative way to say the same (`header_row = skip_rows + 1`).
    `skip_rows_after_header` skips e.g. a units line under the header. Without a declared
    `encoding` it is sniffed (BOM, UTF-8, GBK, cp1252/Latin-1); without a `delimiter` it is
    sniffed among `, ; TAB |`. `lazy=True` returns a LazyFrame (read errors may then surface
    on collect); the default reads eagerly so every problem is a ReadError here.
    A header name written twice becomes `name`, `name.1`, ... (`duplicate_columns="rename"`) or
    is refused (`"error"`: a canonical extract, where either copy could be the real one).
    A cell longer than `MAX_CELL_CHARS` is refused (file, row, column; the value is never
    repeated); lazily, the frame fails on collect and an eager read names the cell.
    """
    path = Path(path)
    display = display_name(path, root)
    if skip_rows and header_row != 1 and header_row != skip_rows + 1:
        raise ReadError(display, message=f"header_row {header_row} and skip_rows {skip_rows} disagree; give one of them")
    if skip_rows:
        header_row = skip_rows + 1
    if header_row < 1:
        raise ReadError(display, message="header_row must be 1 or more")
    head = _check_file(path, display)

    enc = normalize(encoding, display) if encoding else sniff(path, display)
    if bom_encoding(head) == "utf-16":
        # A UTF-16 byte order mark beats a declaration (a spreadsheet's "Unicode text" export).
        enc = "utf-16"
    temp = None
    if enc in ("utf-8", "utf-8-sig"):
        source = path
        qbyte = quote.encode() if quote else None
        has_quote, lone_cr = scan_text(path, display, "utf-8", qbyte)
        if lone_cr:
            # Lines also end in a lone '\r': rewrite every line ending as '\n' (see encoding.py).
            temp, has_quote = transcode_to_utf8(path, display, "utf-8-sig", qbyte)
            source = temp
    else:
        if bom_encoding(head) == "utf-8-sig" and enc not in ("utf-8-sig",):
            # A UTF-8 BOM beats a wrong declaration.
            enc = "utf-8-sig"
        temp, has_quote = transcode_to_utf8(path, display, enc, quote.encode("utf-8") if quote else None)
        source = temp

    try:
        sample = _sample_text(source, "utf-8-sig")
        body = _split_lines(sample, header_row - 1)
        if not body.strip():
            raise ReadError(display, row=header_row, message=f"no header found on row {header_row} (the file has fewer lines)")
        if delimiter is None:
            delimiter = sniff_delimiter(body, quote or '"')
        elif delimiter in ("\\t", "tab", "TAB"):
            delimiter = "\t"
        if len(delimiter) != 1:
            raise ReadError(display, message=f"the delimiter must be one character, not '{delimiter}'")
        reader = pycsv.reader(io.StringIO(body, newline=""), delimiter=delimiter, quotechar=quote or '"')
        try:
            names = next(reader)
            for _ in range(skip_rows_after_header):
                next(reader, None)
        except pycsv.Error as exc:
            raise ReadError(display, row=header_row, message=f"the header cannot be read: {exc}") from None
        header = _header(names)
        if duplicate_columns == "error":
            for name, at in duplicated_columns(names).items():
                raise ReadError(
                    display, row=header_row, column=name,
                    message=f"this column name appears {len(at)} times in the header (columns "
                    f"{', '.join(map(str, at[:-1]))} and {at[-1]}); keep one, so that it is clear "
                    "which holds the data",
                )
        for reserved in ("_file", "_row"):
            if reserved in header:
                raise ReadError(display, row=header_row, column=reserved, message="a column may not be named _file or _row (reserved)")
        # Expressions work on positional names: a header such as '*' or '^id$' would be a
        # wildcard or a regular expression to polars. The real names come back by rename.
        internal = [f"__c{i}" for i in range(len(header))]
        first_line = header_row - 1 + reader.line_num + 1

        lf = pl.scan_csv(
            source,
            has_header=True,
            separator=delimiter,
            quote_char=quote or None,
            skip_lines=header_row - 1,
            skip_rows_after_header=skip_rows_after_header,
            infer_schema=False,
            new_columns=internal,
            comment_prefix=comment,
            raise_if_empty=False,
            encoding="utf8",
            glob=False,  # a folder called `G[1]` is a name, not a pattern matching `G1`
        )
        cols = [pl.col(c) for c in internal]
        lf = lf.with_row_index("_idx")
        if has_quote:
            embedded = pl.sum_horizontal([c.str.count_matches("\n", literal=True).fill_null(0) for c in cols])
            lf = lf.with_columns(_emb=embedded.cast(pl.Int64))
            row = pl.lit(first_line, pl.Int64) + pl.col("_idx").cast(pl.Int64) + pl.col("_emb").cum_sum() - pl.col("_emb")
        else:
            row = pl.lit(first_line, pl.Int64) + pl.col("_idx").cast(pl.Int64)
        if lazy:
            # `_row` is read by every consumer, so a cell that is too long fails the query there.
            row = row + cell_length_guard(cols)
        lf = (
            lf.with_columns(
                [pl.when(c == "").then(None).otherwise(c).alias(c.meta.output_name()) for c in cols]
                + [pl.lit(display, pl.Utf8).alias("_file"), row.alias("_row")]
            )
            .filter(~pl.all_horizontal([c.is_null() for c in cols]) if cols else pl.lit(True))
            .select([*cols, pl.col("_file"), pl.col("_row")])
            .rename(dict(zip(internal, header, strict=True)))
        )
        if lazy:
            return lf
        try:
            df = lf.collect()
        except pl.exceptions.PolarsError:
            raise _diagnose(source, display, delimiter, quote or '"', header_row, len(header), first_line) from None
        check_cell_lengths(df, display)
        return df
    finally:
        if temp is not None and not lazy:
            temp.unlink(missing_ok=True)
