"""The reference study reproduced through the real pipeline: CI fails if a published number stops matching."""

from __future__ import annotations

from pathlib import Path

import pytest

from ptrharmonize.reproduce.compare import load_published, resolve
from ptrharmonize.reproduce.run import reproduce


@pytest.fixture(scope="module")
def reproduction(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    out = tmp_path_factory.mktemp("repro")
    return out, reproduce(out)


def test_every_published_number_matches(reproduction: tuple[Path, list[dict]]) -> None:
    _, rows = reproduction
    bad = [(r["id"], r["published"], r["reproduced"]) for r in rows if not r["match"] and not r["expected_mismatch"]]
    assert bad == []
    assert len(rows) == len(load_published())


def test_reproduction_report_written(reproduction: tuple[Path, list[dict]]) -> None:
    out, rows = reproduction
    md = (out / "reproduction.md").read_text()
    html = (out / "reproduction.html").read_text()
    for r in rows:
        assert r["what"] in md
    assert f"{sum(r['match'] for r in rows)} of {len(rows)}" in html
    assert (out / "paper-results" / "results.json").exists()


def test_documented_mismatches_say_which_figure_they_follow() -> None:
    for e in load_published():
        if e.get("expect_mismatch"):
            assert e.get("follows"), e["id"]


def test_resolver_paths() -> None:
    doc = {"a": {"rows": [{"variable": "cr", "p": 0.4}], "r": {"x": [1, 2]}}}
    assert resolve(doc, "a.rows[variable=cr].p") == 0.4
    assert resolve(doc, "a.r.x[1]") == 2
    assert resolve(doc, "a.r.x.__len__") == 2
    assert resolve(doc, "a.rows[variable=zz].p") is None
