"""Ingest a validated submission into the store: all of a center's rows replaced in one transaction.

The staged typed Parquet files written by the validation engine are what gets stored, so a file
is parsed once. A submission is identified by the checksums of its files and of its mapping:
the same submission again changes nothing; a new one supersedes the center's previous one
entirely; a rejected one (blocking errors) never touches the store.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb

from . import checksums, collection, db
from .cdm import Catalog, load_catalog
from .center_id import check_center_id
from .errors import UserError
from .limits import limit
from .lock import StoreLock
from .outputs import check_store_path, same_file
from .pause_points import reached
from .store import connect as connect_store
from .store import (
    create_schema,
    literal_path,
    open_read_only,
    qi,
    row_digest_sql,
    write_findings,
    write_submission,
)
from .submission import Submission
from .validate import ValidationResult


@dataclass
class IngestOutcome:
    status: str            # stored | unchanged | rejected
    submission_id: str | None
    center_id: str | None
    rows: dict[str, int]
    replaced: str | None = None
    # tables that now hold fewer of the center's rows than before ("patients 3 -> 2"): within
    # max_shrink_share it is stored, but a shrinking center is something the user must see
    shrunk: list[str] = field(default_factory=list)


def ingest(sub: Submission, result: ValidationResult, store: Path, catalog: Catalog | None = None,
           wait_s: float = 0.0,
           checksums_: tuple[dict[str, str], str | None, str] | None = None,
           allow_shrink: bool = False, confirm_center: bool = False) -> IngestOutcome:
    """Store `result` (the validation of `sub`). `checksums_` when the caller has computed them."""
    with StoreWriter(store, catalog, wait_s, allow_shrink, confirm_center) as writer:
        return writer.ingest(sub, result, checksums_)


class StoreWriter:
    """The store opened for writing for one or several submissions: one lock, one connection.

    Each submission is still its own transaction (a reader sees a center's old data or its new
    data, never a mix; a crash keeps every center committed before it). What is shared is the
    opening and the closing, whose checkpoint costs ~0.1 s however little was written: at 100
    small centers that was most of an ingest (benchmarks/RESULTS.md). The store is opened at the
    first submission to store, so a call whose submissions are all rejected never touches it,
    and it stays locked against other writers until the writer is closed."""

    def __init__(self, store: Path, catalog: Catalog | None = None, wait_s: float = 0.0,
                 allow_shrink: bool = False, confirm_center: bool = False) -> None:
        check_store_path(store)
        self.store = Path(store)
        self.catalog = catalog or load_catalog()
        self.wait_s = wait_s
        self.allow_shrink = allow_shrink
        self.confirm_center = confirm_center
        self._lock: StoreLock | None = None
        self._con: duckdb.DuckDBPyConnection | None = None

    def __enter__(self) -> StoreWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _connection(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            reached("before_lock")
            lock = StoreLock(self.store, self.wait_s)
            lock.__enter__()
            try:
                con = connect_store(self.store)
            except duckdb.Error as exc:
                lock.__exit__(None, None, None)
                raise UserError(f"{self.store}: cannot open the store ({str(exc).splitlines()[0]}); "
                                "--store must name a ptrh DuckDB file, or a new file to create") from None
            try:
                # Commits go to the write-ahead log (durable: a crash replays it at the next
                # open) and DuckDB folds the log into the file once it passes this size. Its
                # default, 16 MB, made nearly every commit of a batch of small centers pay a
                # checkpoint; a larger log is held in memory until then. Measured on 100 centers
                # (12.3 M rows, one call): 16 MB 20.9 s / 0.53 GB peak, 64 MB 16.2 s / 0.56 GB,
                # 256 MB 14.8 s / 0.79 GB, 1 GB 16.7 s / 1.75 GB. Memory bounded, not growing
                # with the batch, is worth more than the last second.
                db.run(con, "SET checkpoint_threshold = '64MB'")
                create_schema(con, self.catalog)
                _ensure_views(con)
            except BaseException:
                con.close()
                lock.__exit__(None, None, None)
                raise
            self._lock, self._con = lock, con
            reached("locked")
        return self._con

    def close(self) -> None:
        con, lock = self._con, self._lock
        self._con = self._lock = None
        try:
            if con is not None:
                try:
                    db.run(con, "CHECKPOINT")
                    reached("checkpointed")
                finally:
                    con.close()
        finally:
            if lock is not None:
                lock.__exit__(None, None, None)

    def ingest(self, sub: Submission, result: ValidationResult,
               checksums_: tuple[dict[str, str], str | None, str] | None = None) -> IngestOutcome:
        catalog = self.catalog
        center = result.center_id
        if result.blocking:
            return IngestOutcome("rejected", None, center, result.rows)
        if center is None:
            raise UserError(
                f"{sub.source_path}: a submission must come from exactly one center; "
                "check center_id in the patients file"
            )
        if check_center_id(center, str(sub.source_path)) != center:
            raise UserError(f"{sub.source_path}: the center id is not written in Unicode NFC form (a letter and "
                            "a combining accent instead of the accented letter); save the files as NFC text")
        files, mapping_sum, content = checksums_ or checksums.submission_checksums(
            sub.files, sub.source_path, sub.mapping_file)
        con = self._connection()
        prev = db.rows(
            con,
            "SELECT submission_id, content_checksum, mapping_file FROM submissions "
            "WHERE center_id = ? AND status = 'active'",
            [center],
        )
        if prev and prev[0][1] == content:
            return IngestOutcome("unchanged", prev[0][0], center, result.rows)
        shrunk: list[str] = []
        if prev:
            self._check_same_source(sub, center, prev[0][2])
            shrunk = self._check_shrink(con, result, center, str(sub.source_path))
        sid = f"{center}-{datetime.now().strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
        db.run(con, "BEGIN TRANSACTION")
        try:
            reached("in_transaction")
            _replace_center(con, catalog, result, center, sid)
            if prev:
                db.run(con, "UPDATE submissions SET status = 'superseded' WHERE center_id = ? AND status = 'active'",
                       [center])
            write_submission(con, sid, center, str(sub.source_path), "active", result,
                             content_checksum=content, file_checksums=files,
                             mapping_file=str(Path(sub.mapping_file).resolve()) if sub.mapping_file else None,
                             mapping_checksum=mapping_sum)
            _store_findings(con, result, center, sid)
            if result.collection is not None:
                collection.write(con, result.collection, center, sid)
            else:  # a validation kept before the record existed: what was staged is what was sent
                db.run(con, "DELETE FROM collection WHERE center_id = ?", [center])
            reached("before_commit")
            db.run(con, "COMMIT")
        except BaseException:
            db.run(con, "ROLLBACK")
            raise
        reached("committed")
        return IngestOutcome("stored", sid, center, result.rows, replaced=prev[0][0] if prev else None,
                             shrunk=shrunk)

    def _check_same_source(self, sub: Submission, center: str, stored_mapping: str | None) -> None:
        """A center's data comes from one mapping file: another file naming the same center (a
        copied mapping whose center_id was not changed) would replace that center's data."""
        if self.confirm_center or sub.mapping_file is None or stored_mapping is None:
            return
        if same_file(Path(sub.mapping_file), Path(stored_mapping)):
            return
        raise UserError(
            f"{sub.mapping_file}: center {center} is stored from another mapping file ({stored_mapping}); "
            "nothing was stored. If this file really is the center's mapping now, pass --confirm-center; "
            "otherwise correct its center_id"
        )

    def _check_shrink(self, con: duckdb.DuckDBPyConnection, result: ValidationResult, center: str,
                      where: str) -> list[str]:
        """Refuse a submission that would remove more than `max_shrink_share` of a table's stored
        rows of the center, or empty a table that has rows (a header-only export, a 0-case file).
        Returns every table that shrinks ("patients 3 -> 2"), refused or not, to be shown."""
        share = float(limit("max_shrink_share"))
        lost, shrunk = [], []
        for table in self.catalog.table_names:
            old = int(db.scalar(con, f"SELECT count(*) FROM {qi(table)} WHERE center_id = ?", [center]) or 0)
            new = int(result.rows.get(table, 0))
            if new < old:
                shrunk.append(f"{table} {old:,} -> {new:,}")
            if old > 0 and (new == 0 or old - new > share * old):
                lost.append(f"{table} {old:,} -> {new:,}")
        if lost and not self.allow_shrink:
            raise UserError(
                f"{where}: this submission of {center} would remove stored rows: {'; '.join(lost)} "
                f"(a table emptied, or more than {share:.0%} of its rows gone); nothing was stored. "
                "Check the export; pass --allow-shrink if the center really withdrew them"
            )
        return shrunk


def _ensure_views(con: duckdb.DuckDBPyConnection) -> None:
    """The derived views and definition macros in the store (issue 18), so that the DuckDB CLI,
    R or Python read `patient_summary` without ptrh. Installed when the store has none; views
    already there are kept, since `ptrh views --config` may have installed a registry's own
    definitions (`ptrh views` re-installs them after a definition or a ptrh upgrade changes)."""
    from .store_views import install_store_views

    if not db.scalar(con, "SELECT count(*) FROM duckdb_views() WHERE database_name = current_database() "
                          "AND view_name = 'patient_summary' AND NOT internal"):
        install_store_views(con)


def _replace_center(con: duckdb.DuckDBPyConnection, catalog: Catalog, result: ValidationResult,
                    center: str, sid: str) -> None:
    # One INSERT per table from the staged Parquet (written in DuckDB-sized row groups by the
    # engine, so the order-preserving parallel insert needs no merge at the checkpoint).
    for table, spec in catalog.tables.items():
        db.run(con, f"DELETE FROM {qi(table)} WHERE center_id = ?", [center])
        path = result.staged.get(table)
        if path is None or result.rows.get(table, 0) == 0:
            continue
        cols = ", ".join(qi(c.name) for c in spec.columns)
        db.run(
            con,
            f"INSERT INTO {qi(table)} ({cols}, submission_id, source_file, source_row) "
            f"SELECT {cols}, ?, _file, _row FROM read_parquet(?)",
            [sid, literal_path(path)],
        )
        key, digest, method = row_digest_sql(catalog, table)
        db.run(con, f"INSERT INTO submission_rows SELECT ?, ?, {key}, {digest}, {method} FROM read_parquet(?)",
               [sid, table, literal_path(path)])
        reached(f"replaced:{table}")


def _store_findings(con: duckdb.DuckDBPyConnection, result: ValidationResult, center: str, sid: str) -> None:
    db.run(con, "DELETE FROM issues WHERE center_id = ?", [center])
    write_findings(con, result.issues, result.rules, center, sid)


def store_status(store: Path) -> dict[str, object]:
    if not Path(store).exists():
        raise UserError(f"{store}: store not found (create it with ptrh ingest)")
    con = open_read_only(store)
    try:
        subs = db.frame(con, "SELECT submission_id, center_id, submitted_at, status, n_errors, n_warnings, "
                             "row_counts, mapping_file FROM submissions ORDER BY center_id, submitted_at")
        counts = {}
        for table in load_catalog().table_names:
            counts[table] = dict(db.rows(con, f"SELECT center_id, count(*) FROM {qi(table)} GROUP BY 1"))
        warnings = db.frame(
            con,
            "SELECT center_id, rule_id, count(*) AS n FROM issues WHERE severity = 'warning' "
            "GROUP BY ALL ORDER BY center_id, n DESC",
        )
        # What each center does not collect (three states: 0 rows of a table the center does not
        # collect is "not collected", not "none"); a store from before the record has none.
        has_record = db.scalar(con, "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'collection' "
                                    "AND database_name = current_database()")
        not_collected: dict[str, list[str]] = {}
        if has_record:
            for center, table in db.rows(con, 'SELECT center_id, "table" FROM collection WHERE "column" IS NULL '
                                              "AND NOT collected ORDER BY 1, 2"):
                not_collected.setdefault(str(center), []).append(str(table))
    finally:
        con.close()
    return {"submissions": subs, "counts": counts, "warnings": warnings, "not_collected": not_collected}
