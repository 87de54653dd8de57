"""The engine's scale paths give the same issue table and rule results as the plain ones.

`auto` runs pandera on small tables and polars above `pandera_max_rows`; a lazily read extract
(as `ptrh validate` reads it) is staged while it streams. Both must change nothing in what is
found. Speed is measured by benchmarks/bench_scale.py, not here.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
from polars.testing import assert_frame_equal

from ptrharmonize.read.canonical import read_canonical
from ptrharmonize.validate import Engine


def _run(folder: Path, lazy: bool, **kwargs) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, str]]:
    engine = Engine(**kwargs)
    res = engine.validate(read_canonical(folder, lazy=lazy))
    try:
        key = ["table", "file", "row", "rule_id", "column", "value"]
        return res.issues.sort(key, nulls_last=True), res.rules, dict(engine.column_backends)
    finally:
        res.cleanup()


def test_auto_back_end_matches_pandera_and_polars(dirty_extract: Path) -> None:
    ref_issues, ref_rules, backends = _run(dirty_extract, False, column_engine="pandera")
    assert set(backends.values()) == {"pandera"}
    for kwargs in ({"column_engine": "polars"}, {"column_engine": "auto"},
                   {"column_engine": "auto", "pandera_max_rows": 10}):
        issues, rules, backends = _run(dirty_extract, True, **kwargs)
        assert_frame_equal(issues, ref_issues)
        assert_frame_equal(rules, ref_rules)
    # with a 10-row limit the larger tables went to polars, the small ones stayed with pandera
    assert backends["labs"] == "polars" and backends["patients"] == "pandera"
    assert Engine().column_engine == "auto"
