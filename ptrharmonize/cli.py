"""The `ptrh` command line. Each command parses options, calls one function, renders.

Commands live here when they are the core flow (validate, ingest, status, schema) and in
`ptrharmonize/commands/<name>.py` otherwise; those register themselves.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from . import commands as _commands
from .cli_help import TidyGroup
from .commands.common import ProgressDisplay, load_submission  # noqa: F401 - load_submission re-exported (tests)
from .errors import UserError, fail, run_guarded

if TYPE_CHECKING:
    from .commands.common import Parts
    from .submission import Submission
    from .validate import ValidationResult

app = typer.Typer(
    name="ptrh",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    cls=TidyGroup,
)
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


def _on_broken_pipe(self: Console) -> None:
    """`ptrh ... | head`: the reader has gone. Rich's default is exit 1 at once; here the output
    goes to /dev/null and the command finishes its work, so its exit code is still its own
    (0 when it succeeded) and an ingest is never cut short by a closed terminal pipe."""
    from .errors import _quiet_broken_pipe

    _quiet_broken_pipe()


Console.on_broken_pipe = _on_broken_pipe  # every Console of the CLI process


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            v = version("ptrharmonize")
        except PackageNotFoundError:  # pragma: no cover - running from a bare source tree
            from . import __version__ as v
        console.print(f"ptrh {v}")
        raise typer.Exit(0)


@app.callback()
def root(
    ctx: typer.Context,
    registry: Annotated[Path | None, typer.Option(
        "--registry", envvar="PTRH_REGISTRY",
        help="A registry folder (made by `ptrh init`): its schemas/, mappings/, thresholds and store "
             "are used. Default: the nearest folder holding ptrh.toml from the working directory "
             "up; outside one, the built-in model.")] = None,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """ptrharmonize: validate, harmonize, pool and analyse multi-center registries of platelet
    transfusion refractoriness (PTR) after CAR-T or salvage chemotherapy.

    Typical flow: ptrh validate EXTRACT -> ptrh ingest EXTRACT --mapping M --store S -> ptrh
    run-analysis --store S --out R -> ptrh qa-report --store S --out qa.html. Exit codes: 0 no
    errors, 1 errors found in the data, 2 could not run."""
    from .registry import activate

    code = run_guarded(lambda: activate(ctx, registry), err_console)
    if code:
        raise typer.Exit(code)
    if ctx.invoked_subcommand in ("validate", "ingest", "scan", "mapping", "demo"):
        from .read.bounded import warm

        warm()  # the bounded readers' server imports in parallel with the command's own imports


@app.command()
def validate(
    paths: Annotated[list[Path], typer.Argument(help="Submission folder(s): canonical extracts, or each center's files with its --mapping.", show_default=False)],
    mapping: Annotated[list[Path] | None, typer.Option(help="The center's mapping file (mappings/<center>.yaml); one per folder, in order, for several.")] = None,
    format: Annotated[str, typer.Option("--format", "-f", help="text (rich summary) or json (the issue table and rule results; a list of them for several folders).")] = "text",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the issue list for the center (.csv or .xlsx); for several folders OUT-<folder>.csv each.")] = None,
    thresholds: Annotated[Path | None, typer.Option(help="Tolerances per rule (and center): CSV rule_id,center_id,threshold or YAML.")] = None,
    engine: Annotated[str, typer.Option(help="Back end for column checks: pandera, polars, or auto (pandera up to 250,000 rows per table, polars above; the same results).")] = "auto",
    stage: Annotated[Path | None, typer.Option(help="Keep the checked, typed data in this folder, so that `ptrh ingest --stage` with the same folder stores it without parsing the files again.")] = None,
    max_issues: Annotated[int, typer.Option(help="Issues shown in the terminal summary.")] = 20,
    jobs: Annotated[int, typer.Option(help="With several folders: small submissions (up to ~500,000 rows: 32 MB as CSV) validated at once.")] = 2,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress display.")] = False,
) -> None:
    """Check a submission against the common data model and the rule catalog.

    Every finding is one row: rule id, severity, file, sheet, spreadsheet row (header = 1) and
    place (SPSS: case number), patient code, column and the center's own header, value, a message
    for the person who fixes the data (in the mapping's `language:`) and a hint for the coordinator. Exit 0 when no error rule exceeds
    its threshold (warnings allowed), 1 when one does, 2 when the check could not run; for
    several folders, the worst of them.

    An export of several centers (a mapping whose center_id value map names several, e.g. a
    REDCap project's data access groups) is split: each center is a submission of its own (its
    issue list OUT-<center>.csv, rule results and thresholds); rows whose center is blank or not
    in the map are reported at their rows (OUT-_no_center.csv) and make the exit code 1.
    """

    def body() -> int:
        from contextlib import closing

        from .batch import in_order, is_small
        from .commands.common import Parts, load_parts, part_output, prepare_batch
        from .errors import run_guarded_each
        from .report.issues import (
            render_terminal,
            to_json_dict,
            write_issues,
            write_json,
        )
        from .validate import Engine
        from .validate.stage import validate_and_keep

        if format not in ("text", "json"):
            raise UserError("--format must be 'text' or 'json'")
        pairs, several, cat, th = prepare_batch(paths, mapping, None, output, thresholds, jobs)
        docs: list[dict] = []
        split_seen = False

        def work(pair: tuple[Path, Path | None], inline: bool) -> Parts:
            def check(sub: Submission) -> tuple[ValidationResult, Path | None]:
                with ProgressDisplay(quiet or format == "json" or not inline, err_console) as progress:
                    eng = Engine(cat, column_engine=engine, thresholds=th, progress=progress)
                    if stage is not None and not sub.centers:  # one kept validation per submission folder
                        return validate_and_keep(eng, sub, stage)
                    return eng.validate(sub), None

            return load_parts(*pair, cat, check)

        def show(path: Path, label: str | None, result: ValidationResult, kept: Path | None, split: bool) -> int:
            out = part_output(output, path, several, label)
            if out is not None:
                write_issues(result.issues, out)
            if format == "json":
                doc = to_json_dict(result)
                if split:  # which center of the export (None: its rows of no center)
                    doc = {"source": str(path), "center_id": result.center_id, **doc}
                    if result.center_id is None:
                        doc.pop("missing_data", None)  # rows of no center derive no outcomes
                docs.append(doc)
                for line in result.could_not_run:
                    err_console.print(line, markup=False, highlight=False)
                return result.exit_code
            name = str(path) if label is None else (f"{path}, center {label}" if result.center_id
                                                    else f"{path}, rows that name no center")
            render_terminal(result, console, name, max_issues=max_issues)
            if out is not None:
                console.print(f"issue list written to {out}")
            if kept is not None:
                console.print(f"validation kept in {kept}: `ptrh ingest {path} --stage {stage} ...` stores it "
                              "without parsing the files again")
            elif stage is not None and not split:
                console.print("[yellow]validation not kept:[/yellow] identifiers were found, and they are "
                              "never copied; remove them and validate again")
            return result.exit_code

        def one(item: tuple[tuple[Path, Path | None], Callable[[], Parts]]) -> int:
            nonlocal split_seen
            (path, _mp), get = item
            parts = get()
            try:
                split_seen = split_seen or parts.split
                for note in parts.notes:
                    err_console.print(note, markup=False, highlight=False)
                if stage is not None and parts.split and format != "json":
                    console.print("[yellow]validation not kept:[/yellow] --stage keeps one center's submission; "
                                  "`ptrh ingest` validates an export of several centers afresh")
                codes = [show(path, label, result, kept, parts.split) for label, _sub, result, kept in parts.items]
                if parts.unassigned is not None:
                    codes.append(show(path, Parts.NO_CENTER, parts.unassigned, None, True))
                return max(codes, default=0)
            finally:
                parts.cleanup()

        with closing(in_order(pairs, work, lambda r: r.cleanup(), jobs, is_small)) as items:
            code = run_guarded_each(items, one, err_console)
        if format == "json" and docs:
            write_json(docs if several or split_seen else docs[0], sys.stdout)
        return code

    raise typer.Exit(run_guarded(body, err_console))


def _register_commands() -> None:
    for mod in pkgutil.iter_modules(_commands.__path__):
        module = importlib.import_module(f"{_commands.__name__}.{mod.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(app)


_register_commands()


def main() -> None:
    """The console entry (`ptrh`): Ctrl-C is exit 2 with a message; a closed pipe
    (`ptrh ... | head`) ends quietly with exit 0."""
    from .errors import _quiet_broken_pipe

    try:
        app()
    except KeyboardInterrupt:
        fail(err_console, "interrupted")
        sys.exit(2)
    except BrokenPipeError:
        _quiet_broken_pipe()
        sys.exit(0)


if __name__ == "__main__":  # pragma: no cover
    main()
