"""Where a command may write: never over the store or one of the files it reads.

`ptrh ingest ... -o S` with S the store, or `ptrh qa-report --out S`, would overwrite the
registry with an issue list (issue 23); `-o labs.csv` inside the submission would overwrite the
data being checked. Both are refused before any work, as is a store DuckDB would keep only in
memory (`:memory:`), which would report "stored" and keep nothing.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from .errors import UserError


def same_file(a: Path, b: Path) -> bool:
    """Whether `a` and `b` name the same file (links followed; by path when either is absent)."""
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def inputs_of(folder: Path | None) -> list[Path]:
    """The files of a submission folder (what an output must not replace)."""
    if folder is None or not Path(folder).is_dir():
        return [Path(folder)] if folder is not None else []
    return [p for p in Path(folder).rglob("*") if p.is_file()]


def check_output(output: Path | None, protected: Iterable[tuple[Path | None, str]], option: str = "--output") -> None:
    """Refuse `output` when it is one of the `protected` (path, what it is) or inside a protected folder."""
    if output is None:
        return
    out = Path(output)
    for path, what in protected:
        if path is None:
            continue
        p = Path(path)
        if p.is_dir() and not out.is_dir():
            # Any file inside a submission folder is an input (or would become one).
            try:
                out.resolve().relative_to(p.resolve())
            except ValueError:
                continue
            raise UserError(f"{out}: {option} is inside {what} ({p}); write it somewhere else")
        if same_file(out, p):
            raise UserError(f"{out}: {option} is {what}; it would be overwritten: write it somewhere else")
        for suffix in (".wal", ".lock"):
            if what.startswith("the store") and same_file(out, Path(str(p) + suffix)):
                raise UserError(f"{out}: {option} is a file of {what}; write it somewhere else")


def check_store_path(store: Path) -> None:
    """Refuse a store that would not be a file: DuckDB's `:memory:` keeps nothing."""
    text = str(store)
    if text.strip().lower().startswith(":memory:") or text.strip() == "":
        raise UserError(f"{text or '(empty)'}: --store must name a DuckDB file; an in-memory store keeps nothing "
                        "once ptrh ends")


def output_for(output: Path | None, path: Path, several: bool) -> Path | None:
    """Where one submission's issue list goes: `--output` itself for a single submission;
    `<stem>-<folder name><suffix>` beside it for each of several."""
    if output is None or not several:
        return output
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(path).resolve().name) or "submission"
    return output.with_name(f"{output.stem}-{name}{output.suffix}")


def check_ingest_paths(store: Path | None, output: Path | None, pairs: list[tuple[Path, Path | None]],
                       thresholds: Path | None, several: bool) -> None:
    """Before an ingest or a validation: the store is a file, and no issue list lands on the
    store, a submission's files, its mapping or the thresholds."""
    if store is not None:
        check_store_path(store)
    protected: list[tuple[Path | None, str]] = [(store, "the store"), (thresholds, "the thresholds file")]
    for folder, mapping in pairs:
        protected += [(folder, "a submission folder"), (mapping, "a mapping file")]
    for folder, _ in pairs:
        check_output(output_for(output, folder, several), protected)
