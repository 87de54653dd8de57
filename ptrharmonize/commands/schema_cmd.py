"""`ptrh schema`: the common data model and rule catalog; `ptrh schema check [DIR]` checks a
catalog folder against the catalog language before any data meets it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ..errors import UserError, run_guarded

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


def register(app: typer.Typer) -> None:
    schema_app = typer.Typer(help="The common data model and rule catalog (schemas/).")
    app.add_typer(schema_app, name="schema")

    @schema_app.callback(invoke_without_command=True)
    def schema(
        ctx: typer.Context,
        markdown: Annotated[Path | None, typer.Option(help="Write the catalog as Markdown to this file.")] = None,
        table: Annotated[str | None, typer.Option(help="Only this table.")] = None,
    ) -> None:
        """Print the common data model: tables, columns, units, codes and every rule with its id,
        severity, category, message and source. `ptrh schema check [DIR]` checks a catalog."""
        if ctx.invoked_subcommand is not None:
            return

        def body() -> int:
            from ..report.catalog import catalog_markdown, render_catalog
            from ..validate.catalog import checked_catalog

            checked_catalog()
            if markdown is not None:
                markdown.write_text(catalog_markdown(table), encoding="utf-8")
                console.print(f"catalog written to {markdown}")
            else:
                render_catalog(console, table)
            return 0

        raise typer.Exit(run_guarded(body, err_console))

    @schema_app.command("check")
    def check(
        folder: Annotated[Path | None, typer.Argument(help="A catalog folder (a registry's copy of schemas/); default: the one in use (PTRH_SCHEMAS or the installed one).", show_default=False)] = None,
    ) -> None:
        """Check every file of a catalog against the catalog language, as every command does
        before it reads data: unknown keys, unknown check types, misspelt severities, columns
        that do not exist, rule expressions and queries that do not compile against the typed
        tables. Each problem names the file, line and key. Exit 0 when the catalog can be used,
        2 when it cannot."""

        def body() -> int:
            from ..paths import schemas_dir
            from ..validate.catalog import check_catalog
            from ..validate.rules import all_rules

            root = folder if folder is not None else schemas_dir()
            if not root.is_dir():
                raise UserError(f"{root}: not a folder")
            problems = check_catalog(root)
            if not problems:  # the outcome queries need a usable catalog (the views read its tables)
                from ..report.completeness_check import completeness_problems

                problems = completeness_problems(root)
            for p in problems:
                console.print(str(p), markup=False, highlight=False)
            if problems:
                console.print(f"{len(problems)} problem(s) in {root}: the catalog cannot be used", markup=False,
                              highlight=False)
                return 2
            from ..cdm import load_catalog

            cat = load_catalog(root)
            console.print(f"ok: {root}: {len(cat.tables)} tables, {len(all_rules(cat))} rules", markup=False,
                          highlight=False)
            return 0

        raise typer.Exit(run_guarded(body, err_console))
