"""Registry-scale benchmark: validate, ingest, analyse and report next to a bare DuckDB load.

For each size (1x, 4x, 16x of a base registry) and each format (CSV, Parquet) this script
generates canonical extracts (`ptrharmonize.synth.scale`, one folder per center) and measures,
each step as a child process (wall seconds and peak RSS of the child):

  baseline      bare DuckDB `CREATE TABLE t AS SELECT * FROM read_csv|read_parquet(<center>/*/t.*)`
                in a fresh DuckDB file, every table
  validate      `ptrh validate <every center> --stage K`: one call for the registry's submissions,
                keeping the checked data in K
  ingest        `ptrh ingest <every center> --stage K --store S`: stores what validate kept (the
                files are checksummed, not parsed again); validate + ingest is the path from files
                to store when a coordinator checks before storing
  ingest-fresh  `ptrh ingest <every center> --store S2` without a kept validation: validates and
                stores in one call (the path from files to store in one command)
  validate-each, ingest-each
                the same as one call per center (what the fixed cost of a call adds)
  run-analysis  `ptrh run-analysis --store S`
  qa-report     `ptrh qa-report --store S`

and each step's ratio to the baseline of the same files. At the largest size it also measures
the column-check back ends (pandera vs polars, in-process on the same staged data) and where the
validation time goes (staging, column checks, row rules, identifier scan, DuckDB cross-table
rules). Results: `benchmarks/results/scale.json`, `benchmarks/results/scale.png` (cost against
size, log-log) and a table on stdout.

    python benchmarks/bench_scale.py                       # 1x, 4x, 16x; CSV and Parquet
    python benchmarks/bench_scale.py --sizes 16 --formats csv
    python benchmarks/bench_scale.py --sizes tiny          # a few thousand rows (CI smoke)

No step's time is asserted anywhere: performance is measured here, not in unit tests.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from ptrharmonize.synth.scale import tolerances  # noqa: E402

BASE_PATIENTS = 3_125          # 1x: ~0.64 M lab rows; 16x: 50,000 patients, ~10.3 M lab rows
TINY_PATIENTS = 40             # CI smoke: a few thousand rows
STEPS = ("baseline", "validate", "ingest", "ingest-fresh", "validate-each", "ingest-each", "run-analysis", "qa-report")
TABLES = ("patients", "treatments", "transfusions", "labs", "crs_assessments", "bleeding_events",
          "medications", "infections", "outcomes")
_SCRIPT = Path(sys.executable).parent / "ptrh"
PTRH = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m", "ptrharmonize.cli"]

BASELINE_CODE = textwrap.dedent(
    """
    import sys, duckdb
    db, root, fmt = sys.argv[1], sys.argv[2], sys.argv[3]
    con = duckdb.connect(db)
    reader = "read_csv" if fmt == "csv" else "read_parquet"
    for t in sys.argv[4:]:
        con.execute(f"CREATE TABLE {t} AS SELECT * FROM {reader}('{root}/*/{t}.{fmt}')").fetchall()
    con.execute("CHECKPOINT").fetchall()
    con.close()
    """
)

GENERATE_CODE = textwrap.dedent(
    """
    import dataclasses, json, sys
    from pathlib import Path
    from ptrharmonize.synth.scale import generate_registry
    root, patients, centers, fmt, seed = sys.argv[1:6]
    st = generate_registry(Path(root), patients=int(patients), centers=int(centers), fmt=fmt, seed=int(seed))
    print(json.dumps(dataclasses.asdict(st)))
    """
)

# The validation engine in-process on one center, timing its phases (pandera vs polars).
PHASES_CODE = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from ptrharmonize.cli import load_submission
    from ptrharmonize.validate import Engine
    from ptrharmonize.validate.thresholds import load_thresholds
    from ptrharmonize.cdm import load_catalog
    from ptrharmonize.validate.rules import all_rules
    folder, engine, th = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    cat = load_catalog()
    t0 = time.perf_counter()
    sub = load_submission(folder, None)
    eng = Engine(cat, column_engine=engine, thresholds=load_thresholds(th, {r.id for r in all_rules(cat)}))
    res = eng.validate(sub)
    total = time.perf_counter() - t0
    print(json.dumps({"engine": engine, "seconds": total, "phases": getattr(eng, "timings", {}),
                      "column_backends": getattr(eng, "column_backends", {}),
                      "issues": res.issues.height, "rows": res.rows,
                      "rules_failed": int((res.rules["failed"] > 0).sum())}))
    res.cleanup()
    """
)


# -- measuring a child process ---------------------------------------------------------------
def run_child(cmd: list[str], cwd: Path | None = None, ok_codes: tuple[int, ...] = (0,),
              env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run `cmd`; wall seconds, peak RSS (MB) of the child tree, exit code, stdout."""
    import psutil

    out = tempfile.TemporaryFile()
    err = tempfile.TemporaryFile()
    own_rss = psutil.Process().memory_info().rss
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=err, env=env)
    peak = 0
    try:
        ps = psutil.Process(proc.pid)
    except psutil.NoSuchProcess:  # pragma: no cover - finished before we looked
        ps = None
    status, ru = 0, None
    while True:
        # wait4 reaps the child and gives its rusage: ru_maxrss is the kernel's peak (KiB),
        # which catches spikes between two polls.
        pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if ps is not None:
            try:
                rss = ps.memory_info().rss + sum(c.memory_info().rss for c in ps.children(recursive=True))
                peak = max(peak, rss)
            except psutil.Error:
                pass
        time.sleep(0.02)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    kernel_peak = ru.ru_maxrss * 1024 if ru is not None else 0
    if kernel_peak <= own_rss:  # only the copy of this process the child started as
        kernel_peak = 0
    out.seek(0)
    err.seek(0)
    stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if proc.returncode not in ok_codes or "Traceback (most recent call last)" in stderr:
        # A crash that happens to exit 1 (validate's "errors found") must not pass as a measure.
        raise RuntimeError(f"{' '.join(map(str, cmd))} exited {proc.returncode}:\n{stderr[-3000:]}\n{stdout[-2000:]}")
    cpu = (ru.ru_utime + ru.ru_stime) if ru is not None else None
    return {"seconds": wall, "cpu_s": cpu, "rss_mb": max(peak, kernel_peak) / 2**20,
            "polled_rss_mb": peak / 2**20, "code": proc.returncode, "stdout": stdout,
            "stderr": stderr}


def run_steps(cmds: list[list[str]], ok_codes: tuple[int, ...] = (0,)) -> dict[str, Any]:
    """Several invocations of one step (one per center): total seconds, max RSS."""
    runs = [run_child(c, ok_codes=ok_codes) for c in cmds]
    return {
        "seconds": sum(r["seconds"] for r in runs),
        "cpu_s": sum(r["cpu_s"] or 0.0 for r in runs),
        "rss_mb": max(r["rss_mb"] for r in runs),
        "invocations": len(runs),
        "per_invocation_s": [round(r["seconds"], 3) for r in runs],
    }


def getrusage_children_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


# -- data ----------------------------------------------------------------------------------
def dataset(work: Path, patients: int, centers: int, fmt: str, seed: int) -> tuple[Path, dict[str, Any]]:
    """Generate (or reuse) a registry of canonical center extracts."""
    root = work / "data" / f"{fmt}_p{patients}_c{centers}_s{seed}"
    meta = root / "_meta.json"
    if meta.is_file():
        return root, json.loads(meta.read_text())
    if root.exists():
        shutil.rmtree(root)
    # In a child process: the benchmark process stays small, so that a measured child's kernel
    # peak RSS (which Linux seeds with the parent's at fork) is the child's own.
    r = run_child([sys.executable, "-c", GENERATE_CODE, str(root), str(patients), str(centers), fmt, str(seed)])
    st = json.loads(r["stdout"].strip().splitlines()[-1])
    info = {"patients": st["patients"], "centers": st["centers"], "rows": st["rows"], "bytes": st["bytes"],
            "generate_s": round(st["seconds"], 2)}
    meta.write_text(json.dumps(info))
    return root, info


def center_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir())


# -- one size, one format --------------------------------------------------------------------
def bench_one(work: Path, label: str, mult: float, patients: int, centers: int, fmt: str, seed: int,
              engine: str, steps: tuple[str, ...], log) -> dict[str, Any]:
    root, info = dataset(work, patients, centers, fmt, seed)
    th = tolerances(work / "thresholds.csv")
    run_dir = work / "runs" / f"{label}_{fmt}"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    store = run_dir / "registry.duckdb"
    stage = run_dir / "kept"
    res: dict[str, Any] = {"size": label, "multiplier": mult, "format": fmt, "engine": engine, **info,
                           "total_rows": sum(info["rows"].values()), "steps": {}}
    log(f"[{label} {fmt}] {info['patients']:,} patients, {info['centers']} centers, "
        f"{info['rows']['labs']:,} lab rows, {info['rows']['transfusions']:,} transfusions, "
        f"{info['bytes'] / 2**20:,.0f} MB")
    centers_ = center_dirs(root)
    for step in steps:
        if step == "baseline":
            db = run_dir / "baseline.duckdb"
            r = run_child([sys.executable, "-c", BASELINE_CODE, str(db), str(root), fmt, *TABLES])
            db.unlink(missing_ok=True)
        elif step == "validate":
            r = run_child([*PTRH, "validate", *map(str, centers_), "--stage", str(stage), "--thresholds", str(th),
                           "--engine", engine, "--quiet"], ok_codes=(0, 1))
            res["stage_mb"] = sum(f.stat().st_size for f in stage.rglob("*") if f.is_file()) / 2**20
        elif step == "ingest":
            r = run_child([*PTRH, "ingest", *map(str, centers_), "--store", str(store), "--stage", str(stage),
                           "--thresholds", str(th), "--engine", engine, "--quiet"])
            res["ingest_used_kept_validation"] = r["stdout"].count("storing the validation kept") + r.get(
                "stderr", "").count("storing the validation kept")
        elif step == "ingest-fresh":
            r = run_child([*PTRH, "ingest", *map(str, centers_), "--store", str(run_dir / "fresh.duckdb"),
                           "--thresholds", str(th), "--engine", engine, "--quiet"])
        elif step == "validate-each":
            r = run_steps([[*PTRH, "validate", str(c), "--thresholds", str(th), "--engine", engine, "--quiet"]
                           for c in centers_], ok_codes=(0, 1))
        elif step == "ingest-each":
            r = run_steps([[*PTRH, "ingest", str(c), "--store", str(run_dir / "each.duckdb"), "--thresholds",
                            str(th), "--engine", engine, "--quiet"] for c in centers_])
        elif step == "run-analysis":
            r = run_child([*PTRH, "run-analysis", "--store", str(store), "--out", str(run_dir / "analysis"),
                           "--quiet"])
        elif step == "qa-report":
            r = run_child([*PTRH, "qa-report", "--store", str(store), "--out", str(run_dir / "qa.html"),
                           "--quiet"])
        else:  # pragma: no cover - argparse restricts the choice
            raise ValueError(step)
        r.pop("stdout", None)
        r.pop("stderr", None)
        r.pop("code", None)
        r.pop("polled_rss_mb", None)
        res["steps"][step] = r
        log(f"    {step:<13} {r['seconds']:8.2f} s  {r['cpu_s']:8.2f} cpu-s  {r['rss_mb']:8.0f} MB")
    base = res["steps"].get("baseline")
    for r in res["steps"].values():
        if base:
            r["ratio_s"] = r["seconds"] / base["seconds"] if base["seconds"] else None
            r["ratio_cpu"] = r["cpu_s"] / base["cpu_s"] if base.get("cpu_s") else None
            r["ratio_rss"] = r["rss_mb"] / base["rss_mb"] if base["rss_mb"] else None
        r["rows_per_s"] = res["total_rows"] / r["seconds"] if r["seconds"] else None
    st = res["steps"]
    if base and "validate" in st and "ingest" in st:
        v, i = st["validate"], st["ingest"]
        res["validate_plus_ingest_ratio"] = (v["seconds"] + i["seconds"]) / base["seconds"]
        if base.get("cpu_s"):
            res["validate_plus_ingest_ratio_cpu"] = (v["cpu_s"] + i["cpu_s"]) / base["cpu_s"]
    if base and "ingest-fresh" in st:
        res["ingest_ratio"] = st["ingest-fresh"]["seconds"] / base["seconds"]
        if base.get("cpu_s"):
            res["ingest_ratio_cpu"] = st["ingest-fresh"]["cpu_s"] / base["cpu_s"]
    if base and "validate-each" in st and "ingest-each" in st:
        res["each_validate_plus_ingest_ratio"] = (st["validate-each"]["seconds"] + st["ingest-each"]["seconds"]) / base["seconds"]
        res["each_ingest_ratio"] = st["ingest-each"]["seconds"] / base["seconds"]
    if store.exists():
        res["store_mb"] = store.stat().st_size / 2**20
    return res


def engine_phases(work: Path, patients: int, centers: int, fmt: str, seed: int) -> dict[str, Any]:
    """Validation of the largest center in-process with each column back end, phase by phase."""
    root, _ = dataset(work, patients, centers, fmt, seed)
    th = tolerances(work / "thresholds.csv")
    biggest = max(center_dirs(root), key=lambda c: sum(f.stat().st_size for f in c.iterdir()))
    out: dict[str, Any] = {"center": biggest.name, "format": fmt}
    for engine in ("polars", "pandera", "auto"):
        r = run_child([sys.executable, "-c", PHASES_CODE, str(biggest), engine, str(th)])
        doc = json.loads(r["stdout"].strip().splitlines()[-1])
        doc["rss_mb"] = r["rss_mb"]
        doc["wall_s"] = r["seconds"]
        out[engine] = doc
    return out


# -- output --------------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    import duckdb
    import pandera
    import polars
    import psutil
    import pyarrow

    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu or platform.processor(),
        "ram_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "polars": polars.__version__,
        "pandera": pandera.__version__,
        "pyarrow": pyarrow.__version__,
        "load_average_start": list(os.getloadavg()),
    }


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        f"{'size':<5} {'fmt':<7} {'lab rows':>11} {'step':<13} {'wall s':>8} {'x base':>7} "
        f"{'cpu s':>8} {'x base':>7} {'peak MB':>8} {'x base':>7} {'rows/s':>11}",
    ]
    for res in results:
        first = True
        for step, r in res["steps"].items():
            lead = (f"{res['size']:<5} {res['format']:<7} {res['rows']['labs']:>11,}" if first
                    else f"{'':<5} {'':<7} {'':>11}")
            first = False
            ratio_s = f"{r['ratio_s']:.2f}" if r.get("ratio_s") is not None else "-"
            ratio_m = f"{r['ratio_rss']:.2f}" if r.get("ratio_rss") is not None else "-"
            ratio_c = f"{r['ratio_cpu']:.2f}" if r.get("ratio_cpu") is not None else "-"
            lines.append(f"{lead} {step:<13} {r['seconds']:>8.2f} {ratio_s:>7} {r['cpu_s'] or 0:>8.2f} "
                         f"{ratio_c:>7} {r['rss_mb']:>8.0f} {ratio_m:>7} {r['rows_per_s'] or 0:>11,.0f}")
        if "validate_plus_ingest_ratio" in res:
            lines.append(f"{'':<25} validate + ingest (kept validation) = {res['validate_plus_ingest_ratio']:.2f} x baseline "
                         f"(cpu {res.get('validate_plus_ingest_ratio_cpu', 0):.2f} x)")
        if "ingest_ratio" in res:
            lines.append(f"{'':<25} ingest-fresh (validates and stores) = {res['ingest_ratio']:.2f} x "
                         f"(cpu {res.get('ingest_ratio_cpu', 0):.2f} x)")
        if "each_validate_plus_ingest_ratio" in res:
            lines.append(f"{'':<25} one call per center: validate-each + ingest-each = "
                         f"{res['each_validate_plus_ingest_ratio']:.2f} x, ingest-each = {res['each_ingest_ratio']:.2f} x")
    return "\n".join(lines)


def _fmt(r: dict[str, Any], key: str, digits: int = 2) -> str:
    return f"{r[key]:.{digits}f}" if r.get(key) is not None else "-"


def markdown(doc: dict[str, Any]) -> str:
    """The figures of a run as Markdown tables (pasted into benchmarks/RESULTS.md)."""
    lines = ["| size | format | patients | lab rows | transfusions | input MB | step | wall s | x baseline "
             "| cpu s | x baseline | peak RSS MB | x baseline | rows/s |",
             "|---|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for res in doc["results"]:
        for step, r in res["steps"].items():
            lines.append(
                f"| {res['size']} | {res['format']} | {res['patients']:,} | {res['rows']['labs']:,} "
                f"| {res['rows']['transfusions']:,} | {res['bytes'] / 2**20:,.0f} | {step} | {r['seconds']:.2f} "
                f"| {_fmt(r, 'ratio_s')} | {_fmt(r, 'cpu_s', 1)} | {_fmt(r, 'ratio_cpu')} | {r['rss_mb']:,.0f} "
                f"| {_fmt(r, 'ratio_rss')} "
                f"| {r['rows_per_s'] or 0:,.0f} |")
    lines += ["", "| size | format | validate + ingest, kept validation (x baseline, wall) | (x, cpu) "
              "| ingest-fresh (x, wall) | (x, cpu) | validate-each + ingest-each (x, wall) | ingest-each (x, wall) "
              "| kept MB | store MB |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for res in doc["results"]:
        if "validate_plus_ingest_ratio" in res:
            lines.append(
                f"| {res['size']} | {res['format']} | {res['validate_plus_ingest_ratio']:.2f} "
                f"| {res.get('validate_plus_ingest_ratio_cpu', 0):.2f} | {res.get('ingest_ratio', 0):.2f} "
                f"| {res.get('ingest_ratio_cpu', 0):.2f} | {res.get('each_validate_plus_ingest_ratio', 0):.2f} "
                f"| {res.get('each_ingest_ratio', 0):.2f} | {res.get('stage_mb', 0):,.0f} | {res.get('store_mb', 0):,.0f} |")
    if doc.get("marginal"):
        lines += ["", "Marginal cost between the two largest sizes (seconds per million added rows; x baseline):", "",
                  "| format | " + " | ".join(STEPS) + " | validate + ingest |", "|---|" + "---:|" * (len(STEPS) + 1)]
        for fmt, per in doc["marginal"].items():
            cells = [f"{per[k]['s_per_million_rows']:.2f} ({per[k].get('ratio', 0):.2f} x)" if k in per else "-"
                     for k in STEPS]
            lines.append(f"| {fmt} ({per['from']} to {per['to']}) | " + " | ".join(cells)
                         + f" | {per.get('validate_plus_ingest_ratio', 0):.2f} x |")
    if doc.get("engines"):
        e = doc["engines"]
        engines = [x for x in ("polars", "pandera", "auto") if x in e]
        phases = sorted({k for x in engines for k in e[x]["phases"]})
        lines += ["", f"Validation of the largest center ({e['center']}, {e['format']}) in-process, seconds per phase:",
                  "", "| back end | total s | peak RSS MB | " + " | ".join(phases) + " |",
                  "|---|---:|---:|" + "---:|" * len(phases)]
        for x in engines:
            d = e[x]
            lines.append(f"| {x} | {d['seconds']:.2f} | {d['rss_mb']:,.0f} | "
                         + " | ".join(f"{d['phases'].get(k, 0):.2f}" for k in phases) + " |")
    return "\n".join(lines) + "\n"


def plot(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fmts = sorted({r["format"] for r in results})
    fig, axes = plt.subplots(2, len(fmts), figsize=(6 * len(fmts), 8), squeeze=False)
    for j, fmt in enumerate(fmts):
        rs = sorted((r for r in results if r["format"] == fmt), key=lambda r: r["total_rows"])
        x = [r["total_rows"] for r in rs]
        for key, ax, ylabel in (("seconds", axes[0][j], "wall seconds"), ("rss_mb", axes[1][j], "peak RSS (MB)")):
            for step in STEPS:
                ys = [r["steps"].get(step, {}).get(key) for r in rs]
                if any(y is None for y in ys):
                    continue
                ax.plot(x, ys, marker="o", label=step, linestyle="--" if step == "baseline" else "-")
            if key == "seconds" and len(x) > 1:
                # slope 1 guide: linear cost
                y0 = rs[0]["steps"].get("baseline", {}).get("seconds")
                if y0:
                    ax.plot([x[0], x[-1]], [y0, y0 * x[-1] / x[0]], color="grey", linewidth=0.8,
                            linestyle=":", label="linear (slope 1)")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("rows in the registry (all tables)")
            ax.set_ylabel(ylabel)
            ax.set_title(f"{fmt}: {ylabel} against size")
            ax.grid(True, which="both", linewidth=0.3)
            ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def slopes(results: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """log-log slope of seconds and RSS against rows, smallest to largest size, per format and step."""
    import math

    out: dict[str, dict[str, float]] = {}
    for fmt in sorted({r["format"] for r in results}):
        rs = sorted((r for r in results if r["format"] == fmt), key=lambda r: r["total_rows"])
        if len(rs) < 2:
            continue
        a, b = rs[0], rs[-1]
        dx = math.log(b["total_rows"] / a["total_rows"])
        for step in STEPS:
            if step in a["steps"] and step in b["steps"]:
                s = math.log(b["steps"][step]["seconds"] / a["steps"][step]["seconds"]) / dx
                m = math.log(b["steps"][step]["rss_mb"] / a["steps"][step]["rss_mb"]) / dx
                out.setdefault(fmt, {})[step] = {"time_slope": round(s, 3), "rss_slope": round(m, 3)}
    return out


def marginal(results: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Cost of the added rows between the two largest sizes, per format: seconds per million rows
    and the ratio to the baseline's. The fixed cost of each `ptrh` call (interpreter, imports,
    catalog: ~1.5 s, paid once per center) cancels out, which leaves what grows with the data."""
    out: dict[str, dict[str, Any]] = {}
    for fmt in sorted({r["format"] for r in results}):
        rs = sorted((r for r in results if r["format"] == fmt), key=lambda r: r["total_rows"])
        if len(rs) < 2:
            continue
        a, b = rs[-2], rs[-1]
        d_rows = (b["total_rows"] - a["total_rows"]) / 1e6
        per: dict[str, Any] = {"from": a["size"], "to": b["size"], "added_million_rows": round(d_rows, 3)}
        for step in STEPS:
            if step in a["steps"] and step in b["steps"]:
                ds = b["steps"][step]["seconds"] - a["steps"][step]["seconds"]
                per[step] = {"s_per_million_rows": round(ds / d_rows, 3)}
        base = per.get("baseline", {}).get("s_per_million_rows")
        for step in STEPS:
            if step in per and base:
                per[step]["ratio"] = round(per[step]["s_per_million_rows"] / base, 2)
        if base and "validate" in per and "ingest" in per:
            per["validate_plus_ingest_ratio"] = round(
                (per["validate"]["s_per_million_rows"] + per["ingest"]["s_per_million_rows"]) / base, 2)
        out[fmt] = per
    return out


def parse_sizes(text: str) -> list[tuple[str, float, int]]:
    if text == "tiny":
        return [("tiny", TINY_PATIENTS / BASE_PATIENTS, TINY_PATIENTS)]
    out = []
    for part in text.split(","):
        m = float(part)
        out.append((f"{part}x", m, int(round(BASE_PATIENTS * m))))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1,4,16", help="multipliers of the base (3,125 patients), or 'tiny'")
    ap.add_argument("--centers", type=int, default=4, help="centers per registry (one ptrh call each)")
    ap.add_argument("--formats", default="csv,parquet")
    ap.add_argument("--engine", default="auto", choices=("auto", "pandera", "polars"),
                    help="column-check back end for validate/ingest (default: the CLI's default, auto)")
    ap.add_argument("--steps", default=",".join(STEPS))
    ap.add_argument("--phases", action=argparse.BooleanOptionalAction, default=None,
                    help="measure pandera vs polars in-process at the largest size (default: on unless tiny)")
    ap.add_argument("--seed", type=int, default=20240101)
    ap.add_argument("--work", type=Path, default=None, help="folder for data and stores (default: a temp folder)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("--out", type=Path, default=HERE / "results", help="where scale.json and scale.png go")
    ap.add_argument("--json-name", default="scale.json")
    ap.add_argument("--no-plot", action="store_true")
    args = ap.parse_args(argv)

    sizes = parse_sizes(args.sizes)
    fmts = [f.strip() for f in args.formats.split(",") if f.strip()]
    steps = tuple(s.strip() for s in args.steps.split(",") if s.strip())
    bad = [s for s in steps if s not in STEPS]
    if bad:
        ap.error(f"unknown steps {bad}; choose from {STEPS}")
    work = args.work or Path(tempfile.mkdtemp(prefix="ptrh-bench-"))
    work.mkdir(parents=True, exist_ok=True)

    def log(msg: str) -> None:
        print(msg, flush=True)

    doc: dict[str, Any] = {"machine": machine(), "base_patients": BASE_PATIENTS, "centers": args.centers,
                           "engine": args.engine, "started": time.strftime("%Y-%m-%dT%H:%M:%S"), "results": []}
    try:
        for label, mult, patients in sizes:
            centers = min(args.centers, patients)
            for fmt in fmts:
                doc["results"].append(bench_one(work, label, mult, patients, centers, fmt, args.seed,
                                                args.engine, steps, log))
        phases = args.phases if args.phases is not None else sizes[-1][0] != "tiny"
        if phases:
            label, mult, patients = sizes[-1]
            log(f"[{label}] column-check back ends, in-process, largest center (csv)")
            doc["engines"] = engine_phases(work, patients, min(args.centers, patients), fmts[0], args.seed)
            for e in ("polars", "pandera", "auto"):
                d = doc["engines"][e]
                log(f"    {e:<8} {d['seconds']:7.2f} s  {d['rss_mb']:6.0f} MB  "
                    + "  ".join(f"{k} {v:.2f}" for k, v in d["phases"].items()))
        doc["slopes"] = slopes(doc["results"])
        doc["marginal"] = marginal(doc["results"])
        doc["machine"]["load_average_end"] = list(os.getloadavg())
        doc["machine"]["children_max_rss_mb"] = getrusage_children_mb()
        doc["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    finally:
        if not args.keep and args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / args.json_name).write_text(json.dumps(doc, indent=2))
    (args.out / (Path(args.json_name).stem + ".md")).write_text(markdown(doc))
    if not args.no_plot:
        plot(doc["results"], args.out / (Path(args.json_name).stem + ".png"))
    print()
    print(table(doc["results"]))
    if doc.get("slopes"):
        print("\nlog-log slope (1 = linear) from the smallest to the largest size:")
        for fmt, per in doc["slopes"].items():
            print(f"  {fmt}: " + ", ".join(f"{k} time {v['time_slope']:.2f} / RSS {v['rss_slope']:.2f}"
                                           for k, v in per.items()))
    if doc.get("marginal"):
        print("\nmarginal cost between the two largest sizes (seconds per million added rows, x baseline):")
        for fmt, per in doc["marginal"].items():
            print(f"  {fmt} ({per['from']} -> {per['to']}): " + ", ".join(
                f"{k} {v['s_per_million_rows']:.2f} s ({v.get('ratio', 0):.2f} x)" for k, v in per.items()
                if isinstance(v, dict)) + (f"; validate+ingest {per['validate_plus_ingest_ratio']:.2f} x"
                                           if "validate_plus_ingest_ratio" in per else ""))
    print(f"\nwritten: {args.out / args.json_name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
