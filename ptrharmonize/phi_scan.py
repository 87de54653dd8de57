"""The identifier scan of one staged table (schemas/phi.yaml `values:`): report where, never what.

Which columns a rule reads: `all_text_columns: true` reads every text and code column of the
table and the kept text of every cell that did not parse (`__raw__<column>`: an e-mail typed in
a number column), so e-mail, telephone and national ids are found anywhere; otherwise the table's
`scan_columns`; `only_columns` narrows either. A value is flagged when the rule's `pattern`
matches it, or when its `candidates` pattern matches and its `validator`
(ptrharmonize/identifiers.py: check digits, phone numbering plans, given names) confirms.
Patterns run on each column's distinct values, validators on the distinct candidates only, and
the rows are found again by value: identifiers repeat (a patient code on 200 lab rows).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from .cdm import FILE_COL, ROW_COL, Catalog
from .identifiers import VALIDATORS

RAW_PREFIX = "__raw__"
REDACTED = "[redacted]"
REDACTED_FIELDS = ("value", "patient_id")  # issue fields that may repeat a cell's text


def scan_columns(catalog: Catalog, table: str, rule_spec: dict[str, Any], present: list[str]) -> list[str]:
    """The staged columns `rule_spec` reads in `table` (raw columns by their staged name)."""
    if rule_spec.get("all_text_columns"):
        spec = catalog.tables[table]
        cols = [c.name for c in spec.columns if c.type in ("text", "code") and c.name in present]
        cols += [c for c in present if c.startswith(RAW_PREFIX)]
    else:
        cols = [c for c in (catalog.phi or {}).get("scan_columns", {}).get(table, []) if c in present]
    only = rule_spec.get("only_columns")
    if only:
        cols = [c for c in cols if c.removeprefix(RAW_PREFIX) in only]
    return cols


def _flagged(values: pl.Series, spec: dict[str, Any]) -> set[str]:
    """The distinct values of one column that the rule flags."""
    name = values.name
    frame = values.to_frame()
    hits: set[str] = set()
    if spec.get("pattern"):
        hits |= set(frame.filter(pl.col(name).str.contains(spec["pattern"]))[name].to_list())
    validator = spec.get("validator")
    if validator:
        check = VALIDATORS[validator]
        cand = frame.filter(pl.col(name).str.contains(spec.get("candidates") or "."))[name].to_list()
        hits |= {v for v in cand if v not in hits and check(v)}
    return hits


def scan_table(catalog: Catalog, rules: list[Any], table: str, path: Path,
               count: Callable[[Any, int, int], None],
               report: Callable[[Any, pl.DataFrame, str], None], flagged_values: set[str]) -> None:
    """Run every `phi_value` rule on a staged table. `count(rule, checked, failed)` adds to the
    rule's counts; `report(rule, failures, column)` gets the failing (_file, _row, value) rows
    with the value already redacted; every flagged text is added to `flagged_values`."""
    lf = pl.scan_parquet(path, glob=False)
    present = lf.collect_schema().names()
    strings = {c for c, t in lf.collect_schema().items() if t == pl.Utf8 or t == pl.String}
    pairs = [(r, c) for r in rules for c in scan_columns(catalog, table, r.spec, present) if c in strings]
    if not pairs:
        return
    cols = list(dict.fromkeys(c for _, c in pairs))
    filled = lf.select([pl.col(c).is_not_null().sum().alias(c) for c in cols]).collect().row(0, named=True)
    distinct = dict(zip(cols, pl.collect_all([lf.select(pl.col(c).drop_nulls().unique()) for c in cols]),
                        strict=True))
    hits: dict[tuple[str, str], set[str]] = {}
    for r, c in pairs:
        found = _flagged(distinct[c][c], r.spec)
        if found:
            hits[(r.id, c)] = found
        count(r, int(filled[c]), 0)
    if not hits:
        return
    flags = {f"{rid}|{c}": pl.col(c).is_in(sorted(v)) for (rid, c), v in hits.items()}
    bad = (
        lf.with_columns([e.alias(k) for k, e in flags.items()])
        .filter(pl.any_horizontal([pl.col(k) for k in flags]))
        .select(FILE_COL, ROW_COL, *cols, *flags)
        .collect()
    )
    for r, c in pairs:
        key = f"{r.id}|{c}"
        if key not in flags:
            continue
        sub = bad.filter(pl.col(key))
        if not sub.height:
            continue
        count(r, 0, sub.height)
        flagged_values.update(v for v in sub[c].to_list() if v is not None)
        report(r, sub.select(FILE_COL, ROW_COL, pl.lit(REDACTED).alias("value")), c.removeprefix(RAW_PREFIX))


def redact_issue_values(issues: pl.DataFrame, flagged: set[str], rules: list[Any], limit: int) -> pl.DataFrame:
    """Every issue value that repeats a flagged text, in full or cut to `limit` characters (+ '…'),
    or that a rule read in every column (`all_text_columns`: e-mail, phone, national id, names)
    flags by itself, becomes '[redacted]': redaction is decided on what was detected in the full
    text, never on the shortened copy an issue shows."""
    if issues.height == 0:
        return issues
    shown = set(flagged)
    shown |= {v[:limit] + "…" for v in flagged if len(v) > limit}
    # The patient code of an issue's row too: pseudonymous in the CDM, yet a center that keys its
    # rows by an identity number must not see it repeated in the list it gets back.
    texts = [c for c in REDACTED_FIELDS if c in issues.columns]
    values = pl.concat([issues.get_column(c).drop_nulls() for c in texts]).unique()
    extra: set[str] = set()
    for r in rules:
        if r.spec.get("all_text_columns"):
            extra |= _flagged(values.alias("value"), r.spec)
    shown |= extra
    if not shown:
        return issues
    hide = sorted(shown)
    return issues.with_columns(
        [pl.when(pl.col(c).is_in(hide)).then(pl.lit(REDACTED)).otherwise(pl.col(c)).alias(c) for c in texts]
    )
