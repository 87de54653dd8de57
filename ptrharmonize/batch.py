"""Several submissions in one call (`ptrh validate A B C`, `ptrh ingest A B C --store S`).

A registry receives submissions from many centers at once; one process for all of them pays the
start-up (interpreter, imports, catalog) once instead of once per center, which at 100 small
centers is most of the cost (benchmarks/RESULTS.md). Each submission stays its own unit: its
own issue list, its own transaction in the store, its own exit code (the call returns the worst).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Generic, TypeVar

from .errors import UserError
from .outputs import output_for

P = TypeVar("P")
T = TypeVar("T")


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


def check_outputs(output: Path | None, paths: list[Path]) -> None:
    """Refuse an issue-list suffix that cannot be written, and several folders whose issue
    lists would overwrite each other."""
    if output is not None:
        from .report.issues import check_issue_list_suffix

        check_issue_list_suffix(output)
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


# Submissions up to this size (their files counted as CSV bytes: ~500,000 rows) are validated
# two at a time; larger ones one by one, with the progress bar. Small centers cost mostly
# per-table work in Python, polars and DuckDB that leaves a core idle (two threads: 1.43x on 20
# centers of 500 patients, identical issues); a large one already keeps both cores busy, and two
# at once would double the memory.
PARALLEL_MAX_BYTES = 32 * 2**20


# Compressed formats hold more rows per byte than CSV: their sizes are counted as the CSV they
# would be (measured on the scale registry: 756 MB of CSV = 110 MB of Parquet, 6.9x; an .xlsx is
# a zip of XML, ~4x).
CSV_EQUIVALENT = {".parquet": 7, ".xlsx": 4, ".xlsm": 4}


def submission_bytes(path: Path) -> int | None:
    """The submission's size as CSV bytes (what bounds the rows, hence the memory, it needs)."""
    try:
        return sum(f.stat().st_size * CSV_EQUIVALENT.get(f.suffix.lower(), 1)
                   for f in Path(path).iterdir() if f.is_file())
    except OSError:
        return None


def is_small(pair: tuple[Path, Path | None]) -> bool:
    """A submission that may be validated alongside another (see PARALLEL_MAX_BYTES)."""
    n = submission_bytes(pair[0])
    return n is not None and n <= PARALLEL_MAX_BYTES


class _Handle(Generic[T]):
    def __init__(self, get: Callable[[], T]) -> None:
        self._get = get
        self.taken = False

    def __call__(self) -> T:
        self.taken = True
        return self._get()


def in_order(items: list[P], work: Callable[[P, bool], T], cleanup: Callable[[T], None], jobs: int = 2,
             small: Callable[[P], bool] | None = None) -> Iterator[tuple[P, Callable[[], T]]]:
    """Yield each item with a function that returns `work(item, inline)`, in the items' order.

    Small items (by `small`) are worked on up to `jobs` ahead in threads while the caller reports
    and stores the current one; the others run when the caller asks (`inline=True`: the caller's
    thread, which may show progress). A result the caller never asked for is cleaned up. Ctrl-C
    cancels what has not started and waits for what has."""
    flags = [jobs > 1 and small is not None and small(it) for it in items]
    if sum(flags) < 2:
        for it in items:
            yield it, (lambda it=it: work(it, True))
        return
    from concurrent.futures import ThreadPoolExecutor

    ex = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="ptrh-validate")
    futures: dict[int, Future[T]] = {}
    given: tuple[_Handle[T], Future[T]] | None = None  # the last result handed to the caller
    try:
        for i, it in enumerate(items):
            ahead = 0
            for k in range(i, len(items)):
                if ahead >= jobs:
                    break
                if flags[k]:
                    if k not in futures:
                        futures[k] = ex.submit(work, items[k], False)
                    ahead += 1
            if given is not None and not given[0].taken:
                _cleanup_future(given[1], cleanup)  # the caller moved on without asking for it
            given = None
            if i in futures:
                f = futures.pop(i)
                given = (_Handle(f.result), f)
                yield it, given[0]
            else:
                yield it, (lambda it=it: work(it, True))
    finally:
        for f in futures.values():
            f.cancel()
        ex.shutdown(wait=True)
        for f in futures.values():
            _cleanup_future(f, cleanup)
        if given is not None and not given[0].taken:
            _cleanup_future(given[1], cleanup)


def _cleanup_future(f: Future[T], cleanup: Callable[[T], None]) -> None:
    if f.cancelled():
        return
    try:
        result = f.result()
    except BaseException:  # noqa: BLE001 - its error was for the caller, who did not ask
        return
    cleanup(result)
