"""`ptrh reproduce`: the reference study reproduced number by number."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ..errors import run_guarded

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


def print_reproduction(rows: list[dict]) -> None:
    t = Table(title="Published vs reproduced", show_edge=False)
    for c in ("figure", "number", "published", "reproduced", "match"):
        t.add_column(c)
    for r in rows:
        mark = "[green]yes[/green]" if r["match"] else ("[yellow]documented[/yellow]" if r["expected_mismatch"] else "[red]NO[/red]")
        t.add_row(r["figure"], r["what"], r["published"], r["reproduced"], mark)
    console.print(t)
    ok = sum(r["match"] for r in rows)
    console.print(f"{ok} of {len(rows)} published numbers reproduced")


def register(app: typer.Typer) -> None:
    @app.command()
    def reproduce(
        out: Annotated[Path, typer.Option(help="Folder for reproduction.md, reproduction.html and the analysis results.")] = Path("reproduction"),
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only the summary line.")] = False,
    ) -> None:
        """Reproduce the reference study: generate the calibrated 44-patient cohort, validate,
        ingest and analyse it with the real pipeline, and compare every published number.
        Exit 1 if any published number does not match (documented contradictions excepted)."""

        def body() -> int:
            from ..reproduce.run import reproduce as do_reproduce

            rows = do_reproduce(out, progress=not quiet)
            if quiet:
                console.print(f"{sum(r['match'] for r in rows)} of {len(rows)} published numbers reproduced")
            else:
                print_reproduction(rows)
            console.print(f"written: {out / 'reproduction.md'}, {out / 'reproduction.html'}")
            bad = [r for r in rows if not r["match"] and not r["expected_mismatch"]]
            return 1 if bad else 0

        raise typer.Exit(run_guarded(body, err_console))
