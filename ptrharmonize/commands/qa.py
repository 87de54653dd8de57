"""`ptrh qa-report`: the data-quality report a data manager reads, for the whole registry or for
one submission before it is ingested."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from ..errors import UserError, run_guarded


def register(app: typer.Typer) -> None:
    app.command("qa-report")(qa_report_command)


def qa_report_command(
    path: Annotated[Path | None, typer.Argument(
        help="A submission folder to check before ingest (a canonical extract, or the center's files "
             "with --mapping). Leave out and give --store for the whole registry.")] = None,
    out: Annotated[Path, typer.Option(help="The HTML file to write (one self-contained file).")] = Path("qa.html"),
    store: Annotated[Path | None, typer.Option(help="The registry's DuckDB file (opened read-only).")] = None,
    mapping: Annotated[Path | None, typer.Option(help="The center's mapping file, with SUBMISSION_PATH.")] = None,
    thresholds: Annotated[Path | None, typer.Option(
        help="Tolerances per rule (and center), as for `ptrh validate --thresholds`; re-applied to the "
             "stored counts without re-running any check.")] = None,
    issues_dir: Annotated[Path | None, typer.Option(
        help="Also write the issue list per center as issues_<center>.csv and .xlsx into this folder.")] = None,
    config: Annotated[Path | None, typer.Option(
        help="YAML definitions merged over schemas/definitions.yaml (CCI windows, CRS criteria).")] = None,
    max_rows: Annotated[int, typer.Option(help="Issue rows shown per center in the HTML (all are exported).")] = 1000,
    stage: Annotated[Path | None, typer.Option(
        help="With SUBMISSION_PATH: report the validation kept here by `ptrh validate --stage` when it is "
             "of these very files under these rules (not with --config); otherwise validate them.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress display.")] = False,
) -> None:
    """Write the QA report: summary per center, rule results with denominators, completeness,
    distributions by center, PTR evaluability, CRS grade agreement, bleeding grade consistency and
    the rows to fix.

    With --store: the pooled registry. With SUBMISSION_PATH (and --mapping): one submission, checked
    by the validation engine and reported before it is ingested, so it can go back to the center.
    Exit 0 when the report was written (whatever the data's errors), 2 when it could not be.
    """
    console, err_console = Console(soft_wrap=True), Console(stderr=True, soft_wrap=True)

    def body() -> int:
        from ..cdm import load_definitions
        from ..report.completeness_check import ensure_completeness_compiles
        from ..report.qa import open_store_source, open_submission_source
        from ..report.qa_build import build_report
        from ..validate.catalog import checked_catalog
        from ..validate.rules import all_rules
        from ..validate.thresholds import ThresholdsError, load_thresholds

        if path is None and store is None:
            raise UserError("give SUBMISSION_PATH (one submission before ingest) or --store (the registry)")
        if path is not None and store is not None:
            raise UserError("give either SUBMISSION_PATH or --store, not both")
        if mapping is not None and path is None:
            raise UserError("--mapping goes with SUBMISSION_PATH")
        if stage is not None and path is None:
            raise UserError("--stage goes with SUBMISSION_PATH")
        if max_rows < 0:
            raise UserError("--max-rows must be >= 0")
        if out.exists() and out.is_dir():
            raise UserError(f"{out}: --out must be a file name, not a folder")
        from ..outputs import check_output

        check_output(out, [(store, "the store"), (path, "the submission folder"), (mapping, "the mapping file"),
                           (thresholds, "the thresholds file"), (config, "the configuration file")], "--out")
        cat = checked_catalog()
        ensure_completeness_compiles()  # the completeness section's queries, before any data is read
        try:
            th = load_thresholds(thresholds, {r.id for r in all_rules(cat)}) if thresholds else None
        except ThresholdsError as exc:
            raise UserError(str(exc)) from None
        definitions = None
        if config is not None:
            from ..derive import definition_macros

            definitions = load_definitions(config)
            definition_macros(definitions)  # a bad value is the user's to fix: exit 2, not a degraded report
        result = None
        if store is not None:
            src = open_store_source(store, definitions, cat)
        else:
            from ..validate import Engine
            from .common import ProgressDisplay, load_submission

            if stage is not None and config is None:
                # A kept validation was graded with the definitions of schemas/ (part of its key),
                # so a report under other definitions (--config) validates afresh.
                from ..validate.stage import find_kept

                kept = find_kept(Engine(cat, thresholds=th), path, mapping, stage)
                result = kept.result
                err_console.print(f"{path}: reporting the validation kept at {kept.created_at}" if result is not None
                                  else f"{path}: validating ({kept.reason})")
            if result is None:
                sub = load_submission(path, mapping)
                with ProgressDisplay(quiet, err_console) as progress:
                    result = Engine(cat, thresholds=th, definitions=definitions, progress=progress).validate(sub)
            try:
                src = open_submission_source(result, str(path), definitions, cat, mapping)
            except BaseException:
                result.cleanup()
                raise
        try:
            if quiet:
                outcome = build_report(src, out, th, issues_dir, max_rows, cat, definitions)
            else:
                import time

                t0 = time.perf_counter()
                with err_console.status("building the QA report (sections, figures, issue lists)"):
                    outcome = build_report(src, out, th, issues_dir, max_rows, cat, definitions)
                err_console.print(f"built in {time.perf_counter() - t0:.1f} s")
        finally:
            src.close()
            if result is not None:
                result.cleanup()
        console.print(f"QA report written to {escape(str(outcome.out))}: {len(outcome.centers)} center(s), "
                      f"{outcome.errors:,} errors, {outcome.warnings:,} warnings")
        if outcome.exports:
            console.print(f"issue lists: {len(outcome.exports)} files in {escape(str(issues_dir))}")
        for note in outcome.notes:
            console.print(f"[yellow]note:[/yellow] {escape(note)}")
        return 0

    raise typer.Exit(run_guarded(body, err_console))
