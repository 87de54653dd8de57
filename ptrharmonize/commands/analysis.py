"""`ptrh run-analysis`: every analysis of the study on the pooled store."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..errors import run_guarded


def register(app: typer.Typer) -> None:
    app.command("run-analysis")(run_analysis_command)


def run_analysis_command(
    store: Annotated[Path, typer.Option(help="The pooled registry (a DuckDB file written by `ptrh ingest`); opened read-only.")],
    out: Annotated[Path, typer.Option(help="Folder for results.json, tables/ (CSV, Markdown) and figures/ (PNG, SVG).")],
    center: Annotated[list[str] | None, typer.Option(metavar="CENTER", help="Only this center (repeat for several).")] = None,
    since: Annotated[str | None, typer.Option(metavar="YYYY-MM-DD", help="Only patients whose index date is on or after this date (YYYY-MM-DD).")] = None,
    config: Annotated[Path | None, typer.Option(help="YAML file of definitions merged over schemas/definitions.yaml (e.g. analysis.candidate_p, ptr.rule).")] = None,
    analyses: Annotated[list[Path] | None, typer.Option("--analyses", metavar="DIR", help="A folder of your own analyses (module + sql/<id>.sql each; docs/analyses.md), run after the study's. A registry folder's `analyses` (ptrh.toml) is used without this.")] = None,
    mann_whitney: Annotated[str | None, typer.Option("--mann-whitney", metavar="r|spss", help="Mann-Whitney variant: r (R wilcox.test: exact without ties, else continuity-corrected; reproduces the paper's p-values; default) or spss (SPSS asymptotic, tie-corrected, no continuity correction).")] = None,
    landmark_day: Annotated[int | None, typer.Option("--landmark-day", metavar="DAYS", help="Day after infusion of the bleeding landmark analysis (PTR status known by then; events after it). Default analysis.landmark_days (7).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Run the study's analyses (Tables 1-4, Figures 1-3, CMH by center) on the store.

    Writes OUT/results.json (every number, the software versions, the submissions used and every setting), OUT/tables/<analysis>.csv and .md, OUT/figures/<analysis>.png and .svg, and prints the key results. The store is only read. Each analysis ends ok, not_estimable (with the reason) or error (with the message); the others still run. Exit 0 when every analysis ran (ok or not_estimable), 1 when one ended in error, 2 when the analysis could not run (no store, an empty store, no patient left after --center/--since, a bad option).
    """
    console, err_console = Console(), Console(stderr=True)

    def body() -> int:
        from ..analysis.runner import run_analysis
        from ..errors import UserError
        from ..stats.continuous import MANN_WHITNEY_VARIANTS

        options: dict[str, Any] = {}
        if mann_whitney is not None:
            if mann_whitney not in MANN_WHITNEY_VARIANTS:
                raise UserError(f"--mann-whitney must be one of {', '.join(MANN_WHITNEY_VARIANTS)}")
            options["mann_whitney"] = mann_whitney
        if landmark_day is not None:
            if landmark_day < 0:
                raise UserError("--landmark-day must be 0 or more")
            options["landmark_days"] = landmark_day
        results = run_analysis(store, out, centers=center, since=since, config=config,
                               progress=not quiet, analyses_dirs=analyses or (), options=options)
        render_summary(results, console)
        console.print(
            f"\nresults: {out / 'results.json'}\ntables:  {out / 'tables'} (CSV, Markdown)\n"
            f"figures: {out / 'figures'} (PNG, SVG)"
        )
        return 1 if "error" in results.get("status", {}).values() else 0

    raise typer.Exit(run_guarded(body, err_console))


def _num(x: Any, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    if isinstance(x, float):
        return f"{x:.{digits}g}"
    return str(x)


def _n(n: Any) -> str:
    if isinstance(n, dict):  # group sizes, in the analysis's group order
        return " / ".join(str(v) for v in n.values())
    return _num(n)


def render_summary(results: dict[str, Any], console: Console) -> None:
    subs = results.get("submissions") or []
    centers = sorted({s.get("center_id") for s in subs if s.get("center_id")})
    table = Table(
        title=f"Key results ({len(subs)} active submission(s)"
        + (f": {', '.join(centers)}" if centers else "") + ")",
    )
    for col, justify in (("analysis", "left"), ("result", "left"), ("test", "left"),
                         ("statistic", "right"), ("p", "right"), ("n", "right")):
        table.add_column(col, justify=justify)
    for s in results.get("summary", []):
        p = s.get("p_value")
        p_txt = "-" if p is None else ("<0.001" if p < 0.001 else f"{p:.4f}")
        style = "bold" if p is not None and p < 0.05 else None
        table.add_row(s["analysis"], s["label"], s.get("test") or "-", _num(s.get("statistic")),
                      p_txt, _n(s.get("n")), style=style)
    console.print(table)
    for k, v in results.get("analyses", {}).items():
        if v.get("status") == "not_estimable":
            console.print(f"[yellow]{k}: not estimable: {escape(str(v.get('reason')))}[/yellow]")
        elif v.get("status") == "error":
            console.print(f"[bold red]{k}: error: {escape(str(v.get('error')))}[/bold red]")
