"""`ptrh mapping check FILE [--data FOLDER]`: lint a center's mapping before any data moves."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..errors import run_guarded

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


def register(app: typer.Typer) -> None:
    mapping_app = typer.Typer(help="Center mappings (mappings/<center>.yaml): check them before ingesting.", no_args_is_help=True)
    app.add_typer(mapping_app, name="mapping")

    @mapping_app.command("draft")
    def draft(
        folder: Annotated[Path, typer.Argument(help="The center's folder of files.")],
        center_id: Annotated[str, typer.Option("--center-id", help="The center's consortium code.")],
        output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the draft mapping (.yaml).")],
        min_count: Annotated[int, typer.Option(help="Values seen fewer times than this are not written.")] = 5,
    ) -> None:
        """Draft a mapping from the center's files: a CDM table per file, a CDM column per source
        column (by its name in several languages, its values and magnitudes), value maps filled
        with the values found (unmatched ones TODO), units and date formats, each proposal
        commented with its evidence and confidence. An existing file is not overwritten."""

        def body() -> int:
            from ..cdm import load_catalog
            from ..errors import UserError
            from ..mapping.draft import draft_mapping
            from .scan_cmd import scan_and_propose

            if output.suffix.lower() not in (".yaml", ".yml"):
                raise UserError(f"{output}: a mapping is a .yaml file")
            if output.exists():
                raise UserError(f"{output}: exists; the draft is not written over a mapping (choose a new name)")
            from ..mapping.draft_redcap import find_export

            export = find_export(folder) if folder.is_dir() else None
            if export is not None:  # a REDCap project export: drafted from its data dictionary
                from ..mapping.draft_redcap import draft_redcap
                from ..scan.match import load_lexicon

                text = draft_redcap(center_id, folder, export, load_catalog(), load_lexicon(), min_count)
                what = f"REDCap export ({export.records.name}, {export.dictionary.name})"
            else:
                files, tables = scan_and_propose(folder, min_count)
                text = draft_mapping(center_id, folder, tables, files, load_catalog())
                what = f"{len(tables)} table(s), {sum(len(t.columns) for t in tables)} column(s) proposed"
            output.write_text(text, encoding="utf-8")
            todo = text.count("TODO")
            console.print(f"draft written to {output}: {what}, {todo} TODO(s) to decide; "
                          f"check it with `ptrh mapping check {output} --data {folder}`", markup=False)
            return 0

        raise typer.Exit(run_guarded(body, err_console))

    @mapping_app.command("check")
    def check(
        file: Annotated[Path, typer.Argument(help="The mapping file (mappings/<center>.yaml).")],
        data: Annotated[Path | None, typer.Option("--data", help="The center's submission folder: also check files and source columns.")] = None,
        format: Annotated[str, typer.Option("--format", "-f", help="text or json.")] = "text",
        strict: Annotated[bool, typer.Option(help="Exit 1 on warnings too.")] = False,
    ) -> None:
        """Lint a mapping: unknown CDM tables and columns, unknown units, value maps to codes not
        in the CDM, unsafe file paths, unmapped required columns; with --data, missing files,
        source columns, and the source values a value map does not cover (that validation would
        refuse). Exit 0 when clean (warnings allowed unless --strict), 1 on problems,
        2 when the mapping cannot be read."""

        def body() -> int:
            from ..mapping import lint_mapping

            problems = lint_mapping(file, data)
            errors = [p for p in problems if p["level"] == "error"]
            warnings = [p for p in problems if p["level"] != "error"]
            if format == "json":
                console.print_json(json.dumps({"file": str(file), "errors": len(errors), "warnings": len(warnings), "problems": problems}, ensure_ascii=False))
            else:
                if problems:
                    t = Table(title=f"Problems in {escape(str(file))}", show_edge=False, show_lines=False)
                    t.add_column("level")
                    t.add_column("where")
                    t.add_column("problem", overflow="fold")
                    for p in problems:
                        style = "bold red" if p["level"] == "error" else "yellow"
                        t.add_row(f"[{style}]{p['level']}[/{style}]", escape(p["where"]), escape(p["message"]))
                    console.print(t)
                checked = f" against {escape(str(data))}" if data is not None else ""
                if errors:
                    console.print(f"[bold red]{len(errors)} error(s)[/bold red], {len(warnings)} warning(s) in {escape(str(file))}{checked}")
                elif warnings:
                    console.print(f"[yellow]{len(warnings)} warning(s)[/yellow], no errors in {escape(str(file))}{checked}")
                else:
                    console.print(f"[green]ok[/green]: {escape(str(file))} is a valid mapping{checked}")
            if errors or (strict and warnings):
                return 1
            return 0

        raise typer.Exit(run_guarded(body, err_console))
