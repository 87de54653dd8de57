"""SPSS `.sav`/`.zsav` reader (pyreadstat): typed columns, value labels applied on request.

`value_labels=True` replaces the codes of every labelled variable by their labels; a list of
variable names applies them to those variables only. A labelled variable becomes text; a code
without a label keeps its value, written as text (an integral number without `.0`), so the
mapping's value map or the validation engine sees it. `_row` is the case number + 1.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from . import ReadError, check_cell_lengths, display_name, require_file


def _code_text(v: object) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def read_spss(
    path: Path,
    root: Path | None = None,
    *,
    value_labels: bool | list[str] = False,
    encoding: str | None = None,
    row_offset: int = 0,
    row_limit: int = 0,
) -> pl.DataFrame:
    """Read a .sav file, or the `row_limit` cases from `row_offset` (a chunk: `_row` stays the
    case number + 1, so a streamed file's chunks number their rows as the whole file does)."""
    import pyreadstat

    path = Path(path)
    display = display_name(path, root)
    require_file(path, display)
    try:
        df, meta = pyreadstat.read_sav(str(path), output_format="polars", encoding=encoding,
                                       row_offset=row_offset, row_limit=row_limit)
    except Exception as exc:  # noqa: BLE001 - any pyreadstat failure is "not a readable .sav"
        raise ReadError(display, message=f"not a readable SPSS file ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    clash = [c for c in ("_file", "_row") if c in df.columns]
    if clash:
        raise ReadError(display, column=clash[0], message="a variable may not be named _file or _row (reserved)")
    labels = meta.variable_value_labels or {}
    if value_labels is True:
        apply = list(labels)
    elif value_labels:
        apply = [c for c in value_labels if c in labels]
    else:
        apply = []
    exprs = []
    for name in apply:
        mapping = {_code_text(k): str(v) for k, v in labels[name].items()}
        col = pl.col(name)
        as_text = col.cast(pl.Utf8) if df.schema[name] != pl.Float64 else (
            pl.when(col == col.round(0)).then(col.cast(pl.Int64).cast(pl.Utf8)).otherwise(col.cast(pl.Utf8))
        )
        exprs.append(as_text.replace(mapping).alias(name))
    strings = [c for c, t in df.schema.items() if t == pl.Utf8 and c not in apply]
    exprs += [pl.when(pl.col(c) == "").then(None).otherwise(pl.col(c)).alias(c) for c in strings]
    if exprs:
        df = df.with_columns(exprs)
    df = df.with_columns(
        pl.lit(display, pl.Utf8).alias("_file"),
        pl.int_range(row_offset + 2, pl.len() + row_offset + 2, dtype=pl.Int64).alias("_row"),
    )
    # A text cell longer than a spreadsheet cell can hold is refused as in CSV and Excel (issue
    # 23: cells are capped before the identifier patterns run on them).
    check_cell_lengths(df, display)
    return df
