"""Several submissions in one call (`ptrh validate A B C`, `ptrh ingest A B C --store S`).

A registry receives submissions from many centers at once; one process for all of them pays the
start-up (interpreter, imports, catalog) once instead of once per center, which at 100 small
centers is most of the cost (benchmarks/RESULTS.md). Each submission stays its own unit: its
own issue list, its own transaction in the store, its own exit code (the call returns the worst).
"""

from __future__ import annotations

import re
from pathlib import Path

from .errors import UserError


def pair_mappings(paths: list[Path], mappings: list[Path] | None) -> list[tuple[Path, Path | None]]:
    """Each folder with its mapping: none at all, or one per folder in the same order."""
    if not mappings:
        return [(p, None) for p in paths]
    if len(mappings) != len(paths):
        raise UserError(
            f"{len(paths)} submission folder(s) and {len(mappings)} --mapping option(s): give one "
            "--mapping per folder, in the same order (or none, for canonical extracts)"
        )
    return list(zip(paths, mappings, strict=True))


def output_for(output: Path | None, path: Path, several: bool) -> Path | None:
    """Where one submission's issue list goes: `--output` itself for a single submission;
    `<stem>-<folder name><suffix>` beside it for each of several."""
    if output is None or not several:
        return output
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(path).resolve().name) or "submission"
    return output.with_name(f"{output.stem}-{name}{output.suffix}")


def check_outputs(output: Path | None, paths: list[Path]) -> None:
    """Refuse several folders whose issue lists would overwrite each other."""
    if output is None or len(paths) < 2:
        return
    seen: dict[Path, Path] = {}
    for p in paths:
        o = output_for(output, p, True)
        assert o is not None
        if o in seen:
            raise UserError(f"{seen[o]} and {p} would both write {o}: give folders with different names, "
                            "or validate them in separate calls")
        seen[o] = p
