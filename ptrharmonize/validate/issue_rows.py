"""Issue-table rows from a rule's failing (_file, _row, value) rows: the schema every output reads
(`ISSUE_SCHEMA`, and `RULE_RESULT_SCHEMA` for the rule results), values shown as a person wrote
them and cut at `MAX_VALUE_CHARS`, and why a rule could not run, as plain text."""

from __future__ import annotations

import polars as pl

from ..cdm import FILE_COL, ROW_COL
from ..errors import library_message
from .rules import Rule

ISSUE_SCHEMA: dict[str, pl.DataType] = {
    "rule_id": pl.Utf8(),
    "severity": pl.Utf8(),
    "table": pl.Utf8(),
    "file": pl.Utf8(),
    "row": pl.Int64(),
    "column": pl.Utf8(),
    "value": pl.Utf8(),
    "message": pl.Utf8(),
}


RULE_RESULT_SCHEMA: dict[str, pl.DataType] = {
    "rule_id": pl.Utf8(),
    "table": pl.Utf8(),
    "category": pl.Utf8(),
    "severity": pl.Utf8(),
    "checked": pl.Int64(),
    "failed": pl.Int64(),
    "fraction_failed": pl.Float64(),
    "threshold": pl.Float64(),
    "status": pl.Utf8(),
    "reason": pl.Utf8(),
}


MAX_VALUE_CHARS = 200  # a 1 MB cell is reported, not copied whole into every report


def _reason(exc: BaseException) -> str:
    """Why a rule could not run, for every output: the library's first line, without the
    spans it quotes (they may be cell values)."""
    return library_message(exc) or type(exc).__name__


def _truncate(e: pl.Expr) -> pl.Expr:
    return (
        pl.when(e.str.len_chars() > MAX_VALUE_CHARS)
        .then(e.str.slice(0, MAX_VALUE_CHARS) + pl.lit("…"))
        .otherwise(e)
    )


REDACTED = "[redacted]"


def _display(e: pl.Expr) -> pl.Expr:
    """Show a parsed value as a person wrote it: `200` not `200.0`, `2019-03-05T10:00:00`."""
    e = e.str.replace(r"^(-?[0-9]+)\.0+$", "${1}")
    return e.str.replace(r"^([0-9]{4}-[0-9]{2}-[0-9]{2}) ([0-9]{2}:[0-9]{2}:[0-9]{2})(\.0+)?$", "${1}T${2}")


def _issue_frame(rule: Rule, failures: pl.DataFrame, column: str | None = None,
                 message: str | None = None, table: str | None = None) -> pl.DataFrame:
    """Turn failing (_file, _row, value) rows of one rule into issue-table rows."""
    n = failures.height
    return pl.DataFrame(
        {
            "rule_id": [rule.id] * n,
            "severity": [rule.severity] * n,
            "table": [table or rule.table] * n,
            "file": failures[FILE_COL].cast(pl.Utf8) if n else [],
            "row": failures[ROW_COL].cast(pl.Int64) if n else [],
            "column": [column or rule.column] * n,
            "value": failures["value"].cast(pl.Utf8) if n else [],
            "message": [message or rule.message] * n,
        },
        schema=ISSUE_SCHEMA,
    ).with_columns(_truncate(_display(pl.col("value"))).alias("value"))
