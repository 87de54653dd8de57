"""Helper columns of a mapping plan (issue 22): the same values as the expressions written out."""

from __future__ import annotations

import polars as pl
from polars.testing import assert_frame_equal

from ptrharmonize.mapping.dates import date_text
from ptrharmonize.mapping.helpers import Helpers
from ptrharmonize.mapping.values import apply_values, boolean_text, number

CELLS = ["23.11.2019 17:45", "2019-11-23 17:45:30", "2019-11-23", "43792.5", "31.02.2019 10:00",
         "not a date", None, " 1.234,5 ", "1,5", "-0,25", "ja", "NEE", "x"]


def _both(build) -> None:  # noqa: ANN001 - a function of (expr, keep) to an expression
    """`build` evaluated with helper columns (streamed) and inline: equal, cell by cell."""
    lf = pl.LazyFrame({"s": CELLS})
    inline = lf.select(build(pl.col("s"), None).alias("out")).collect()
    h = Helpers()
    expr = build(pl.col("s"), h.keep)
    kept = h.apply(lf).select(expr.alias("out")).collect(engine="streaming")
    assert h.levels, "no helper column was made: the test would compare the same expression"
    assert_frame_equal(inline, kept)


def test_dates_first_format_then_the_others_only_where_it_failed() -> None:
    for ts in (True, False):
        for formats in (["%d.%m.%Y %H:%M"], ["%d.%m.%Y %H:%M", "excel_serial"], None):
            _both(lambda s, k, ts=ts, f=formats: date_text(s, s, f, ts, True, *( [k] if k else [])))


def test_numbers_booleans_and_value_maps() -> None:
    from ptrharmonize.mapping.model import ValueMap

    _both(lambda s, k: number(s, ",", ".", *([k] if k else [])))
    _both(lambda s, k: number(s, ".", None, *([k] if k else [])))
    vm = ValueMap(exact={"ja": "true", "nee": "false"}, patterns=[(r"^x$", "unknown")])
    _both(lambda s, k: apply_values(s, vm, *([k] if k else []))[0])
    _both(lambda s, k: boolean_text(apply_values(s, vm)[0], s, *([k] if k else [])))
