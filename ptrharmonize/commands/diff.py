"""`ptrh diff --store S --center X`: a center's submissions over time, in the terminal.

The same numbers as the QA report's "Over time" section (report/history.py): each submission
in the order it was stored with its rows, open errors and warnings and the rules over tolerance
(fraction failed), and what changed since the submission before (rows added, removed, changed;
rules newly over tolerance, rules fixed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..errors import UserError, run_guarded

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("diff")(diff_command)


def _rows_cell(ch: dict[str, Any] | None) -> str:
    if ch is None:
        return "first"
    if ch["rows_known"]:
        return f"+{ch['rows_added']:,} -{ch['rows_removed']:,} ~{ch['rows_changed']:,}"
    return f"net {ch['rows_net']:+,} *"


def print_history(center: str, subs: list[dict[str, Any]], out: Console) -> None:
    t = Table(title=f"Submissions of {escape(center)}, oldest first", show_edge=False,
              caption="rows: +added -removed ~changed since the submission before (* row counts only: see below)")
    for col, right in (("#", True), ("stored", False), ("status", False), ("rows", True), ("errors", True),
                       ("warnings", True), ("rows +-~", True)):
        t.add_column(col, justify="right" if right else "left", no_wrap=True)
    for i, s in enumerate(subs, 1):
        t.add_row(str(i), s["submitted_at"][:16], s["status"] or "", f"{s['rows']:,}", f"{s['errors']:,}",
                  f"{s['warnings']:,}", _rows_cell(s["changes"]))
    out.print(t)
    for i, s in enumerate(subs, 1):
        ch = s["changes"]
        out.print(f"[bold]#{i}[/bold] {escape(s['submission_id'])} ({s['status']})")
        if ch is not None:
            if ch["rows_known"]:
                changed = [f"{escape(tb)} +{x['added']:,} / -{x['removed']:,} / ~{x['changed']:,}"
                           for tb, x in ch["by_table"].items() if x["added"] or x["removed"] or x["changed"]]
                out.print(f"  rows changed since #{i - 1}: " + ("; ".join(changed) or "none"))
            else:
                out.print(f"  {escape(ch['rows_note'])}")
            out.print("  rules newly failing: " + (escape(", ".join(r["rule_id"] for r in ch["newly_failing"])) or "none"))
            out.print("  rules fixed: " + (escape(", ".join(r["rule_id"] for r in ch["fixed"])) or "none"))
        if not s["failing"]:
            out.print("  no rule with failures")
        for r in s["failing"]:
            colour = "red" if r["severity"] == "error" else "yellow"
            over = "over tolerance" if r["status"] == "failed" else "within tolerance"
            out.print(f"  [{colour}]{r['severity']:7}[/{colour}] {escape(r['rule_id'])}: {r['failed']:,} / "
                      f"{r['checked']:,} ({r['fraction']:.2%}), {over}")


def diff_command(
    store: Annotated[Path, typer.Option(help="The registry's DuckDB file (opened read-only).")],
    center: Annotated[str, typer.Option(help="The center whose submissions are compared.")],
) -> None:
    """Show a center's submissions in order and what changed from each to the next: rows added,
    removed and changed (by the tables' keys), open errors and warnings, each failing rule's
    fraction, rules newly failing and rules fixed. Exit 0, or 2 when the store or center is unknown."""

    def body() -> int:
        import duckdb

        from .. import db
        from ..report.history import center_history
        from ..store import open_read_only

        if not store.is_file():
            raise UserError(f"{store}: store not found (create it with `ptrh ingest EXTRACT --store {store}`)")
        con = open_read_only(store)
        try:
            try:
                centers = [r[0] for r in db.rows(con, "SELECT DISTINCT center_id FROM submissions ORDER BY 1")]
            except duckdb.Error:
                raise UserError(f"{store}: not a ptrh registry store (no submissions table)") from None
            if center not in centers:
                raise UserError(f"{store}: no submission of center {center!r}; centers: "
                                + (", ".join(c for c in centers if c) or "none"))
            subs = center_history(con, center)
        finally:
            con.close()
        print_history(center, subs, console)
        return 0

    raise typer.Exit(run_guarded(body, err_console))
