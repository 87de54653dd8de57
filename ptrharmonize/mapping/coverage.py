"""`ptrh mapping check --data`: the source values a value map does not cover (issue 19: "`ptrh
mapping check --data` lists every TODO and every source value a value map does not cover").

A value the map does not name is left as written (`unmapped: keep`, the default), so validation
reports every row holding it: an error here, so that a mapping the check passes is one whose
values validate. A value that already is what the CDM column takes (a CDM code, a yes/no word,
any text in a text column) is stored as written and needs no mapping: it is not listed (the
generated demo centers write the codes their maps lack that way). Columns whose map has a
`default:` or `unmapped: drop` cover everything by design. The values listed are the file's distinct codes, at most MAX_LISTED, each cut at
MAX_CHARS; a value an identifier rule (schemas/phi.yaml) flags is never shown.
"""

from __future__ import annotations

import re
from typing import Any

import polars as pl

from ..cdm import Catalog
from .language import problem as _p
from .model import SourceBlock
from .values import BOOL_WORDS

MAX_LISTED = 10
MAX_CHARS = 40


def _acceptable(value: str, kind: str, codes: list[str]) -> bool:
    """Whether a value left as written is what the CDM column takes."""
    if kind == "code":
        return value in codes
    if kind == "boolean":
        return value.lower() in BOOL_WORDS
    return kind == "text"


def _identifiers(values: list[str], catalog: Catalog) -> set[str]:
    from ..phi_scan import _flagged

    series = pl.Series("v", values, dtype=pl.Utf8)
    out: set[str] = set()
    for rule in (catalog.phi or {}).get("values") or []:
        out |= _flagged(series, rule)
    return out


def _applies(name: str, cm: Any, frame: pl.DataFrame, spec: Any, skip: set[str]) -> bool:
    """A mapped column with a value map that can miss values (no default, not `drop`)."""
    vm = cm.values
    return not (vm is None or cm.is_constant or not cm.column or cm.column not in frame.columns or vm.has_default
                or cm.unmapped == "drop" or name in skip or name not in spec.column_names)


def _missing(values: pl.Series, vm: Any, nulls: set[str]) -> list[str]:
    """The distinct values (most frequent first) the map names neither exactly nor by a pattern."""
    text = values.cast(pl.Utf8).str.strip_chars().drop_nulls()
    counts = text.filter(text != "").value_counts(sort=True)
    return [v for v, _n in counts.iter_rows() if v.lower() not in nulls and v.casefold() not in vm.exact
            and not any(re.search("(?i)" + rx, v) for rx, _ in vm.patterns)]


def _listed(missing: list[str], catalog: Catalog) -> str:
    hidden = _identifiers(missing, catalog)
    shown = [repr(v if len(v) <= MAX_CHARS else v[:MAX_CHARS] + "…") for v in missing[:MAX_LISTED] if v not in hidden]
    listed = ", ".join(shown) + (f" and {len(missing) - MAX_LISTED} more" if len(missing) > MAX_LISTED else "")
    if hidden:
        listed += f"{', ' if shown else ''}{len(hidden)} value(s) not shown (identifiers)"
    return listed


def uncovered_values(block: SourceBlock, frame: pl.DataFrame, catalog: Catalog, skip: set[str] | None = None) -> list[dict[str, Any]]:
    """One error per mapped column of `block` whose value map misses values of `frame` that
    validation would refuse."""
    out = []
    spec = catalog.tables[block.table]
    nulls = {v.strip().lower() for v in block.null_values}
    for name, cm in block.columns.items():
        if not _applies(name, cm, frame, spec, skip or set()):
            continue
        col = spec.column(name)
        codes = [str(c) for c in col.attrs.get("codes") or []]
        missing = [v for v in _missing(frame.get_column(cm.column), cm.values, nulls)
                   if not _acceptable(v, col.type, codes)]
        if missing:
            out.append(_p("error", f"{block.where}.columns.{name}.values",
                          f"{cm.column} in {block.file} holds {len(missing)} value(s) the value map does not cover: "
                          f"{_listed(missing, catalog)}: validation reports every row holding one; map each to its code"))
    return out
