"""Federated cost: rounds and bytes each node sends per analysis (issue #20).

Runs `ptrh federated demo` in-process (`federated.demo.run_demo`: one store per demo center,
the study through vantage6's MockAlgorithmClient, the pooled run-analysis beside it) for a few
settings and records, per analysis, the number of rounds (vantage6 tasks) and the bytes each
node sent (its answers as JSON, as vantage6 serialises them). Baseline measured in the same run:
the size of the center's canonical extract (its CSV files), what pooling would have shipped;
the ratio printed is bytes sent / extract bytes. Wall seconds of the mock run and the pooled run-analysis are recorded
too (the mock has no network or container start; a real task costs seconds per round).

    python benchmarks/bench_federated.py                  # default settings (~3 min)
    python benchmarks/bench_federated.py --quick          # one small setting (CI-sized)

Writes benchmarks/results/federated.json and benchmarks/results/federated.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
WIDE = """analysis:
  candidate_p: 0.9999
  entry_p: 0.9999
  removal_p: 0.99999
  multivariable_pool: [age_years, male, infection, peak_il6]
"""
# analysis -> the sections of the one-round summary it reads (Table 4 also has its own rounds)
SECTIONS = {
    "baseline": ["baseline"],
    "ptr_by_group": ["ptr_by_group"],
    "ptr_by_group_stratified": ["ptr_by_group"],
    "cart_characteristics": ["cart_characteristics"],
    "ptr_multivariable": ["cart_characteristics"],
    "cytokines_by_crs": ["cytokines_by_crs"],
    "cytokines_by_ptr": ["cytokines_by_ptr"],
    "cci_vs_il6": ["cci_vs_il6"],
    "platelet_dose_by_ptr": ["platelet_dose_by_ptr"],
    "bleeding_cuminc": ["bleeding_cuminc"],
    "qa": ["qa"],
    # every analysis's population and every set's CONSORT flow (issue 16), one section
    "population and flows": ["population"],
}
SETTINGS = [
    # name, patients per center, centers, min count, wide Table 4 screen
    ("study settings, minimum 5", 150, 3, 5, False),
    ("wide Table 4 screen (Firth runs), minimum 1", 40, 3, 1, True),
    ("wide Table 4 screen, 6 centers, minimum 1", 40, 6, 1, True),
]


def per_analysis(cmp: dict) -> dict[str, dict]:
    """Rounds and bytes per node for each analysis (the summary round split by section)."""
    by_sec = cmp["summary_bytes_by_section"]
    out = {}
    for analysis, sections in SECTIONS.items():
        centers = cmp["centers"]
        b = {c: sum(by_sec[s][c] for s in sections) for c in centers}
        rounds = 1
        for label in ("ptr_multivariable", "ptr_multivariable:firth"):
            if analysis == "ptr_multivariable" and label in cmp["cost"]:
                extra = cmp["cost"][label]
                rounds += extra["rounds"]
                b = {c: b[c] + extra["bytes_per_node"][c] for c in centers}
        status = cmp["analyses"].get(analysis, {}).get("status", "ok")
        out[analysis] = {"rounds": rounds, "bytes_per_node": b,
                         "bytes_max_node": max(b.values()), "status": status}
    firth = cmp["cost"].get("ptr_multivariable:firth")
    if firth:  # of which Firth's fit and its profile limits
        out["  of which Firth"] = {"rounds": firth["rounds"],
                                  "bytes_per_node": firth["bytes_per_node"],
                                  "bytes_max_node": firth["bytes_max_node"], "status": ""}
    return out


def federated_only(work: Path, ppc: int, k: int, mc: int, config: Path | None) -> dict:
    """The cost figures of `run_demo` without the pooled run (when that one fails)."""
    import contextlib
    import io
    import time

    from ptrharmonize.analysis.runner import write_json
    from ptrharmonize.cdm import load_definitions
    from ptrharmonize.federated.demo import build_stores, run_mock

    stores, _ = build_stores(work / "stores", ppc, k)
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        fed = run_mock(stores, load_definitions(config), node_min_count=mc)
    write_json(fed, work / "federated" / "results.json")
    return {"centers": sorted(stores), "cost": fed["federated"]["cost"],
            "summary_bytes_by_section": fed["federated"]["summary_bytes_by_section"],
            "analyses": {a: {"status": v.get("status")} for a, v in fed["analyses"].items()},
            "exact_differences": None,
            "seconds": {"federated_mock": time.perf_counter() - t0,
                        "pooled_run_analysis": float("nan")}}


def _commit() -> str | None:
    """The checkout's commit, so that a reader can tell whether the figures are current."""
    import subprocess

    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, text=True,
                              capture_output=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    args = ap.parse_args()
    from ptrharmonize.federated.demo import run_demo

    settings = SETTINGS[1:2] if args.quick else SETTINGS
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "wide.yaml"
        cfg.write_text(WIDE, encoding="utf-8")
        for name, ppc, k, mc, wide in settings:
            work = Path(tmp) / f"run-{k}-{ppc}-{mc}"
            note = None
            try:
                cmp = run_demo(work, ppc, k, mc, cfg if wide else None)
            except Exception as exc:  # noqa: BLE001 - the pooled run failed: measure federated alone
                note = f"pooled run-analysis failed ({type(exc).__name__}: {exc}); federated measured alone"
                cmp = federated_only(work, ppc, k, mc, cfg if wide else None)
                print(f"\n{name}: {note}")
            fed = json.loads((work / "federated" / "results.json").read_text())
            t4 = fed["analyses"]["ptr_multivariable"]
            table4 = {"status": t4.get("status"),
                      "selected": [x["variable"] for x in t4.get("selected") or []],
                      "firth": bool(t4.get("firth") and t4["firth"].get("selected"))}
            rows = per_analysis(cmp)
            store = max(sum(f.stat().st_size for f in d.iterdir())
                        for d in (work / "stores" / "synth" / "truth").iterdir())
            results.append({"setting": name, "patients_per_center": ppc, "centers": k,
                            "min_count": mc, "store_bytes_max": store, "note": note,
                            "table4": table4,
                            "exact_differences": cmp["exact_differences"],
                            "seconds": cmp["seconds"], "analyses": rows})
            print(f"\n{name}: {k} centers x {ppc} patients, store {store:,} bytes (baseline), "
                  f"mock {cmp['seconds']['federated_mock']:.1f} s vs pooled run-analysis "
                  f"{cmp['seconds']['pooled_run_analysis']:.1f} s; Table 4: {table4}")
            print(f"{'analysis':28} {'status':>14} {'rounds':>7} {'max bytes/node':>15} {'/extract':>9}")
            for a, r in rows.items():
                print(f"{a:28} {r['status']:>14} {r['rounds']:7d} {r['bytes_max_node']:15,d} "
                      f"{r['bytes_max_node'] / store:9.2e}")
    doc = {"machine": {"python": platform.python_version(), "platform": platform.platform()},
           "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
           "commit": _commit(), "results": results}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "federated.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    lines = ["# Federated cost (benchmarks/bench_federated.py)", "",
             f"Measured {doc['measured_at']} at commit {doc['commit']}.", ""]
    for r in results:
        if "failed" in r:
            lines += [f"## {r['setting']}: failed ({r['failed']})", ""]
            continue
        lines += [f"## {r['setting']}: {r['centers']} centers x {r['patients_per_center']} "
                  f"patients, largest center extract {r['store_bytes_max']:,} bytes", "",
                  f"mock run {r['seconds']['federated_mock']:.1f} s; pooled run-analysis "
                  f"{r['seconds']['pooled_run_analysis']:.1f} s; exact differences: "
                  f"{r['exact_differences']}; Table 4: {r['table4']}"
                  + (f"; {r['note']}" if r["note"] else ""), "",
                  "| analysis | status | rounds | max bytes sent by a node | / extract bytes |",
                  "|---|---|---|---|---|"]
        for a, x in r["analyses"].items():
            lines.append(f"| {a} | {x['status']} | {x['rounds']} | {x['bytes_max_node']:,} | "
                         f"{x['bytes_max_node'] / r['store_bytes_max']:.2e} |")
        lines.append("")
    (args.out / "federated.md").write_text("\n".join(lines), encoding="utf-8")


if __name__ == "__main__":
    main()
