"""Disclosure control at a node: what may leave a center, checked before anything leaves.

The rules (one `Policy` per node, its minimum set by the node's operator, never lowered by a
request):

- **No row-level values**: partial functions return counts, sums, moments, gradients and
  information matrices, never a patient's value, identifier or row.
- **Minimum cell count** `min_count` (default 5, as DataSHIELD's `nfilter.tab` is commonly set
  and OHDSI Achilles' `smallCellCount`): every released count is 0 or at least `min_count`.
  Zero is released, as DataSHIELD does: an empty cell says nobody, not somebody.
- **Sums and moments** (means, variances, regression sufficient statistics) only over at least
  `min_count` patients.
- **Event times** only where at least `min_count` of the group are still at risk (see
  `node.event_table`): times in the tail, where fewer remain, are coarsened (moved back to the
  last time with enough at risk) and the result is marked approximate.
- **Regression**: at least `min_count` complete cases, each outcome level and each level of a
  binary covariate 0 or >= `min_count`, and fewer parameters than `glm_max_ratio` (0.33, as
  DataSHIELD's `nfilter.glm`) times the complete cases.

A check that fails raises `Refused` with the reason; the partial function turns it into a
`{"refused": reason}` entry, so the coordinator sees why and nothing else. Every answer a node
gives is appended to its release log (`ReleaseLog`), the exact JSON that left, so the center
can audit what it released.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_MIN_COUNT = 5
DEFAULT_GLM_MAX_RATIO = 0.33
ENV_MIN_COUNT = "PTRH_FED_MIN_COUNT"
ENV_RELEASE_LOG = "PTRH_FED_RELEASE_LOG"


class Refused(Exception):
    """A result that may not leave the node; the message is the reason (no values in it)."""


@dataclass(frozen=True)
class Policy:
    min_count: int = DEFAULT_MIN_COUNT
    glm_max_ratio: float = DEFAULT_GLM_MAX_RATIO

    @classmethod
    def for_node(cls, node_min: int | None, requested: int | None) -> Policy:
        """The node's own minimum (its configuration or PTRH_FED_MIN_COUNT, default 5); a
        request may ask for a stricter one, never a laxer one."""
        if node_min is None:
            node_min = int(os.environ.get(ENV_MIN_COUNT, DEFAULT_MIN_COUNT))
        if node_min < 1:
            raise ValueError("the minimum cell count must be at least 1")
        return cls(min_count=max(int(node_min), int(requested or 0)))

    def count_ok(self, c: int) -> bool:
        return c == 0 or c >= self.min_count

    def counts(self, what: str, counts: Iterable[int]) -> None:
        """Every count 0 or >= min_count, else refuse (the reason names no value)."""
        small = [int(c) for c in counts if not self.count_ok(int(c))]
        if small:
            raise Refused(
                f"{what}: {len(small)} cell(s) between 1 and {self.min_count - 1} "
                f"(minimum cell count {self.min_count})"
            )

    def patients(self, what: str, n: int) -> None:
        """A sum or moment only over at least min_count patients."""
        if n < self.min_count:
            raise Refused(f"{what}: computed over fewer than {self.min_count} patients "
                          f"(minimum cell count {self.min_count})")


def guarded(fn: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """`{"released": fn(...)}` or `{"refused": reason}`."""
    try:
        return {"released": fn(*args, **kwargs)}
    except Refused as exc:
        return {"refused": str(exc)}


class ReleaseLog:
    """Append-only JSON lines: one line per answer the node gave, with the payload that left,
    its size and checksum. Path: the node's configuration, else PTRH_FED_RELEASE_LOG, else
    `ptrh-release-log.jsonl` beside the store; not written when none is writable."""

    def __init__(self, path: Path | str | None, store: Path | str | None = None) -> None:
        if path is None:
            path = os.environ.get(ENV_RELEASE_LOG) or (
                Path(store).with_name("ptrh-release-log.jsonl") if store else None
            )
        self.path = Path(path) if path else None

    def write(self, method: str, request: Mapping[str, Any], payload: Any, policy: Policy) -> int:
        """Log the answer; returns its size in bytes (as JSON, what the node sends)."""
        text = json.dumps(payload, sort_keys=True, default=str)
        size = len(text.encode("utf-8"))
        refused = sorted(_refusals(payload))
        # One line without values in the run's log (which vantage6 keeps at the node and the
        # server): what left, how big, its checksum, what was refused.
        print(f"ptrh release: {method}, {size} bytes, sha256 "
              f"{hashlib.sha256(text.encode('utf-8')).hexdigest()[:16]}, "
              f"minimum cell count {policy.min_count}, {len(refused)} refusal(s)")
        if self.path is None:
            return size
        entry = {
            "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "method": method,
            "request": {k: v for k, v in request.items() if k != "definitions"},
            "min_count": policy.min_count,
            "bytes": size,
            "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
            "refused": refused,
            "payload": payload,
        }
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(entry, default=str) + "\n")
        except OSError:
            pass  # a read-only node still answers; the run log on the server has the request
        return size


def _refusals(payload: Any, prefix: str = "") -> list[str]:
    """Paths of every refused entry in a payload (for the log's summary line)."""
    out: list[str] = []
    if isinstance(payload, Mapping):
        if "refused" in payload and isinstance(payload["refused"], str):
            out.append(f"{prefix or '.'}: {payload['refused']}")
        for k, v in payload.items():
            out += _refusals(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(payload, list):
        for i, v in enumerate(payload):
            out += _refusals(v, f"{prefix}[{i}]")
    return out
