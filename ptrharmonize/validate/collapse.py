"""A column wrong throughout is one issue, not thousands.

When a rule fails on every row it checked (a column left unmapped, a unit wrong everywhere, a
date format that matches no cell), a list with one line per row tells the center nothing more
than one line would, and hides the other issues. Such a rule's row issues of one file and
column become one column-level issue: no row, a count, the first rows and a few example values
(already redacted), and the rule's message. The rule results keep every row's count, so
blocking and thresholds are unchanged.
"""

from __future__ import annotations

import polars as pl

from ..messages import Speaker

EXAMPLES = 3


ENGLISH = ("{message} (in all {count} rows of this column, e.g. rows {rows}: correct the column or its mapping, "
           "not row by row)")
ROW_FIELDS = ("row", "place", "patient_id")  # of one row: empty on a column-level issue


def collapse_whole_columns(issues: pl.DataFrame, rules: pl.DataFrame, min_rows: int,
                           template: str | None = None) -> pl.DataFrame:
    """Replace the row issues of every rule that failed on all of at least `min_rows` checked
    rows by one issue per (file, column). `template` words it (the message catalog's
    `terms.column_wide`, in the center's language; {message}, {count}, {rows})."""
    whole = rules.filter((pl.col("failed") == pl.col("checked")) & (pl.col("checked") >= min_rows))
    ids = set(whole["rule_id"].to_list())
    if not ids or issues.is_empty():
        return issues
    hit = issues.filter(pl.col("rule_id").is_in(list(ids)) & pl.col("row").is_not_null())
    if hit.is_empty():
        return issues
    keys = ["rule_id", "severity", "table", "file", "column"]
    carried = [c for c in issues.columns if c not in (*keys, *ROW_FIELDS, "value")]
    grouped = hit.group_by(keys, maintain_order=True).agg(
        pl.len().alias("_n"),
        pl.col("row").sort().head(EXAMPLES).alias("_rows"),
        pl.col("value").drop_nulls().unique(maintain_order=True).head(EXAMPLES).alias("_values"),
        *[pl.col(c).first() for c in carried],
    )
    grouped = grouped.filter(pl.col("_n") >= min_rows)
    if grouped.is_empty():
        return issues
    words = template or ENGLISH
    texts = [Speaker.fill(words, {"message": m, "count": n, "rows": ", ".join(str(r) for r in rows)})
             for m, n, rows in grouped.select("message", "_n", "_rows").iter_rows()]
    collapsed = grouped.with_columns(
        *[pl.lit(None, dtype=issues.schema[c]).alias(c) for c in ROW_FIELDS if c in issues.columns],
        pl.col("_values").list.join("; ").alias("value"),
        pl.Series("message", texts, dtype=pl.Utf8),
    ).select(issues.columns).cast(issues.schema)
    drop = grouped.select(keys).with_columns(pl.lit(True).alias("_drop"))
    kept = (issues.join(drop, on=keys, how="left", nulls_equal=True, maintain_order="left")
            .filter(pl.col("_drop").is_null() | pl.col("row").is_null()).drop("_drop"))
    return pl.concat([kept, collapsed]).sort(["table", "file", "row", "rule_id"], nulls_last=False)
