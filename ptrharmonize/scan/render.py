"""The scan report: one row per source column, as XLSX (to filter in a spreadsheet) and HTML
(to read and print); both from the same rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .match import TableProposal
from .profile import FileProfile

HEADERS = ["file", "sheet", "column", "position", "type", "rows", "empty %", "distinct", "min", "max",
           "date format", "decimal", "top values (count)", "hidden values", "proposed CDM column",
           "proposed unit", "confidence", "evidence"]
NUMERIC = {"position", "rows", "empty %", "distinct", "hidden values", "confidence"}


def scan_rows(files: list[FileProfile], tables: list[TableProposal]) -> list[dict[str, Any]]:
    """The report's rows: every column of every file, with its proposal if any."""
    proposed = {(tp.file.file, tp.file.sheet, p.source.column): (tp.table, p)
                for tp in tables for p in tp.columns}
    rows = []
    for f in files:
        for c in f.columns:
            table, p = proposed.get((f.file, f.sheet, c.column), (None, None))
            rows.append({
                "file": f.file, "sheet": f.sheet or "", "column": c.column, "position": c.position,
                "type": c.kind, "rows": c.n_rows, "empty %": round(100 * c.fraction_empty, 1),
                "distinct": c.n_distinct, "min": c.minimum or "", "max": c.maximum or "",
                "date format": c.date_format or "", "decimal": c.decimal or "",
                "top values (count)": "(named like a direct identifier: not shown; the registry must "
                                      "not receive this column)" if c.direct_identifier
                else "; ".join(f"{v} ({n})" for v, n in c.top)
                if not (c.identifier_like or (p is not None and p.cdm_column.endswith("_id")))
                else "(an identifier or free text: not shown)",
                "hidden values": c.hidden_values,
                "proposed CDM column": f"{table}.{p.cdm_column}" if p else "",
                "proposed unit": (p.unit or "") if p else "",
                "confidence": p.confidence if p else "",
                "evidence": "; ".join([*p.evidence, *([p.unit_evidence] if p.unit_evidence else [])]) if p else "",
            })
    return rows


def write_xlsx(rows: list[dict[str, Any]], path: Path) -> None:
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill
    from openpyxl.utils import get_column_letter

    from ..report.issues import neutralize_formula

    wb = Workbook()
    ws = wb.active
    ws.title = "columns"
    ws.append(HEADERS)
    for r in rows:
        ws.append([neutralize_formula(v) if isinstance(v, str) else v for v in (r[h] for h in HEADERS)])
    for cell in ws[1]:
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="EEF1F5")
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = ws.dimensions
    for i, h in enumerate(HEADERS, start=1):
        width = max([len(h)] + [len(str(r[h])) for r in rows[:500]])
        ws.column_dimensions[get_column_letter(i)].width = min(max(width + 2, 8), 60)
    wb.save(path)


def write_html(rows: list[dict[str, Any]], files: list[FileProfile], tables: list[TableProposal],
               folder: Path, min_count: int, path: Path) -> None:
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(loader=PackageLoader("ptrharmonize.scan", "templates"),
                      autoescape=select_autoescape(["html"]))
    table_of = {(tp.file.file, tp.file.sheet): tp.table for tp in tables}
    shown = [h for h in HEADERS if h not in ("file", "sheet")]
    per_file = [{"file": f.file, "sheet": f.sheet, "format": f.format, "n_rows": f.n_rows,
                 "header_row": f.header_row, "error": f.error, "table": table_of.get((f.file, f.sheet)),
                 "rows": [r for r in rows if r["file"] == f.file and r["sheet"] == (f.sheet or "")]}
                for f in files]
    html = env.get_template("scan.html").render(folder=Path(folder).name, files=per_file, headers=shown,
                                                numeric=NUMERIC, min_count=min_count)
    path.write_text(html, encoding="utf-8")
