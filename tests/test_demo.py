"""`ptrh demo`: the main job, end to end, as a newcomer runs it (real subprocess)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

from ptrharmonize.synth.centers import demo_mappings


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "ptrharmonize", "demo", "--out", str(out), "--patients", "12"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stdout + proc.stderr
    results = json.loads((out / "results" / "results.json").read_text())
    assert {"ptr_by_group", "cart_characteristics", "bleeding_cuminc"} <= set(results["analyses"])
    shapes = len(demo_mappings())  # one demo center per shipped mapping (five: CSV x2, Excel, SPSS, REDCap)
    assert shapes == 5 and len(results["submissions"]) == 1 + shapes  # the study cohort + the demo centers
    for f in ("qa.html", "reproduction/reproduction.html", "reproduction/reproduction.md"):
        assert (out / f).stat().st_size > 1000
    # the planted defects were caught and listed for the centers
    lists = {p.name.removesuffix("-issues.csv"): p for p in (out / "issues").glob("*-issues.csv")}
    assert len(lists) == shapes and "us_seattle" in lists
    planted = json.loads((out / "submissions-with-defects" / "defects.json").read_text())
    assert planted
    for d in planted:
        with lists[d["center"]].open(encoding="utf-8-sig") as fh:  # a BOM, for Excel on Windows
            found = {(r["rule_id"], r["file"], r["row"]) for r in csv.DictReader(fh)}
        assert (d["rule_id"], d["file"], str(d["row"])) in found, d
    assert "source_column" in next(iter(lists.values())).read_text().splitlines()[0]
    assert "demo finished" in proc.stdout
