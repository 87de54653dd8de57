"""What bounding every reader costs (issue 23): `ptrh validate` of each demo center with the
readers in a bounded child process (the default) against the same run with both reader limits 0
(the readers in the ptrh process itself), measured in the same run, interleaved, best of N.

    python benchmarks/bench_reader_bound.py [--out DIR] [--repeat 3] [--json results/reader_bound.json]

DIR is a `ptrh synth centers` folder (written first if missing). Wall-clock seconds: the child's
CPU is not counted to the parent (the forkserver is never waited for), so CPU time would
flatter the bound.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path


def ptrh(*args: str, env: dict[str, str] | None = None) -> float:
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "ptrharmonize", *args], capture_output=True, text=True,
                       env={**os.environ, **(env or {})})
    took = time.perf_counter() - t0
    if r.returncode not in (0, 1):
        raise SystemExit(f"ptrh {' '.join(args)} failed ({r.returncode}): {r.stderr[-2000:]}")
    return took


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="/tmp/ptrh-bench-reader-bound")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json")
    a = ap.parse_args()
    out = Path(a.out)
    if not (out / "manifest.json").exists():
        subprocess.run([sys.executable, "-m", "ptrharmonize", "synth", "centers", "--out", str(out)], check=True,
                       capture_output=True)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    off = {"PTRH_READER_MAX_MEMORY_MB": "0", "PTRH_READER_MAX_SECONDS": "0"}
    rows = []
    for entry in manifest["centers"]:
        args = ["validate", str(out / entry["folder"]), "--mapping", str(out / entry["mapping"]), "--quiet"]
        bound, free = [], []
        for _ in range(a.repeat):
            free.append(ptrh(*args, env=off))
            bound.append(ptrh(*args))
        files = len([p for p in (out / entry["folder"]).iterdir() if p.is_file()])
        rows.append({"center": entry["key"], "files": files, "unbounded_s": round(min(free), 3),
                     "bounded_s": round(min(bound), 3), "ratio": round(min(bound) / min(free), 3)})
        print(f"{entry['key']:12} {files:3} files  unbounded {min(free):6.2f} s  bounded {min(bound):6.2f} s  "
              f"ratio {min(bound) / min(free):5.2f}  (+{min(bound) - min(free):5.2f} s)", flush=True)
    total_free = sum(r["unbounded_s"] for r in rows)
    total_bound = sum(r["bounded_s"] for r in rows)
    print(f"all centers: unbounded {total_free:.2f} s, bounded {total_bound:.2f} s, ratio {total_bound / total_free:.2f}")
    if a.json:
        Path(a.json).write_text(json.dumps({"rows": rows, "repeat": a.repeat, "cpus": os.cpu_count(),
                                            "load_average": os.getloadavg()}, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
