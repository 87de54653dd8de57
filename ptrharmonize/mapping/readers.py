"""Glue between a mapping's source blocks and the readers (`ptrharmonize.read`)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from ..read import read_source
from .model import SourceBlock


def open_source(path: Path, root: Path, block: SourceBlock) -> pl.LazyFrame:
    """The block's file as a LazyFrame of its columns plus `_file` and `_row`."""
    df = read_source(path, root, block.fmt, **block.reader_options)
    return df.lazy()
