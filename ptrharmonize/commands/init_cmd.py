"""`ptrh init DIR`: a registry folder with its own editable copy of the model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ..errors import run_guarded

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


def register(app: typer.Typer) -> None:
    @app.command()
    def init(
        folder: Annotated[Path, typer.Argument(help="The new registry folder (must not exist, or be empty).")],
        name: Annotated[str | None, typer.Option(help="The registry's name (default: the folder's name).")] = None,
    ) -> None:
        """Write a registry folder: a copy of the model (schemas/), the demo mappings
        (mappings/), a thresholds file and ptrh.toml naming the store.

        Commands run inside the folder, or with `ptrh --registry FOLDER`, then use its files: edit
        a rule, a unit spelling, a code synonym or a center's mapping there, not in the package.
        A folder that exists and is not empty is refused (exit 2) and nothing is written."""

        def body() -> int:
            from ..registry import init_registry

            reg = init_registry(folder, name)
            console.print(f"registry folder written: {reg.root} (store {reg.store}); run commands inside it, "
                          f"or with --registry {folder}", markup=False)
            return 0

        raise typer.Exit(run_guarded(body, err_console))
