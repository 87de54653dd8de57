"""The cells of a mapped block as the center wrote them, for the issue list only (issue 19).

A mapping recodes (`männlich` -> M), converts (`17,5` m -> 1750 cm, `45 G/L`) and reformats
(`31.01.2020` -> 2020-01-31) the center's cells before validation, so the engine's value of a
failing cell is the converted one. The nurse fixing the cell must see what is in her file.

The written text is never carried through the stage: each block gives a lazy query of its
source (the reader's Arrow scratch file, already on disk) with `_file`, `_row` and one text
column per mapped CDM column, and `validate/written.py` runs it for the flagged rows only, with
a semi join, after the checks. A block that unpivots one column per analyte gives one row per
analyte cell, keyed by the CDM analyte code (`WRITTEN_ANALYTE`), as its plan does.
"""

from __future__ import annotations

import polars as pl

from ..cdm import FILE_COL, ROW_COL
from .model import Roles
from .plan import Source

WRITTEN_ANALYTE = "__analyte"  # the CDM analyte code of an unpivoted cell


def written_frame(src: Source, roles: Roles) -> pl.LazyFrame | None:
    """The block's source cells (cleaned text, as its plan reads them) by CDM column, or None
    when the block maps no source column."""
    block = src.block
    base = {name: src.raw(cm) for name, cm in block.columns.items() if not cm.is_constant and cm.column}
    keys = [pl.col(FILE_COL).cast(pl.Utf8), pl.col(ROW_COL).cast(pl.Int64)]
    m = roles.measurement
    # The cells are helper columns of the plan (mapping/helpers.py); polars computes only those read here.
    lf = src.helpers.apply(src.lf)
    if block.unpivot and m is not None:
        parts = [pl.struct(pl.lit(analyte, pl.Utf8).alias(WRITTEN_ANALYTE), src.raw(cm).alias(m.value))
                 for analyte, cm in block.unpivot.items() if not cm.is_constant and cm.column]
        if not parts:
            return None
        return (lf.select([*keys, *(e.alias(n) for n, e in base.items()), pl.concat_list(parts).alias("__w")])
                .explode("__w").with_columns(pl.col("__w").struct.field(WRITTEN_ANALYTE, m.value)).drop("__w"))
    if not base:
        return None
    return lf.select([*keys, *(e.alias(n) for n, e in base.items())])
