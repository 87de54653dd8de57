"""Building a store the way a registry does, for tests that need one: a submission validated by
the real engine and ingested into a DuckDB store (no shortcut past either)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from ptrharmonize.ingest import ingest
from ptrharmonize.submission import Submission
from ptrharmonize.validate import Engine


def store_submission(sub: Submission, store: Path) -> Path:
    """Validate `sub` and ingest it into `store` (created, or added to). The calling test fails,
    naming the errors, unless the submission passes validation and is stored."""
    result = Engine().validate(sub)
    try:
        errors = result.issues.filter(pl.col("severity") == "error")
        assert not result.blocking, errors
        assert ingest(sub, result, store).status == "stored", errors
    finally:
        result.cleanup()
    return store
