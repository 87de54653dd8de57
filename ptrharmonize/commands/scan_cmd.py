"""`ptrh scan FOLDER`: profile a center's files before writing its mapping."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ..errors import UserError, run_guarded

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


def scan_and_propose(folder: Path, min_count: int, skip: tuple[Path, ...] = ()):
    """(files, table proposals) of a center's folder, with the model's lexicon; a column named
    like a direct identifier (phi.yaml) shows nothing of its values. `skip`: files not to scan
    (the report being written, when it goes into the folder). No readable file is exit 2: an
    empty scan report would look like a center with nothing to map."""
    from ..cdm import load_catalog
    from ..scan.match import load_lexicon, propose
    from ..scan.profile import identifier_name_pattern, scan_folder

    lexicon = load_lexicon()
    files = scan_folder(folder, lexicon, min_count=min_count, identifier_names=identifier_name_pattern(),
                        skip={p.resolve() for p in skip})
    if not files:
        raise UserError(f"{folder}: no file the readers take (CSV, TSV, Excel, Parquet, SPSS) in this folder")
    return files, propose(files, load_catalog(), lexicon)


def register(app: typer.Typer) -> None:
    @app.command()
    def scan(
        folder: Annotated[Path, typer.Argument(help="The center's folder of files (CSV, Excel, Parquet, SPSS).")],
        output: Annotated[Path, typer.Option("--output", "-o", help="The scan report: .xlsx or .html (both are written when the other suffix is given with --html).")] = Path("scan.xlsx"),
        html: Annotated[Path | None, typer.Option(help="Also write the report as HTML here.")] = None,
        min_count: Annotated[int, typer.Option(help="Values seen fewer times than this are not shown (they may identify a patient).")] = 5,
    ) -> None:
        """Profile every file of a center as it is: per file, sheet and column the inferred type,
        share empty, distinct values, range, date format, decimal mark, most frequent values
        (rare ones hidden), and the CDM column, unit and code each one is proposed for, with the
        evidence. The first step of onboarding a center; `ptrh mapping draft` turns the same
        proposals into a draft mapping."""

        def body() -> int:
            from ..scan.render import scan_rows, write_html, write_xlsx

            if min_count < 1:
                raise UserError("--min-count must be at least 1")
            targets = [output] + ([html] if html is not None else [])
            for t in targets:
                if t.suffix.lower() not in (".xlsx", ".html", ".htm"):
                    raise UserError(f"{t}: the scan report is written as .xlsx or .html, not '{t.suffix}'")
            files, tables = scan_and_propose(folder, min_count, skip=tuple(targets))
            rows = scan_rows(files, tables)
            for t in targets:
                if t.suffix.lower() == ".xlsx":
                    write_xlsx(rows, t)
                else:
                    write_html(rows, files, tables, folder, min_count, t)
            console.print(f"{len(files)} file(s)/sheet(s), {len(rows)} column(s) scanned; "
                          f"{len(tables)} CDM table(s) proposed; written: {', '.join(map(str, targets))}",
                          markup=False)
            return 0

        raise typer.Exit(run_guarded(body, err_console))
