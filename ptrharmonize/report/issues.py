"""Render a validation result: terminal (rich), JSON, CSV/Excel for the center."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import polars as pl
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..spreadsheet import neutralize_formula
from ..validate import ValidationResult
from . import missing


def _clean(v: Any) -> Any:
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    return v


def to_json_dict(result: ValidationResult) -> dict[str, Any]:
    rules = [{k: _clean(v) for k, v in r.items()} for r in result.rules.iter_rows(named=True)]
    return {
        "summary": {
            "errors": result.n_errors,
            "warnings": result.n_warnings,
            "rows": dict(result.rows),
        },
        "issues": result.issues.to_dicts(),
        "rules": rules,
        # not collected tables/columns, outcomes not assessable and why (issue 16)
        "missing_data": missing.for_submission(result),
    }


def write_json(doc: dict[str, Any] | list[dict[str, Any]], fh: Any) -> None:
    """One validation's `to_json_dict`, or a list of them (several folders), as `--format json`."""
    json.dump(doc, fh, ensure_ascii=False, indent=1, default=str)
    fh.write("\n")


def safe_issue_frame(issues: pl.DataFrame) -> pl.DataFrame:
    """The issue table as a center may open it in a spreadsheet: formula text neutralized in every
    text field (center, file, column, value, message, the center's own column names...) and in the
    header, whatever the columns are (issue 23: a center header `=SUM(..)` reached the XLSX)."""
    texts = [c for c, t in issues.schema.items() if t == pl.Utf8 or t == pl.String]
    safe = issues.with_columns(
        [pl.col(c).map_elements(neutralize_formula, return_dtype=pl.Utf8, skip_nulls=True) for c in texts]
    )
    return safe.rename({c: neutralize_formula(c) or c for c in safe.columns if neutralize_formula(c) != c})


ISSUE_LIST_SUFFIXES = (".csv", ".xlsx", ".xlsm")
SEVERITY_FILL = {"error": "F8D7DA", "warning": "FFF3CD", "info": "E2E3E5"}


def check_issue_list_suffix(path: Path) -> None:
    """Refuse an issue-list path whose suffix this writer cannot write (`-o issues.json` used to
    get CSV under a .json name)."""
    if path.suffix.lower() not in ISSUE_LIST_SUFFIXES:
        from ..errors import UserError

        raise UserError(f"{path}: an issue list is written as .csv or .xlsx, not '{path.suffix or '(no suffix)'}'"
                        " (for JSON: --format json)")


def write_issues(issues: pl.DataFrame, path: Path) -> None:
    """Write the issue list as CSV or Excel (by the file's suffix), safe to open in a spreadsheet.

    CSV starts with a UTF-8 byte-order mark, because Excel on Windows reads UTF-8 without one as
    the local code page (Patiëntnummer, 住院号 garbled). Excel gets a summary sheet first, then
    the issues with a bold frozen header, a filter, column widths and the severity both as a
    word and as a colour."""
    check_issue_list_suffix(path)
    safe = safe_issue_frame(issues)
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        _write_xlsx(safe, path)
    else:
        with path.open("wb") as fh:
            fh.write(b"\xef\xbb\xbf")
            safe.write_csv(fh)


def _write_xlsx(safe: pl.DataFrame, path: Path) -> None:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
    from openpyxl.styles import Font, PatternFill
    from openpyxl.utils import get_column_letter

    def cell(v: Any) -> Any:
        # A worksheet cannot hold control characters (openpyxl refuses them): show them as
        # \x1b etc., so that the center sees what its cell holds.
        if isinstance(v, str) and ILLEGAL_CHARACTERS_RE.search(v):
            return ILLEGAL_CHARACTERS_RE.sub(lambda m: f"\\x{ord(m.group()):02x}", v)
        return v

    wb = Workbook(write_only=True)
    summary = wb.create_sheet("summary")
    bold = Font(bold=True)

    def header(ws: Any, names: list[str]) -> None:
        cells = []
        for n in names:
            c = WriteOnlyCell(ws, value=n)
            c.font = bold
            cells.append(c)
        ws.append(cells)

    by_rule = (safe.group_by([c for c in ("severity", "rule_id", "file", "column") if c in safe.columns])
               .len("issues").sort("issues", descending=True)) if safe.height else pl.DataFrame()
    summary.freeze_panes = "A2"
    header(summary, [*by_rule.columns] if by_rule.width else ["severity", "rule_id", "file", "column", "issues"])
    for row in by_rule.iter_rows():
        summary.append([cell(v) for v in row])
    ws = wb.create_sheet("issues")
    widths = [min(max([len(c)] + [len(str(v)) for v in safe.get_column(c).head(500).to_list()]) + 2, 60)
              for c in safe.columns]
    for i, w in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(i)].width = max(w, 8)
    ws.freeze_panes = "A2"
    if safe.width:
        ws.auto_filter.ref = f"A1:{get_column_letter(safe.width)}{safe.height + 1}"
    header(ws, list(safe.columns))
    sev = safe.columns.index("severity") if "severity" in safe.columns else None
    fills = {k: PatternFill("solid", fgColor=v) for k, v in SEVERITY_FILL.items()}
    for row in safe.iter_rows():
        # openpyxl would store a leading '=' as a formula: the quote above prevents it.
        out = [cell(v) for v in row]
        if sev is not None and row[sev] in fills:
            c = WriteOnlyCell(ws, value=out[sev])
            c.fill = fills[row[sev]]
            out[sev] = c
        ws.append(out)
    wb.save(path)


def where_text(r: dict[str, Any]) -> str:
    """Where a nurse finds the cell, in one line: file [sheet], place, the center's column,
    patient, value as written (the issue record's fields; CDM column when nothing is mapped)."""
    where = r.get("file") or ""
    if r.get("sheet"):
        where += f" [{r['sheet']}]"
    if r.get("place") or r.get("row") is not None:
        where += f", {r.get('place') or 'row ' + str(r['row'])}"
    col = r.get("source_column") or r.get("column")
    if col:
        where += f", column {col}"
        if r.get("source_column") and r.get("column") and r["column"] != r["source_column"]:
            where += f" ({r['table']}.{r['column']})"
    if r.get("patient_id"):
        where += f", patient {r['patient_id']}"
    if r.get("value") is not None:
        where += f" = {r['value'][:60]!r}"
    return where


def render_terminal(result: ValidationResult, console: Console, source: str, max_issues: int = 20) -> None:
    console.print(f"[bold]Validation of[/bold] {source}")
    t = Table(title="Rows read", show_edge=False)
    t.add_column("table")
    t.add_column("rows", justify="right")
    for table, n in result.rows.items():
        t.add_row(table, f"{n:,}")
    console.print(t)

    rules = result.rules
    failed = rules.filter(pl.col("failed") > 0).sort(
        [pl.col("status") != "failed", pl.col("severity") != "error", -pl.col("fraction_failed")]
    )
    if failed.height:
        ft = Table(title="Rules with failures", show_edge=False)
        ft.add_column("rule", no_wrap=True)
        for c in ("severity", "status", "failed / checked", "fraction", "threshold"):
            ft.add_column(c, justify="right" if c in ("failed / checked", "fraction", "threshold") else "left")
        for r in failed.iter_rows(named=True):
            color = "red" if r["severity"] == "error" and r["status"] == "failed" else "yellow"
            ft.add_row(
                f"[{color}]{r['rule_id']}[/{color}]",
                r["severity"],
                r["status"],
                f"{r['failed']:,} / {r['checked']:,}",
                f"{r['fraction_failed']:.2%}",
                f"{r['threshold']:g}",
            )
        console.print(ft)
    odd = rules.filter(pl.col("status").is_in(["error"]))
    for r in odd.iter_rows(named=True):
        # The reason is a library's text: printed as text, never read as markup.
        console.print(f"rule {r['rule_id']} could not run: {r['reason']}", markup=False, highlight=False)
    n_na = rules.filter(pl.col("status") == "not_applicable").height
    n_pass = rules.filter(pl.col("status") == "passed").height
    console.print(f"{rules.height} rules: {n_pass} passed, {failed.filter(pl.col('status') == 'failed').height} failed, "
                  f"{n_na} not applicable, {odd.height} could not run")

    if result.issues.height:
        shown = min(max_issues, result.issues.height)
        console.print(f"[bold]First {shown} of {result.issues.height:,} issues[/bold]")
        for r in result.issues.head(max_issues).iter_rows(named=True):
            color = "red" if r["severity"] == "error" else "yellow"
            console.print(f"[{color}]{r['severity']:7}[/{color}] {escape(where_text(r))}  [dim]{r['rule_id']}[/dim]")
            console.print(f"         {escape(r['message'])}")
            if r.get("hint"):
                console.print(f"         [dim]hint: {escape(r['hint'])}[/dim]")
    if not result.blocking:  # what the derived outcomes will lack (issue 16)
        missing.render_terminal(missing.for_submission(result), console)
    verdict = ("[red]errors found: the submission cannot be stored as it is[/red]" if result.blocking
               else "[green]no blocking errors[/green]")
    console.print(f"{result.n_errors:,} errors, {result.n_warnings:,} warnings: {verdict}")
