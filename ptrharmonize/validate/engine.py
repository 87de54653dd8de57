"""The validation engine: one submission in, one issue table and one rule-result table out.

Each table is parsed once into a typed Parquet file in a work folder (streaming, so memory stays
flat at registry scale). Every later step reads that file: structural rules over the column
names (structure.py), column checks (pandera or polars) and row rules (SQL expressions evaluated
by polars) in one fused pass here, the identifier scan (phi_scan.py), cross-table rules (DuckDB
over the staged files, cross_table.py), the rule results by tolerance (result.py), and finally
the store's ingest. The engine never formats text for a screen.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import polars as pl

from ..cdm import FILE_COL, ROW_COL, Catalog
from ..collection import collection_frame, declared_in_mapping
from ..submission import Submission
from . import columns as colchecks
from .catalog import checked_catalog, ensure_checked
from .checks import Evaluation
from .cross_table import cross_table_rules
from .issue_rows import ISSUE_SCHEMA, MAX_VALUE_CHARS, _issue_frame, _reason
from .parse import RAW_PREFIX, parse_steps
from .result import (  # noqa: F401 - ValidationResult and the status helpers, re-exported
    ValidationResult,
    _Outcome,
    lookup_threshold,
    parse_threshold,
    rule_results,
    rule_status,
)
from .rules import Rule, all_rules
from .structure import structure_checks, table_absent

# Row groups of the staged Parquet: DuckDB's own row-group size. The streaming sink otherwise
# writes many small, uneven row groups, and DuckDB's order-preserving parallel INSERT then has
# to merge partial row groups at the checkpoint; aligned, each Parquet row group becomes one
# store row group (measured, 5.2 M rows on 2 cores: 1.5 s instead of 2.7 s, same rows, same order).
STAGE_ROW_GROUP = 122_880
# LZ4 rather than polars' default zstd: the stage is written once and read three or four times
# (checks, identifier scan, DuckDB rules, the store's INSERT) on the same machine, so speed
# matters more than size (5.4 M lab rows: written in 0.55 s instead of 0.73 s, 73 MB instead of 46).
STAGE_COMPRESSION = "lz4"

Progress = Callable[[str, int], None]

COLUMN_ENGINES = ("pandera", "polars", "auto")
# `auto`: the pandera schema checks a table's columns up to this many rows, polars expressions
# above (the same issues either way: tests/test_engine_scale.py). Measured on 2 cores: pandera
# takes ~0.2 s plus ~1.3 s per million rows for the required/codes/range checks (and 0.5 s to
# import pandas and pandera once), polars < 0.1 s per million rows for the same checks inside
# its one pass over every rule (benchmarks/RESULTS.md). At this size pandera costs < 0.5 s.
PANDERA_MAX_ROWS = 250_000


def _explain_unreadable(sub: Submission, table: str) -> None:
    """A lazily read canonical CSV that fails while it streams (a ragged row, a broken quote):
    read it eagerly, which raises the ReadError naming the file and row. Returns when the file
    reads fine eagerly (the caller then re-raises the original error)."""
    if not isinstance(sub.tables.get(table), pl.LazyFrame):
        return
    if sub.mapping_file is not None:
        from ..mapping import apply_mapping

        apply_mapping(sub.mapping_file, Path(sub.source_path))  # eagerly: a ReadError names the cell
        return
    from ..read.canonical import canonical_files
    from ..read.csv import read_csv

    try:
        file = canonical_files(Path(sub.source_path)).get(table)
    except Exception:  # noqa: BLE001 - no better explanation to offer
        return
    if file is not None and file.suffix.lower() == ".csv":
        read_csv(file, Path(sub.source_path), delimiter=",", encoding="utf-8")


class Engine:
    def __init__(
        self,
        catalog: Catalog | None = None,
        column_engine: str = "auto",
        thresholds: dict[tuple[str, str | None], float] | None = None,
        definitions: dict[str, Any] | None = None,
        progress: Progress | None = None,
        batch_rows: int = 500_000,
        pandera_max_rows: int = PANDERA_MAX_ROWS,
    ) -> None:
        if column_engine not in COLUMN_ENGINES:
            raise ValueError("column_engine must be 'pandera', 'polars' or 'auto'")
        # The catalog's files follow the catalog language, or nothing is checked (exit 2).
        self.catalog = catalog or checked_catalog()
        ensure_checked(self.catalog)
        self.rules = all_rules(self.catalog)
        self.column_engine = column_engine
        self.thresholds = thresholds or {}
        self.definitions = definitions if definitions is not None else self.catalog.definitions
        self.progress = progress or (lambda step, rows: None)
        self.batch_rows = batch_rows
        self.pandera_max_rows = pandera_max_rows
        # Which back end checked each table's columns in the last validate().
        self.column_backends: dict[str, str] = {}
        # Wall seconds per phase of the last validate() (benchmarks/ reads it).
        self.timings: dict[str, float] = {}

    @contextmanager
    def _timed(self, phase: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timings[phase] = self.timings.get(phase, 0.0) + time.perf_counter() - t0

    # -- public -------------------------------------------------------------------------
    def validate(self, sub: Submission, workdir: Path | None = None) -> ValidationResult:
        if sub.centers and sub.center_id is None:  # never several centers' rows as one submission
            from ..errors import UserError

            raise UserError(f"{sub.source_path}: this export holds several centers ({', '.join(sub.centers)}): "
                            "`ptrh validate` and `ptrh ingest` split it into one submission per center")
        owns = workdir is None
        self.timings = {}
        self.column_backends = {}
        work = Path(workdir or tempfile.mkdtemp(prefix="ptrh-validate-"))
        work.mkdir(parents=True, exist_ok=True)
        outcomes: dict[str, _Outcome] = {r.id: _Outcome() for r in self.rules}
        issues: list[pl.DataFrame] = []
        if sub.read_issues is not None and sub.read_issues.height:
            issues.append(sub.read_issues.select(list(ISSUE_SCHEMA)).cast(ISSUE_SCHEMA))
        staged: dict[str, Path] = {}
        rows: dict[str, int] = {}
        phi_values: set[str] = set()
        submitted: dict[str, list[str]] = {}
        # A column the mapping declares not collected is not "missing" (issue 16).
        self._declared = declared_in_mapping(sub.mapping_file, self.catalog)
        try:
            for table in self.catalog.table_names:
                frame = sub.tables.get(table)
                table_rules = [r for r in self.rules if r.table == table]
                if frame is None:
                    self.progress(f"skipping {table} (not submitted)", 0)
                    table_absent(self.catalog, table, table_rules, outcomes, issues)
                    continue
                self.progress(f"reading {table}", 0)
                with self._timed("parse_and_stage"):
                    try:
                        path, cols, n = self._stage(table, frame, work)
                    except pl.exceptions.PolarsError:
                        _explain_unreadable(sub, table)
                        raise
                staged[table], rows[table] = path, n
                submitted[table] = sorted(cols)
                self.progress(f"checking {table}", n)
                # The staged file, not the submission's frame: a lazily read source (a mapped
                # sheet, an SPSS file) is read once, by the stage.
                structure_checks(self.catalog, self.rules, table, cols, table_rules, outcomes, issues,
                                 pl.scan_parquet(path), self._declared, sub.unread_columns.get(table, []))
                if n == 0:
                    for r in table_rules:
                        if r.engine != "structure":
                            outcomes[r.id].status, outcomes[r.id].reason = "not_applicable", "table is empty"
                    continue
                self._column_and_row_rules(table, path, cols, table_rules, outcomes, issues, n)
                with self._timed("identifier_scan"):
                    self._phi_values(table, path, cols, outcomes, issues, phi_values)
            with self._timed("cross_table_duckdb"):
                cross_table_rules(self.catalog, self.rules, self.definitions, staged, outcomes, issues,
                                  sub.center_id)
        except BaseException:
            if owns:
                shutil.rmtree(work, ignore_errors=True)
            raise
        center = sub.center_id or self._center_of(staged)
        issue_df = (
            pl.concat(issues) if issues else pl.DataFrame(schema=ISSUE_SCHEMA)
        ).sort(["table", "file", "row", "rule_id"], nulls_last=False)
        from .written import as_written  # a mapped cell's value as the center wrote it

        with self._timed("values_as_written"):
            issue_df = as_written(issue_df, staged, sub.written, self.catalog)
        # The issue record every output renders: place, patient code, the center's words.
        from .issue_record import center_terms, column_wide_message, complete

        terms = center_terms(sub.mapping_file, self.catalog)
        issue_df = complete(issue_df, {r.id: r for r in self.rules}, staged, self.catalog, sub.mapping_file, terms)
        # An identifier is never repeated, whichever rule happened to quote it, however cut.
        from ..phi_scan import redact_issue_values

        issue_df = redact_issue_values(issue_df, phi_values, [r for r in self.rules if r.check == "phi_value"],
                                       MAX_VALUE_CHARS)
        results = rule_results(self.rules, outcomes, self.thresholds, center)
        from ..limits import limit
        from .collapse import collapse_whole_columns

        issue_df = collapse_whole_columns(issue_df, results, int(limit("column_issue_min_rows")),
                                          column_wide_message(self.catalog.root, terms.language))
        return ValidationResult(
            issues=issue_df,
            rules=results,
            rows=rows,
            staged=staged,
            center_id=center,
            workdir=work,
            _owns_workdir=owns,
            collection=collection_frame(submitted, self._declared, self.catalog),
        )

    # -- steps --------------------------------------------------------------------------
    def _stage(self, table: str, frame: pl.LazyFrame | pl.DataFrame, work: Path) -> tuple[Path, set[str], int]:
        spec = self.catalog.tables[table]
        lf = frame.lazy()
        schema = lf.collect_schema()
        cols = {c for c in schema.names() if not c.startswith("_")}
        exprs: list[pl.Expr] = []
        steps: list[list[pl.Expr]] = []
        for col in spec.columns:
            if col.name in schema:
                col_steps, typed, raw = parse_steps(schema[col.name], col)
                for i, step in enumerate(col_steps):
                    if i == len(steps):
                        steps.append([])
                    steps[i] += step
                exprs += [typed, raw]
            else:
                exprs += [pl.lit(None, dtype=col.polars_type).alias(col.name),
                          pl.lit(None, dtype=pl.Utf8).alias(RAW_PREFIX + col.name)]
        for step in steps:
            lf = lf.with_columns(step)
        path = work / f"{table}.parquet"
        lf.select(pl.col(FILE_COL).cast(pl.Utf8), pl.col(ROW_COL).cast(pl.Int64), *exprs).sink_parquet(
            path, row_group_size=STAGE_ROW_GROUP, compression=STAGE_COMPRESSION)
        n = pl.scan_parquet(path, glob=False).select(pl.len()).collect().item()
        return path, cols, int(n)

    def _column_and_row_rules(self, table: str, path: Path, cols: set[str], table_rules: list[Rule],
                              outcomes: dict[str, _Outcome], issues: list[pl.DataFrame], n: int) -> None:
        """Every polars-evaluated rule of a table (column checks and row rules) in one fused pass;
        with the pandera back end, the failing rows of the column checks come from pandera (the
        same expressions). A rule that cannot run is isolated: it gets status `error`, the others
        still run and count (found one by one when the fused pass fails)."""
        lf = pl.scan_parquet(path, glob=False)
        evals: dict[str, Evaluation] = {}
        rules: dict[str, Rule] = {}
        for r in table_rules:
            if outcomes[r.id].status is not None or r.engine != "polars":
                continue
            try:
                evals[r.id] = r.evaluation()
            except Exception as exc:  # noqa: BLE001 - a broken rule must not stop the others
                outcomes[r.id].status, outcomes[r.id].reason = "error", f"rule expression: {_reason(exc)}"
                continue
            rules[r.id] = r
        use_pandera = self._uses_pandera(n)
        self.column_backends[table] = "pandera" if use_pandera else "polars"
        by_pandera = [rules[k] for k in evals if use_pandera and rules[k].level == "column"]
        polars_fails = [k for k in evals if rules[k] not in by_pandera]
        with self._timed("column_and_row_rules_polars"):
            try:
                counts, bad = self._fused_pass(lf, evals, polars_fails, rules)
            except Exception:  # noqa: BLE001 - find the rule(s) that cannot run, keep the others
                for k in self._unrunnable(lf, evals, outcomes):
                    evals.pop(k)
                by_pandera = [r for r in by_pandera if r.id in evals]
                polars_fails = [k for k in polars_fails if k in evals]
                counts, bad = self._fused_pass(lf, evals, polars_fails, rules)
            for k in evals:
                outcomes[k].checked = int(counts.get("c|" + k, 0) or 0)
            for k in polars_fails:
                sub = bad.filter(pl.col("f|" + k))
                outcomes[k].failed = sub.height
                if sub.height:
                    value = self._value_expr(rules[k], sub)
                    issues.append(_issue_frame(rules[k], sub.select(FILE_COL, ROW_COL, value.alias("value"))))
        if by_pandera:
            with self._timed("column_checks_pandera"):
                try:
                    pf = colchecks.pandera_failures(str(path), by_pandera, self.batch_rows)
                except Exception:  # noqa: BLE001 - one by one, so one broken check stays alone
                    pf = self._pandera_one_by_one(str(path), by_pandera, outcomes)
            for r in by_pandera:
                if outcomes[r.id].status is not None:
                    continue
                sub = pf.filter(pl.col("rule_id") == r.id)
                outcomes[r.id].failed = sub.height
                if sub.height:
                    issues.append(_issue_frame(r, sub))

    @staticmethod
    def _fused_pass(lf: pl.LazyFrame, evals: dict[str, Evaluation], fail_ids: list[str],
                    rules: dict[str, Rule]) -> tuple[dict[str, Any], pl.DataFrame]:
        """Two passes: the denominators of every rule (cheap null tests), then the failing rows
        of the rules evaluated here (each failure expression evaluated once)."""
        aggs = [e.rows.cast(pl.Int64).sum().alias("c|" + k) for k, e in evals.items()]
        counts = lf.select(aggs).collect().row(0, named=True) if aggs else {}
        needed = {FILE_COL, ROW_COL}
        for k in fail_ids:
            if rules[k].column:
                needed |= {rules[k].column, RAW_PREFIX + rules[k].column}
        if not fail_ids:
            return counts, pl.DataFrame()
        bad = (
            lf.with_columns([evals[k].fails.alias("f|" + k) for k in fail_ids])
            .filter(pl.any_horizontal([pl.col("f|" + k) for k in fail_ids]))
            .select([*sorted(needed), *["f|" + k for k in fail_ids]])
            .collect()
        )
        return counts, bad

    @staticmethod
    def _unrunnable(lf: pl.LazyFrame, evals: dict[str, Evaluation], outcomes: dict[str, _Outcome]) -> list[str]:
        """The rules whose expressions fail on this table, each run alone: first against the
        schema (free), then, when every plan is sound, over the data."""
        broken: list[str] = []
        for stage in ("schema", "data"):
            for k, e in evals.items():
                q = lf.select(e.rows.cast(pl.Int64).sum().alias("c"), e.fails.cast(pl.Int64).sum().alias("f"))
                try:
                    q.collect_schema() if stage == "schema" else q.collect()
                except Exception as exc:  # noqa: BLE001
                    outcomes[k].status, outcomes[k].reason = "error", f"rule expression: {_reason(exc)}"
                    broken.append(k)
            if broken:
                return broken
        return broken

    def _pandera_one_by_one(self, path: str, rules: list[Rule], outcomes: dict[str, _Outcome]) -> pl.DataFrame:
        parts = []
        for r in rules:
            try:
                parts.append(colchecks.pandera_failures(path, [r], self.batch_rows))
            except Exception as exc:  # noqa: BLE001
                outcomes[r.id].status, outcomes[r.id].reason = "error", f"rule expression: {_reason(exc)}"
        return pl.concat(parts) if parts else pl.DataFrame(schema=colchecks.FAILURE_SCHEMA)

    def _uses_pandera(self, n: int) -> bool:
        return self.column_engine == "pandera" or (self.column_engine == "auto" and n <= self.pandera_max_rows)

    def _phi_values(self, table: str, path: Path, cols: set[str], outcomes: dict[str, _Outcome],
                    issues: list[pl.DataFrame], phi_values: set[str]) -> None:
        """Scan for identifiers (ptrharmonize/phi_scan.py); report where, never what."""
        from ..phi_scan import scan_table

        def count(rule: Rule, checked: int, failed: int) -> None:
            outcomes[rule.id].checked += checked
            outcomes[rule.id].failed += failed

        def report(rule: Rule, fail: pl.DataFrame, column: str) -> None:
            issues.append(_issue_frame(rule, fail, column=column, table=table))

        scan_table(self.catalog, [r for r in self.rules if r.check == "phi_value"], table, path, count, report,
                   phi_values)

    @staticmethod
    def _value_expr(rule: Rule, frame: pl.DataFrame) -> pl.Expr:
        if not rule.column or rule.column not in frame.columns:
            return pl.lit(None, dtype=pl.Utf8)
        raw = RAW_PREFIX + rule.column
        typed = pl.col(rule.column).cast(pl.Utf8)
        if raw in frame.columns:
            return pl.coalesce([pl.col(raw), typed])
        return typed

    @staticmethod
    def _center_of(staged: dict[str, Path]) -> str | None:
        if "patients" not in staged:
            return None
        centers = pl.scan_parquet(staged["patients"], glob=False).select(pl.col("center_id").drop_nulls().unique()).collect()
        vals = centers["center_id"].to_list()
        return vals[0] if len(vals) == 1 else None

    def rules_from_counts(self, counts: pl.DataFrame, center: str | None) -> pl.DataFrame | None:
        """Rule results from kept counts (a validation kept by `validate --stage`) under this
        engine's thresholds, exactly as validate() would give them; None when the counts are of
        another rule set."""
        if set(counts["rule_id"].to_list()) != {r.id for r in self.rules}:
            return None
        outcomes = {r.id: _Outcome() for r in self.rules}
        for row in counts.iter_rows(named=True):
            o = outcomes[row["rule_id"]]
            o.checked, o.failed = int(row["checked"] or 0), int(row["failed"] or 0)
            if row["status"] in ("not_applicable", "error"):
                o.status, o.reason = row["status"], row["reason"]
        return rule_results(self.rules, outcomes, self.thresholds, center)



def validate(sub: Submission, **kwargs: Any) -> ValidationResult:
    workdir = kwargs.pop("workdir", None)
    return Engine(**kwargs).validate(sub, workdir=workdir)
