"""The scale benchmark runs end to end on a tiny registry and writes every figure it promises.

No timing is asserted here: performance is measured by `benchmarks/bench_scale.py`, never by
timed unit tests. This only checks that the benchmark still works (CI smoke, < 30 s).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STEPS = ("baseline", "validate", "ingest", "ingest-fresh", "validate-each", "ingest-each", "run-analysis", "qa-report")


def test_bench_scale_tiny(tmp_path: Path) -> None:
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_scale.py"), "--sizes", "tiny", "--centers", "1",
         "--formats", "csv", "--work", str(tmp_path / "work"), "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-2000:]
    doc = json.loads((out / "scale.json").read_text())
    assert doc["machine"]["nproc"] >= 1 and doc["machine"]["duckdb"]
    [res] = doc["results"]
    assert res["size"] == "tiny" and res["format"] == "csv"
    assert res["rows"]["labs"] > 1000 and res["total_rows"] > res["rows"]["labs"]
    for step in STEPS:
        r = res["steps"][step]
        assert r["seconds"] > 0
        assert r["rss_mb"] > 0
        assert r["cpu_s"] is not None
        assert r["ratio_s"] is not None and r["ratio_s"] > 0
        assert r["ratio_rss"] is not None and r["ratio_rss"] > 0
    assert res["steps"]["baseline"]["ratio_s"] == 1.0
    assert res["validate_plus_ingest_ratio"] > 0 and res["ingest_ratio"] > 0 and res["each_ingest_ratio"] > 0
    # the ingest step stored what validate kept, for every center (not a second validation)
    assert res["ingest_used_kept_validation"] == 1 and res["stage_mb"] > 0
    assert (out / "scale.png").stat().st_size > 0
    assert "validate + ingest (kept validation)" in proc.stdout


def test_bench_mapped_tiny(tmp_path: Path) -> None:
    """The mapped-path benchmark (issue 22) runs on a tiny center and records its ratios."""
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_mapped.py"), "--sizes", "tiny", "--shapes", "eu_leiden",
         "--no-profile", "--work", str(tmp_path / "work"), "--out", str(out)],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-2000:]
    doc = json.loads((out / "mapped.json").read_text())
    [res] = doc["results"]
    assert res["shape"] == "eu_leiden" and res["baseline_used"] == "baseline"  # DuckDB reads Latin-1 itself
    for step in ("baseline", "baseline-truth", "validate", "ingest", "truth-validate"):
        assert res["steps"][step]["seconds"] > 0 and res["steps"][step]["rss_mb"] > 0
    assert res["ratio"] > 0 and res["peak_rss_mb"] > 0
    assert "| eu_leiden | tiny |" in (out / "mapped.md").read_text()
