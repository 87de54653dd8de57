"""`ptrh demo`: the whole toolkit end to end on built-in synthetic data.

Each step runs the real `ptrh` command in a subprocess, exactly as a coordinator, an analyst and
a data manager would type it, so the demo shows (and tests) the product, not a shortcut.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.rule import Rule


@dataclass
class Step:
    title: str
    args: list[str]
    expect: tuple[int, ...] = (0,)
    why: str = ""


def ptrh(*args: str) -> list[str]:
    return [sys.executable, "-m", "ptrharmonize", *args]


def _run(step: Step, console: Console, quiet: bool) -> tuple[int, float]:
    console.print(Rule(f"[bold]{step.title}[/bold]", align="left"))
    console.print(f"[dim]$ ptrh {' '.join(step.args)}[/dim]")
    if step.why:
        console.print(f"[dim]{step.why}[/dim]")
    t0 = time.perf_counter()
    env = {**os.environ, "COLUMNS": str(max(shutil.get_terminal_size((120, 40)).columns, 120))}
    proc = subprocess.run(ptrh(*step.args), capture_output=quiet, text=True, env=env)
    dt = time.perf_counter() - t0
    if proc.returncode not in step.expect:
        if quiet:
            console.print(proc.stdout[-4000:])
            console.print(proc.stderr[-4000:])
        raise RuntimeError(f"step '{step.title}' exited {proc.returncode} (expected {step.expect})")
    console.print(f"[green]done[/green] in {dt:.1f} s (exit {proc.returncode})")
    return proc.returncode, dt


def run_demo(out: Path, patients: int = 40, centers: int | None = None, seed: int = 20240601, quiet: bool = False,
             console: Console | None = None, on_step: Callable[[str], None] | None = None) -> dict[str, object]:
    console = console or Console(soft_wrap=True)
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    store = out / "registry.duckdb"
    for stale in (store, Path(str(store) + ".wal")):
        if stale.exists():
            stale.unlink()
    paper = out / "paper-cohort"
    dirty = out / "submissions-with-defects"
    clean = out / "submissions"
    issues = out / "issues"
    issues.mkdir(exist_ok=True)
    t_all = time.perf_counter()
    timings: dict[str, float] = {}

    def step(s: Step) -> int:
        code, dt = _run(s, console, quiet)
        timings[s.title] = dt
        if on_step:
            on_step(s.title)
        return code

    step(Step("1. Generate the calibrated study cohort (44 patients)", ["synth", "paper", "--out", str(paper)]))
    how_many = [] if centers is None else ["--centers", str(centers)]  # default: one center per mapping
    step(Step("2. Generate demo centers with planted defects",
              ["synth", "centers", "--out", str(dirty), "--patients-per-center", str(patients), *how_many,
               "--seed", str(seed), "--defects"]))
    manifest = json.loads((dirty / "manifest.json").read_text())
    for c in manifest["centers"]:
        key = c["key"] if "key" in c else Path(c["folder"]).name
        step(Step(f"3. Validate {c['center_id']} ({c['shape']}) through its mapping",
                  ["validate", str(dirty / "centers" / key), "--mapping", str(dirty / "mappings" / f"{key}.yaml"),
                   "--max-issues", "4", "--output", str(issues / f"{key}-issues.csv"), "--quiet"],
                  expect=(0, 1), why="Exit 1 when errors are found (0 when the center sent clean data); "
                  "the list for the center is written as CSV."))
    first = manifest["centers"][0]
    first_key = first["key"] if "key" in first else Path(first["folder"]).name
    step(Step(f"4. QA report of one submission before ingest ({first['center_id']})",
              ["qa-report", str(dirty / "centers" / first_key), "--mapping", str(dirty / "mappings" / f"{first_key}.yaml"),
               "--out", str(out / f"qa-submission-{first_key}.html"), "--quiet"]))
    step(Step("5. Generate the corrected submissions",
              ["synth", "centers", "--out", str(clean), "--patients-per-center", str(patients), *how_many,
               "--seed", str(seed)]))
    step(Step("6. Ingest the study cohort (canonical extract)", ["ingest", str(paper), "--store", str(store), "--quiet"]))
    folders, maps = [], []
    for c in json.loads((clean / "manifest.json").read_text())["centers"]:
        key = c["key"] if "key" in c else Path(c["folder"]).name
        folders.append(str(clean / "centers" / key))
        maps += ["--mapping", str(clean / "mappings" / f"{key}.yaml")]
    kept = out / "kept"
    step(Step("7. Validate every corrected submission in one call, keeping the checked data",
              ["validate", *folders, *maps, "--stage", str(kept), "--max-issues", "2", "--quiet"],
              expect=(0,), why="One call for all the centers (one issue list each); --stage keeps what was "
              "checked for the ingest."))
    step(Step("8. Ingest them in one call from what validate kept",
              ["ingest", *folders, *maps, "--stage", str(kept), "--store", str(store), "--quiet"],
              why="Each center in its own transaction; the files' checksums are verified against the kept validation, nothing is parsed again."))
    step(Step("9. The registry", ["status", "--store", str(store)]))
    step(Step("10. Every analysis of the study on the pooled registry",
              ["run-analysis", "--store", str(store), "--out", str(out / "results"), "--quiet"]))
    step(Step("11. QA report of the registry",
              ["qa-report", "--store", str(store), "--out", str(out / "qa.html"), "--issues-dir", str(issues), "--quiet"]))
    step(Step("12. Reproduce the study number by number", ["reproduce", "--out", str(out / "reproduction"), "--quiet"]))
    total = time.perf_counter() - t_all
    where = {
        "store": store,
        "results": out / "results" / "results.json",
        "tables and figures": out / "results",
        "QA report (registry)": out / "qa.html",
        "QA report (one submission)": out / f"qa-submission-{first_key}.html",
        "issue lists for the centers": issues,
        "reproduction": out / "reproduction" / "reproduction.html",
    }
    console.print(Rule("[bold]Where the results are[/bold]", align="left"))
    for k, v in where.items():
        console.print(f"  {k:30} {v}")
    console.print(f"demo finished in {total:.1f} s")
    return {"seconds": total, "timings": timings, "paths": {k: str(v) for k, v in where.items()}}
