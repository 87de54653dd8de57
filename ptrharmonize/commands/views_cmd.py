"""`ptrh views`: install the derived views and definition macros into the store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ..errors import run_guarded


def register(app: typer.Typer) -> None:
    app.command("views")(views_command)


def views_command(
    store: Annotated[Path, typer.Option(help="The pooled registry (a DuckDB file written by `ptrh ingest`).")],
    config: Annotated[Path | None, typer.Option(help="YAML file of definitions merged over the registry's (e.g. ptr.rule); the views then use these values.")] = None,
) -> None:
    """Install the derived views (patient_summary, patient_ptr, transfusion_cci, crs_graded, ...)
    and their definition macros (def_*()) into the store, so that `SELECT * FROM patient_summary`
    works from the DuckDB CLI, R or Python without ptrh. `derivation_definitions` lists every
    definition value the views use. Ingest does this after each stored submission; run this
    after changing a definition. Exit 0 when installed, 2 when it could not run.
    """
    console, err = Console(), Console(stderr=True)

    def body() -> int:
        from ..store_views import install_views_in_store

        names = install_views_in_store(store, config)
        console.print(f"{len(names)} views installed in {store}: {', '.join(names)}")
        return 0

    raise typer.Exit(run_guarded(body, err))
