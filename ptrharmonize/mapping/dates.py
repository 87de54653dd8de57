"""Dates and timestamps as a center writes them -> canonical ISO text (polars expressions).

Formats are tried in the order declared, then ISO; `excel_serial` reads Excel day numbers. A
value no format reads stays as written (the caller keeps the raw text), never a guess.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

import polars as pl

from .helpers import same

ISO_DATE_FORMATS = ["%Y-%m-%d"]
ISO_TIMESTAMP_FORMATS = ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M",
                         "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
EXCEL_SERIAL = "excel_serial"
DATE_OUT = "%Y-%m-%d"
TIMESTAMP_OUT = "%Y-%m-%dT%H:%M:%S"
_HAS_TIME = re.compile(r"%[HIMSTRcrXfp.]")
_SAMPLE_DT = dt.datetime(2019, 11, 23, 17, 45, 30)


def has_time(fmt: str) -> bool:
    return bool(_HAS_TIME.search(fmt))


def date_format_problem(fmt: str) -> str | None:
    """Why `fmt` cannot read dates (None when it can): it must be a valid strftime format that
    writes and reads back a full date (year, month, day), or `excel_serial`."""
    if fmt == EXCEL_SERIAL:
        return None
    try:
        text = pl.Series([_SAMPLE_DT]).dt.strftime(fmt)
        back = text.str.strptime(pl.Datetime("us"), fmt, strict=False) if has_time(fmt) else text.str.strptime(pl.Date, fmt, strict=False)
    except Exception as exc:  # noqa: BLE001 - polars raises several error types for a bad format
        return f"invalid date format '{fmt}': {str(exc).splitlines()[0]}"
    value = back[0]
    if value is None or (value.date() if isinstance(value, dt.datetime) else value) != _SAMPLE_DT.date():
        return f"date format '{fmt}' does not read a full date (it needs a year, a month and a day)"
    return None


def _excel_serial(s: pl.Expr, timestamp: bool) -> pl.Expr:
    n = s.cast(pl.Float64, strict=False)
    ok = (n >= 1) & (n < 2958466)
    secs = (n * 86400).round(0).cast(pl.Int64, strict=False)
    dtm = pl.when(ok).then(pl.datetime(1899, 12, 30) + pl.duration(seconds=secs))
    return dtm if timestamp else dtm.dt.date()


def _try(s: pl.Expr, f: str, timestamp: bool) -> pl.Expr | None:
    if f == EXCEL_SERIAL:
        return _excel_serial(s, timestamp)
    if has_time(f):
        dtm = s.str.strptime(pl.Datetime("us"), f, strict=False)
        return dtm if timestamp else dtm.dt.date()
    if not timestamp:  # a date alone is not a timestamp
        return s.str.strptime(pl.Date, f, strict=False)
    return None


def parse_date(s: pl.Expr, formats: list[str] | None, timestamp: bool, midnight_dates: bool = False,
               keep: Callable[[pl.Expr], pl.Expr] = same) -> pl.Expr:
    """Parsed Datetime (timestamp) or Date; null where no format fits.

    `midnight_dates`: an ISO date alone in a timestamp column is that day at 00:00. Only for
    Excel sources, where a date-time cell at midnight reads back as a date (Excel stores both
    as one day number); in text files a date alone in a timestamp column stays an error.

    With `keep` (helper columns), the first format is tried on every cell and the others only
    where it failed (the rest masked to null): the same first match, without every format on
    every cell (a failed strptime costs ~10x a successful one)."""
    declared = formats or []
    iso = ISO_TIMESTAMP_FORMATS + ([] if timestamp else ISO_DATE_FORMATS)
    fmts = [*declared, *[x for x in iso if x not in declared]]
    tries: list[pl.Expr] = []
    rest = s
    for f in fmts:
        t = _try(rest, f, timestamp)
        if t is None:
            continue
        if not tries and keep is not same:
            t = keep(t)
            rest = pl.when(t.is_null()).then(s)
        tries.append(t)
    if timestamp and midnight_dates:
        tries.append(rest.str.strptime(pl.Date, "%Y-%m-%d", strict=False).cast(pl.Datetime("us")))
    if not tries:
        return pl.lit(None, pl.Datetime("us") if timestamp else pl.Date)
    return pl.coalesce(tries)


def date_text(s: pl.Expr, raw: pl.Expr, formats: list[str] | None, timestamp: bool, midnight_dates: bool,
              keep: Callable[[pl.Expr], pl.Expr] = same) -> pl.Expr:
    """Canonical ISO text where a format reads the value, else the raw text as written."""
    d = keep(parse_date(s, formats, timestamp, midnight_dates, keep))
    return pl.when(d.is_not_null()).then(d.dt.strftime(TIMESTAMP_OUT if timestamp else DATE_OUT)).otherwise(raw)
