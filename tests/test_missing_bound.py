"""The missing-data block of `ptrh validate` under its DuckDB memory bound (issue 22): where the
bound is too tight for an operator that cannot spill, the block is derived again without it and
says the same; it never turns into "could not derive the outcomes"."""

from __future__ import annotations

from pathlib import Path

import pytest

from ptrharmonize.commands.common import load_submission
from ptrharmonize.paths import mappings_dir
from ptrharmonize.report import missing
from ptrharmonize.synth.centers import generate_centers
from ptrharmonize.validate import Engine


def test_a_bound_too_tight_gives_the_same_block(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Milan's mapping declares bleeding not collected: the block has not-assessable counts to get right.
    generate_centers(tmp_path, patients_per_center=30, seed=5, centers=1, mappings=[mappings_dir() / "it_milan.yaml"])
    sub = load_submission(tmp_path / "centers" / "it_milan", tmp_path / "mappings" / "it_milan.yaml")
    result = Engine().validate(sub)
    try:
        bounded = missing.for_submission(result)
        limits: list[str] = []
        derive = missing.missing_data

        def spy(con, centers):  # noqa: ANN001, ANN202 - records the bound each attempt ran under
            limits.append(con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0])
            return derive(con, centers)

        monkeypatch.setattr(missing, "missing_data", spy)
        monkeypatch.setenv("PTRH_MISSING_BLOCK_MEMORY_MB", "2")
        retried = missing.for_submission(result)
    finally:
        result.cleanup()
    assert "missing" not in bounded and bounded["by_center"]
    outcomes = {o["id"]: o for o in bounded["by_center"]["IT-MI"]["outcomes"]}
    assert outcomes["outcome.bleeding_known"]["not_assessable"] == outcomes["outcome.bleeding_known"]["population"] > 0
    assert len(limits) == 2 and limits[0].startswith("1.9"), limits  # 2 MB ran out, then unbounded
    assert retried == bounded
