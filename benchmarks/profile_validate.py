"""CPU seconds per phase of one `ptrh validate` (optionally `--mapping`), in-process.

    python benchmarks/profile_validate.py CENTER_FOLDER [MAPPING.yaml]

Prints one JSON line: imports and catalog, the mapping plan, each phase of the engine
(`Engine.timings`, here timed with `time.process_time`, i.e. CPU of every thread of the process,
which stays meaningful on a loaded machine where wall seconds do not), and the missing-data block
that `ptrh validate` prints (opening the submission as store-shaped views, deriving the outcomes),
plus the peak RSS after each part. Used for benchmarks/RESULTS.md ("where the time goes").
"""

from __future__ import annotations

import json
import resource
import sys
import time
import types

c0 = time.process_time()
from pathlib import Path  # noqa: E402

from ptrharmonize.commands.common import load_submission  # noqa: E402
from ptrharmonize.report import missing  # noqa: E402
from ptrharmonize.report.qa import open_submission_source  # noqa: E402
from ptrharmonize.validate import engine as E  # noqa: E402
from ptrharmonize.validate.catalog import checked_catalog  # noqa: E402


def _rss_mb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def main(argv: list[str]) -> dict[str, float]:
    E.time = types.SimpleNamespace(perf_counter=time.process_time)  # Engine.timings in CPU seconds
    out: dict[str, float] = {}
    cat = checked_catalog()
    out["imports_and_catalog"] = time.process_time() - c0
    c = time.process_time()
    sub = load_submission(Path(argv[0]), Path(argv[1]) if len(argv) > 1 else None)
    out["mapping_plan"] = time.process_time() - c
    eng = E.Engine(cat)
    c = time.process_time()
    result = eng.validate(sub)
    out["engine_total"] = time.process_time() - c
    out.update({"engine." + k: v for k, v in eng.timings.items()})
    out["rss_after_engine_mb"] = _rss_mb()
    c = time.process_time()
    src = open_submission_source(result, "profile")
    out["missing_data.open_views"] = time.process_time() - c
    c = time.process_time()
    missing.missing_data(src.con, [result.center_id] if result.center_id else [])
    out["missing_data.derive"] = time.process_time() - c
    out["rss_after_missing_data_mb"] = _rss_mb()
    src.close()
    result.cleanup()
    out["total_cpu"] = time.process_time() - c0
    return {k: round(v, 2) for k, v in out.items()}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))
