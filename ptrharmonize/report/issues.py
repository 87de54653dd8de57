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
            where = r["file"] or ""
            if r["row"] is not None:
                where += f", row {r['row']}"
            if r["column"]:
                where += f", column {r['column']}"
            value = "" if r["value"] is None else f" = {escape(repr(r['value'][:60]))}"
            console.print(f"[{color}]{r['severity']:7}[/{color}] {escape(where)}{value}  [dim]{r['rule_id']}[/dim]")
            console.print(f"         {escape(r['message'])}")
    if not result.blocking:  # what the derived outcomes will lack (issue 16)
        missing.render_terminal(missing.for_submission(result), console)
    verdict = ("[red]errors found: the submission cannot be stored as it is[/red]" if result.blocking
               else "[green]no blocking errors[/green]")
    console.print(f"{result.n_errors:,} errors, {result.n_warnings:,} warnings: {verdict}")


def with_source_columns(issues: pl.DataFrame, mapping_path: Path | None) -> pl.DataFrame:
    """Add `source_column`: the center's own header for each CDM column, so a nurse finds the cell."""
    if mapping_path is None:
        return issues
    from ..mapping.lint import sources

    names, places = sources(mapping_path)
    lookup = pl.DataFrame(
        [{"table": t, "column": c, "source_column": s} for t, cols in names.items() for c, s in cols.items()],
        schema={"table": pl.Utf8, "column": pl.Utf8, "source_column": pl.Utf8},
    )
    out = issues.join(lookup, on=["table", "column"], how="left", maintain_order="left")
    cols = list(issues.columns)
    cols.insert(cols.index("column") + 1, "source_column")
    return _with_places(out.select(cols), places)


def _with_places(issues: pl.DataFrame, blocks: list[dict[str, str | None]]) -> pl.DataFrame:
    """Add `sheet` (a workbook's sheet of the row) and `place` ("row 5", or "case 3" for SPSS,
    whose cases are numbered from 1 without a header row), so that "row 5" of a workbook with
    nine sheets names one cell."""
    places = pl.DataFrame(blocks,
                          schema={"table": pl.Utf8, "file": pl.Utf8, "sheet": pl.Utf8, "format": pl.Utf8})
    places = places.unique(["table", "file"], keep="first", maintain_order=True)
    out = issues.join(places, on=["table", "file"], how="left", maintain_order="left")
    place = (pl.when(pl.col("row").is_null()).then(None)
             .when(pl.col("format") == "spss").then(pl.format("case {}", pl.col("row") - 1))
             .otherwise(pl.format("row {}", pl.col("row"))))
    out = out.with_columns(place.alias("place"))
    cols = list(issues.columns)
    cols.insert(cols.index("file") + 1, "sheet")
    cols.insert(cols.index("row") + 1, "place")
    return out.select(cols)
