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


class Parts:
    """What one submission folder gave: one validated submission per center (one, for a
    one-center mapping), and for an export of several centers the rows of no center (a result
    that stores nothing and blocks) and a note for each center the mapping names that has no
    row in it. `label` names a part in outputs: its center, for an export of several."""

    NO_CENTER = "_no_center"  # not a center id (those start with a letter or digit)

    def __init__(self, split: bool) -> None:
        self.split = split
        self.items: list[tuple[str | None, object, object, object]] = []  # (label, sub, result, extra)
        self.unassigned = None
        self.notes: list[str] = []

    def cleanup(self) -> None:
        for _, _, result, _ in self.items:
            result.cleanup()
        if self.unassigned is not None:
            self.unassigned.cleanup()


def load_parts(path: Path, mapping: Path | None, catalog, validate) -> Parts:
    """Read a folder (`load_submission`) and validate it with `validate(sub) -> (result, extra)`:
    once, or, for an export of several centers (`mapping/centers.py`), once per center, in the
    order the mapping names them. A failure cleans up what was validated before it."""
    sub = load_submission(path, mapping)
    parts = Parts(split=bool(sub.centers))
    try:
        if not sub.centers:
            result, extra = validate(sub)
            parts.items.append((None, sub, result, extra))
            return parts
        from ..mapping.centers import split_submission
        from ..validate.issue_record import PATIENT_COLUMN
        from ..validate.unassigned import unassigned_result

        split = split_submission(sub, sub.centers, keep=(PATIENT_COLUMN,))
        parts.notes = [f"{path}: {c}: no row of this export names it; nothing of {c} was validated or stored "
                       "(what the store holds of it is unchanged)" for c in split.absent]
        if split.unassigned:
            parts.unassigned = unassigned_result(sub, split.unassigned, split.totals, catalog)
        for part in split.parts:
            result, extra = validate(part)
            parts.items.append((part.center_id, part, result, extra))
    except BaseException:
        parts.cleanup()
        raise
    return parts


def part_output(output: Path | None, path: Path, several: bool, label: str | None) -> Path | None:
    """The issue list of one part: `output_for` the folder, with `-<center>` added for a center
    of an export of several (and `-_no_center` for its rows of no center)."""
    from ..outputs import output_for

    out = output_for(output, path, several)
    if out is None or label is None:
        return out
    return out.with_name(f"{out.stem}-{label}{out.suffix}")


def several_centers(path: Path, mapping: Path | None, catalog) -> bool:
    """Whether the folder's mapping is for several centers (read from the mapping alone)."""
    if mapping is None:
        return False
    from ..mapping.apply import usable_mapping
    from ..mapping.centers import mapping_centers

    return mapping_centers(usable_mapping(Path(mapping), Path(path), catalog).blocks) is not None
