"""What a validation gives: the issue table, the rule results and the staged tables
(`ValidationResult`, with its exit code: an error rule over its tolerance, or one that could not
run, blocks), and how a rule's tolerance decides its status (`rule_status`, `rule_results`),
shared by the engine, the kept validations of `validate --stage`, the thresholds file and the
QA report."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from .issue_rows import RULE_RESULT_SCHEMA
from .rules import Rule


@dataclass
class _Outcome:
    checked: int = 0
    failed: int = 0
    status: str | None = None  # not_applicable | error, decided before counting
    reason: str | None = None


@dataclass
class ValidationResult:
    issues: pl.DataFrame
    rules: pl.DataFrame
    rows: dict[str, int]
    staged: dict[str, Path]
    center_id: str | None
    workdir: Path
    _owns_workdir: bool = field(default=True, repr=False)
    # Which CDM tables and columns the submission holds (collection.collection_frame): absent
    # and declared ones are "not collected", which the store records at ingest (issue 16).
    collection: pl.DataFrame | None = None

    @property
    def n_errors(self) -> int:
        return int((self.issues["severity"] == "error").sum())

    @property
    def n_warnings(self) -> int:
        return int((self.issues["severity"] == "warning").sum())

    @property
    def blocking(self) -> bool:
        """True when an error rule exceeds its threshold, or could not run (an unchecked table is
        not a clean one): the submission must not be stored."""
        r = self.rules
        return bool(((r["severity"] == "error") & r["status"].is_in(["failed", "error"])).any())

    @property
    def could_not_run(self) -> list[str]:
        """`rule X could not run: ...` for every error rule that could not run (exit 2)."""
        r = self.rules.filter((pl.col("severity") == "error") & (pl.col("status") == "error"))
        return [f"rule {x['rule_id']} could not run: {x['reason']}" for x in r.iter_rows(named=True)]

    @property
    def exit_code(self) -> int:
        if self.could_not_run:
            return 2
        return 1 if self.blocking else 0

    def cleanup(self) -> None:
        if self._owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


def parse_threshold(value: Any) -> float:
    """A tolerance: a fraction (< 1), a count of rows (>= 1), or a percentage string ('2%')."""
    if isinstance(value, str):
        v = value.strip()
        if v.endswith("%"):
            return float(v[:-1]) / 100.0
        return float(v)
    return float(value)


def lookup_threshold(thresholds: dict[tuple[str, str | None], float] | None, rule_id: str,
                     center: str | None, default: float) -> float:
    """A rule's tolerance for a center: the center's own entry, else the registry-wide one, else
    `default` (the catalog's, or the one stored with the counts)."""
    for key in ((rule_id, center), (rule_id, None)):
        if thresholds and key in thresholds:
            return thresholds[key]
    return default


def rule_status(checked: int, failed: int, threshold: float) -> str:
    """Failures within the tolerance pass (reported, not blocking); exactly at it passes too."""
    if failed == 0:
        return "passed"
    if threshold <= 0:
        return "failed"
    if threshold < 1:
        return "failed" if (failed / checked if checked else 1.0) > threshold else "passed"
    return "failed" if failed > threshold else "passed"


def rule_results(rules: list[Rule], outcomes: dict[str, _Outcome],
                 thresholds: dict[tuple[str, str | None], float] | None, center: str | None) -> pl.DataFrame:
    """The rule-result table (`RULE_RESULT_SCHEMA`): each rule's counts, its tolerance for the
    center and its status. A rule that found no row to apply to is `not_applicable`, not passed;
    an identifier rule tolerates nothing, whatever a thresholds file says."""
    rows = []
    for r in rules:
        o = outcomes[r.id]
        threshold = 0.0 if r.engine == "phi" else lookup_threshold(thresholds, r.id, center, r.threshold)
        status, reason = o.status, o.reason
        if status is None and o.checked == 0 and r.engine != "structure":
            status, reason = "not_applicable", "no rows where the rule applies"
        if status is None:
            status = rule_status(o.checked, o.failed, threshold)
        rows.append(
            {
                "rule_id": r.id,
                "table": r.table,
                "category": r.category,
                "severity": r.severity,
                "checked": o.checked,
                "failed": o.failed,
                "fraction_failed": (o.failed / o.checked) if o.checked else 0.0,
                "threshold": threshold,
                "status": status,
                "reason": reason,
            }
        )
    return pl.DataFrame(rows, schema=RULE_RESULT_SCHEMA)
