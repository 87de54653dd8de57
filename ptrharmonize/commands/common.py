"""What several commands share: reading a submission, and the progress display while the
engine validates it. Below `cli.py` and the command modules alike (none imports cli)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from ..errors import UserError


def load_submission(path: Path, mapping: Path | None):
    """Read a canonical extract, or a center's own files through its mapping."""
    from ..read.bounded import warm

    warm()  # the bounded readers' server starts while the mapping and the folder are checked
    if mapping is not None:
        from ..mapping import apply_mapping

        # Lazily: each table streams from the center's files through the mapping into the stage.
        return apply_mapping(mapping, path, lazy=True)
    from ..read.canonical import read_canonical

    # Lazily: the engine streams each file into its typed Parquet stage, so a registry-size
    # extract is never held in memory whole (a malformed row is still reported by file and row).
    sub = read_canonical(path, lazy=True)
    if sub.center_id is not None:
        from ..center_id import check_center_id

        if check_center_id(sub.center_id, f"{path}: patients.csv, column 'center_id'") != sub.center_id:
            raise UserError(f"{path}: patients.csv, column 'center_id': the center id is not in Unicode NFC "
                            "form (a letter and a combining accent instead of the accented letter); save as NFC")
    return sub


def prepare_batch(paths: list[Path], mapping: list[Path] | None, store: Path | None, output: Path | None,
                  thresholds: Path | None, jobs: int):
    """What `validate` and `ingest` check before any submission is read: the folders paired with
    their mappings, whether there are several, the catalog checked at load and the thresholds.
    The store or an input named as the output is refused first: that message says what is at
    stake."""
    from ..batch import check_outputs, pair_mappings
    from ..outputs import check_ingest_paths
    from ..report.completeness_check import ensure_completeness_compiles
    from ..validate.catalog import checked_catalog
    from ..validate.rules import all_rules
    from ..validate.thresholds import load_thresholds

    if jobs < 1:
        raise UserError("--jobs must be at least 1")
    pairs = pair_mappings(paths, mapping)
    several = len(pairs) > 1
    check_ingest_paths(store, output, pairs, thresholds, several)
    check_outputs(output, paths)
    cat = checked_catalog()
    ensure_completeness_compiles()  # the missing-data block's queries, before any data is read
    th = load_thresholds(thresholds, {r.id for r in all_rules(cat)}) if thresholds else None
    return pairs, several, cat, th


class ProgressDisplay:
    """A rich progress bar over the submission's tables, with rows per second; silent when quiet.

    The engine reports `reading <table>` before it streams a table into its typed stage (the
    long part), `checking <table>` with the table's row count when it is staged, and
    `skipping <table> ...` for a table that was not submitted; each of the last two completes one
    of the CDM's tables on the bar."""

    def __init__(self, quiet: bool, console: Console | None = None) -> None:
        self.quiet = quiet
        self.console = console or Console(stderr=True, soft_wrap=True)
        self._p = None

    def __enter__(self):
        if self.quiet:
            return lambda step, rows: None
        import time

        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        from ..cdm import load_catalog

        self._p = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                           TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), console=self.console, transient=True)
        self._p.start()
        task = self._p.add_task("reading", total=len(load_catalog().table_names), rate="")
        t0 = time.perf_counter()
        total = {"rows": 0}

        def update(step: str, rows: int) -> None:
            total["rows"] += rows
            rate = total["rows"] / max(time.perf_counter() - t0, 1e-6)
            done = step.startswith(("checking", "skipping"))
            self._p.update(task, description=f"{step} ({rows:,} rows)" if rows else step,
                           advance=1 if done else 0, rate=f"{total['rows']:,} rows, {rate:,.0f} rows/s")

        return update

    def __exit__(self, *exc) -> None:
        if self._p is not None:
            self._p.stop()
