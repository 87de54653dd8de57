"""The mapped path at scale: a center's own files through its mapping, next to a bare DuckDB load.

For each demo shape (every mapping in `mappings/`: GBK CSV, Latin-1 semicolon CSV with decimal
commas, one Excel workbook, SPSS files) and each size (1x, 4x, 16x of a base center; 16x is a
center of 10,000 patients, ~1.7 M lab rows) this script generates ONE center from that mapping
alone (`ptrh synth centers`' generator) and measures, each step as a child process (wall seconds,
CPU seconds, peak RSS of the child):

  baseline        bare DuckDB load of the center's own files where DuckDB reads them itself:
                  `read_csv` with the file's delimiter, encoding, decimal mark and header row
                  (UTF-8 and Latin-1 only: DuckDB has no GBK decoder without a downloaded
                  extension, and reads neither SPSS nor, offline, Excel)
  baseline-truth  bare DuckDB `read_csv` of the canonical truth of the same records (every shape)
  validate        `ptrh validate <center> --mapping M --stage K`
  ingest          `ptrh ingest <center> --mapping M --stage K --store S` (stores what validate kept)
  truth-validate  `ptrh validate <truth>` (the canonical path on the same records, for reference)

Ratios are against `baseline` where DuckDB can read the files, else against `baseline-truth`
(said in the output). Also, on the largest size, where a mapped validation spends its CPU
(`profile_validate.py`: mapping plan, the engine's phases, the missing-data block, peak RSS after
each). Each center's load average is recorded beside its figures.
Results: `benchmarks/results/mapped.json` and `mapped.md`.

    python benchmarks/bench_mapped.py                    # every shape at 1x, 4x, 16x
    python benchmarks/bench_mapped.py --sizes tiny       # CI smoke

No time is asserted anywhere: performance is measured here, not in unit tests.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from bench_scale import PTRH, TABLES, machine, run_child  # noqa: E402

BASE_PATIENTS = 625  # 16x = 10,000 patients (the center of issue 22)
TINY_PATIENTS = 8

GENERATE_CODE = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from ptrharmonize.synth.centers import generate_centers
    out, mapping, patients = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    t0 = time.perf_counter()
    m = generate_centers(out, patients_per_center=patients, seed=22, centers=1, mappings=[mapping])
    print(json.dumps({"rows": m["centers"][0]["rows"], "seconds": time.perf_counter() - t0}))
    """
)

# DuckDB reads the center's own CSV files (no mapping: its own column names, all as loaded).
BASELINE_CODE = textwrap.dedent(
    """
    import json, sys, duckdb
    db, spec = sys.argv[1], json.loads(sys.argv[2])
    con = duckdb.connect(db)
    for i, f in enumerate(spec):
        opts = f"delim = '{f['delim']}', header = true, skip = {f['skip']}, encoding = '{f['encoding']}'"
        if f["decimal"] == ",":
            opts += ", decimal_separator = ','"
        con.execute(f"CREATE TABLE t{i} AS SELECT * FROM read_csv('{f['path']}', {opts})").fetchall()
    con.execute("CHECKPOINT").fetchall()
    con.close()
    """
)

TRUTH_BASELINE_CODE = textwrap.dedent(
    """
    import sys, duckdb
    from pathlib import Path
    db, root = sys.argv[1], Path(sys.argv[2])
    con = duckdb.connect(db)
    for f in sorted(root.glob("*.csv")):
        con.execute(f"CREATE TABLE {f.stem} AS SELECT * FROM read_csv('{f}')").fetchall()
    con.execute("CHECKPOINT").fetchall()
    con.close()
    """
)

def _mapping_doc(path: Path) -> dict[str, Any]:
    from ptrharmonize.mapping import load_mapping

    return load_mapping(path)


def duckdb_spec(center: Path, mapping: Path) -> list[dict[str, Any]] | None:
    """What DuckDB's read_csv needs for each of the center's files, or None when DuckDB cannot
    read them itself (GBK, SPSS, Excel)."""
    from ptrharmonize.cdm import load_catalog
    from ptrharmonize.mapping import parse_mapping
    from ptrharmonize.read import format_of

    m = parse_mapping(_mapping_doc(mapping), mapping, load_catalog())
    spec, seen = [], set()
    for b in m.blocks:
        if b.file in seen:
            continue
        seen.add(b.file)
        if format_of(Path(b.file), b.fmt) != "csv":
            return None
        enc = str(b.reader_options.get("encoding") or "utf-8").lower().replace("_", "-")
        if enc in ("latin-1", "latin1", "iso-8859-1", "cp1252"):
            enc = "latin-1"
        elif enc not in ("utf-8", "utf8", "utf-8-sig"):
            return None
        dec = next((cm.decimal for cm in b.columns.values()), ".")
        spec.append({"path": str(center / b.file), "delim": b.reader_options.get("delimiter") or ",",
                     "encoding": "utf-8" if enc.startswith("utf") else enc, "decimal": dec,
                     "skip": int(b.reader_options.get("header_row") or 1) - 1})
    return spec


def bench_shape(work: Path, mapping: Path, label: str, mult: float, patients: int, log,
                with_truth: bool = True) -> dict[str, Any]:
    shape = mapping.stem
    out = work / f"{shape}_{label}"
    if out.exists():
        shutil.rmtree(out)
    g = run_child([sys.executable, "-c", GENERATE_CODE, str(out), str(mapping), str(patients)])
    gen = json.loads(g["stdout"].strip().splitlines()[-1])
    center, truth, cmap = out / "centers" / shape, out / "truth" / shape, out / "mappings" / f"{shape}.yaml"
    nbytes = sum(f.stat().st_size for f in center.rglob("*") if f.is_file())
    res: dict[str, Any] = {"shape": shape, "size": label, "multiplier": mult, "patients": patients,
                           "load_average_start": list(os.getloadavg()),
                           "rows": gen["rows"], "total_rows": sum(gen["rows"].values()), "bytes": nbytes,
                           "generate_s": round(gen["seconds"], 2), "steps": {}}
    log(f"[{shape} {label}] {patients:,} patients, {gen['rows'].get('labs', 0):,} lab rows, "
        f"{nbytes / 2**20:,.1f} MB of the center's files (generated in {gen['seconds']:.0f} s)")
    run = out / "run"
    run.mkdir()
    spec = duckdb_spec(center, cmap)
    steps: dict[str, list[str]] = {}
    if spec is not None:
        steps["baseline"] = [sys.executable, "-c", BASELINE_CODE, str(run / "b.duckdb"), json.dumps(spec)]
    steps["baseline-truth"] = [sys.executable, "-c", TRUTH_BASELINE_CODE, str(run / "t.duckdb"), str(truth)]
    steps["validate"] = [*PTRH, "validate", str(center), "--mapping", str(cmap), "--stage", str(run / "kept"), "--quiet"]
    steps["ingest"] = [*PTRH, "ingest", str(center), "--mapping", str(cmap), "--stage", str(run / "kept"),
                       "--store", str(run / "s.duckdb"), "--quiet"]
    if with_truth:
        steps["truth-validate"] = [*PTRH, "validate", str(truth), "--quiet"]
    for step, cmd in steps.items():
        r = run_child(cmd, ok_codes=(0, 1))
        for k in ("stdout", "stderr", "code", "polled_rss_mb"):
            r.pop(k, None)
        res["steps"][step] = r
        log(f"    {step:<15} {r['seconds']:8.2f} s  {r['cpu_s'] or 0:8.2f} cpu-s  {r['rss_mb']:8.0f} MB")
    st = res["steps"]
    base_name = "baseline" if "baseline" in st else "baseline-truth"
    base = st[base_name]
    res["baseline_used"] = base_name
    res["mapped_validate_plus_ingest_s"] = st["validate"]["seconds"] + st["ingest"]["seconds"]
    res["ratio"] = res["mapped_validate_plus_ingest_s"] / base["seconds"]
    res["ratio_vs_truth_baseline"] = res["mapped_validate_plus_ingest_s"] / st["baseline-truth"]["seconds"]
    cpu = (st["validate"]["cpu_s"] or 0) + (st["ingest"]["cpu_s"] or 0)
    res["ratio_cpu"] = cpu / base["cpu_s"] if base.get("cpu_s") else None
    res["peak_rss_mb"] = max(st["validate"]["rss_mb"], st["ingest"]["rss_mb"])
    res["load_average_end"] = list(os.getloadavg())
    return res


def profile(work: Path, mapping: Path, label: str) -> dict[str, Any]:
    """`profile_validate.py` on the center: CPU seconds of each phase of one mapped validation,
    the missing-data block included, and the peak RSS after the engine and after the block."""
    shape = mapping.stem
    out = work / f"{shape}_{label}"
    r = run_child([sys.executable, str(HERE / "profile_validate.py"), str(out / "centers" / shape),
                   str(out / "mappings" / f"{shape}.yaml")], ok_codes=(0, 1))
    doc = json.loads(r["stdout"].strip().splitlines()[-1])
    doc["wall_s"], doc["rss_mb"], doc["load_average_end"] = r["seconds"], r["rss_mb"], list(os.getloadavg())
    return doc


def slope(results: list[dict[str, Any]], shape: str, key: str) -> float | None:
    rs = sorted((r for r in results if r["shape"] == shape), key=lambda r: r["total_rows"])
    if len(rs) < 2:
        return None
    a, b = rs[0], rs[-1]
    va, vb = (a["peak_rss_mb"], b["peak_rss_mb"]) if key == "rss" else (a["mapped_validate_plus_ingest_s"], b["mapped_validate_plus_ingest_s"])
    return math.log(vb / va) / math.log(b["total_rows"] / a["total_rows"])


def markdown(doc: dict[str, Any]) -> str:
    lines = [f"# Mapped path benchmark ({doc['started']})", "",
             f"{doc['machine'].get('nproc')} cores; one center per shape and size; ratios are (validate + ingest) / "
             "the bare DuckDB load of the same center's files (`baseline`), or of its canonical truth where DuckDB "
             "cannot read the files (`baseline-truth`: GBK, SPSS, Excel).", "",
             "| shape | size | patients | lab rows | MB | baseline s (CPU s) | validate s (CPU s) | ingest s (CPU s) | "
             "ratio (wall) | ratio (CPU) | vs truth load (wall) | peak RSS MB | truth validate s | load average |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in doc["results"]:
        st = r["steps"]
        lines.append(f"| {r['shape']} | {r['size']} | {r['patients']:,} | {r['rows'].get('labs', 0):,} | "
                     f"{r['bytes'] / 2**20:.1f} | {st[r['baseline_used']]['seconds']:.2f} "
                     f"({st[r['baseline_used']]['cpu_s'] or 0:.2f}; {r['baseline_used']}) | "
                     f"{st['validate']['seconds']:.2f} ({st['validate']['cpu_s'] or 0:.2f}) | "
                     f"{st['ingest']['seconds']:.2f} ({st['ingest']['cpu_s'] or 0:.2f}) | {r['ratio']:.2f} | "
                     f"{r['ratio_cpu'] or float('nan'):.2f} | "
                     f"{r['ratio_vs_truth_baseline']:.2f} | {r['peak_rss_mb']:.0f} | "
                     + (f"{st['truth-validate']['seconds']:.2f} |" if "truth-validate" in st else "- |")
                     + " {:.1f} -> {:.1f} |".format(r.get("load_average_start", [0])[0], r.get("load_average_end", [0])[0]))
    if doc.get("slopes"):
        lines += ["", "log-log slopes from the smallest to the largest size (time, peak RSS):", ""]
        lines += [f"- {s}: time {v['time']:.2f}, RSS {v['rss']:.2f}" for s, v in doc["slopes"].items() if v["time"] is not None]
    if doc.get("profiles"):
        keys = [k for k in next(iter(doc["profiles"].values())) if k not in ("wall_s", "rss_mb", "load_average_end")]
        lines += ["", "Where a mapped validation spends its CPU (`profile_validate.py`, in-process, largest size, "
                  "CPU seconds; `rss_*`: peak RSS MB after that part):", "",
                  "| shape | " + " | ".join(keys) + " |", "|---|" + "---:|" * len(keys)]
        for s, p in doc["profiles"].items():
            lines.append(f"| {s} | " + " | ".join(f"{p.get(k, float('nan')):g}" for k in keys) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1,4,16", help="multipliers of the base center (625 patients), or 'tiny'")
    ap.add_argument("--shapes", default="", help="mapping stems (default: every mapping in mappings/)")
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=HERE / "results")
    ap.add_argument("--json-name", default="mapped.json")
    ap.add_argument("--profile", action=argparse.BooleanOptionalAction, default=None)
    ap.add_argument("--truth-sizes", default="", help="sizes (e.g. 1x) at which the canonical truth is also validated (default: all)")
    args = ap.parse_args(argv)
    from ptrharmonize.synth.centers import demo_mappings

    maps = [m for m in demo_mappings() if not args.shapes or m.stem in args.shapes.split(",")]
    sizes = [("tiny", TINY_PATIENTS / BASE_PATIENTS, TINY_PATIENTS)] if args.sizes == "tiny" else [
        (f"{s}x", float(s), int(round(BASE_PATIENTS * float(s)))) for s in args.sizes.split(",")]
    work = args.work or Path(tempfile.mkdtemp(prefix="ptrh-bench-mapped-"))
    work.mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = {"machine": machine(), "started": time.strftime("%Y-%m-%dT%H:%M:%S"), "results": [],
                           "tables": list(TABLES)}
    truth_sizes = set(args.truth_sizes.split(",")) if args.truth_sizes else {label for label, _, _ in sizes}

    def save() -> None:  # after every center, so that a long run that is stopped keeps what it measured
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / args.json_name).write_text(json.dumps(doc, indent=2))
        (args.out / (Path(args.json_name).stem + ".md")).write_text(markdown(doc))

    try:
        for label, mult, patients in sizes:
            for m in maps:
                doc["results"].append(bench_shape(work, m, label, mult, patients, lambda s: print(s, flush=True),
                                                  with_truth=label in truth_sizes))
                save()
        doc["slopes"] = {m.stem: {"time": slope(doc["results"], m.stem, "time"), "rss": slope(doc["results"], m.stem, "rss")}
                         for m in maps}
        if args.profile if args.profile is not None else args.sizes != "tiny":
            doc["profiles"] = {m.stem: profile(work, m, sizes[-1][0]) for m in maps}
        doc["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / args.json_name).write_text(json.dumps(doc, indent=2))
    (args.out / (Path(args.json_name).stem + ".md")).write_text(markdown(doc))
    print(markdown(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
