"""`ptrh demo`: everything end to end on built-in synthetic data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ..errors import UserError, run_guarded

err_console = Console(stderr=True, soft_wrap=True)


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        out: Annotated[Path, typer.Option(help="Folder for everything the demo writes.")] = Path("demo-out"),
        patients: Annotated[int, typer.Option(help="Patients per demo center.")] = 40,
        centers: Annotated[int | None, typer.Option(help="Number of demo centers (the shapes of mappings/ in turn; default one per mapping).")] = None,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Show step titles only.")] = False,
    ) -> None:
        """Run the whole toolkit on synthetic data: generate the study cohort and demo centers in
        their own shapes, validate them (showing the planted defects being caught), ingest,
        analyse, write the QA reports and reproduce the reference study number by number."""

        def body() -> int:
            from ..demo import run_demo

            if patients < 1 or (centers is not None and centers < 1):
                raise UserError("--patients and --centers must be at least 1")
            try:
                run_demo(out, patients=patients, centers=centers, quiet=quiet)
            except RuntimeError as exc:
                raise UserError(str(exc)) from None
            return 0

        raise typer.Exit(run_guarded(body, err_console))
