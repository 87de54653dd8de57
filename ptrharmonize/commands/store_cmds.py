"""`ptrh ingest` and `ptrh status`: the pooled store."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..errors import UserError, run_guarded

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


def register(app: typer.Typer) -> None:
    @app.command()
    def ingest(
        paths: Annotated[list[Path], typer.Argument(help="Submission folder(s): canonical extracts, or each center's files with its --mapping.", show_default=False)],
        store: Annotated[Path, typer.Option(help="The registry's DuckDB file (created if absent).")],
        mapping: Annotated[list[Path] | None, typer.Option(help="The center's mapping file (mappings/<center>.yaml); one per folder, in order, for several.")] = None,
        output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the issue list (.csv or .xlsx); for several folders OUT-<folder>.csv each.")] = None,
        thresholds: Annotated[Path | None, typer.Option(help="Tolerances per rule (and center).")] = None,
        engine: Annotated[str, typer.Option(help="Back end for column checks: pandera, polars, or auto (pandera up to 250,000 rows per table, polars above; the same results).")] = "auto",
        stage: Annotated[Path | None, typer.Option(help="Store the validation kept here by `ptrh validate --stage` when it is of these very files (checksums) under these rules; otherwise validate them as usual.")] = None,
        wait: Annotated[float, typer.Option(help="Seconds to wait for another writer to finish.")] = 0.0,
        jobs: Annotated[int, typer.Option(help="With several folders: small submissions (up to ~500,000 rows: 32 MB as CSV) validated at once, while the previous one is stored.")] = 2,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress display.")] = False,
        allow_shrink: Annotated[bool, typer.Option(help="Store a submission even when it empties a table of the center's stored data or removes more than max_shrink_share (schemas/limits.yaml, default 50%) of its rows.")] = False,
        confirm_center: Annotated[bool, typer.Option(help="Store a mapped submission even when its center is stored from another mapping file.")] = False,
    ) -> None:
        """Map, validate and store a center's submission (or several, one folder each).

        Only a submission without blocking errors is stored, and then it replaces all of that
        center's previous data in one transaction. The same files again change nothing. A
        rejected submission leaves the store exactly as it was. Several folders are stored one
        after the other, each in its own transaction (the store stays locked against other
        writers until the last is done). Exit codes as for validate.

        An export of several centers (a mapping whose center_id value map names several, e.g. a
        REDCap project's data access groups) is one submission per center: each is stored or
        rejected on its own, in its own transaction, so one center's errors never hold back
        another's. Rows whose center is blank or not in the map are stored nowhere (never under a
        guessed center) and reported at their rows. Exit 0 only when every center of the export is
        stored (or unchanged) and no row lacks a center; otherwise 1, and the lines above say which
        centers were stored and which refused.
        """

        def body() -> int:
            from contextlib import closing

            from ..batch import in_order, is_small
            from ..errors import run_guarded_each
            from ..ingest import StoreWriter
            from ..report.issues import render_terminal, write_issues
            from ..validate import Engine
            from ..validate.stage import find_kept
            from .common import (
                Parts,
                ProgressDisplay,
                load_parts,
                part_output,
                prepare_batch,
                several_centers,
            )

            pairs, several, cat, th = prepare_batch(paths, mapping, store, output, thresholds, jobs)

            def work(pair: tuple[Path, Path | None], inline: bool) -> Parts:
                """The validation(s) to store: the kept one when --stage has it, else a fresh
                one (one per center for an export of several centers), with the line that says
                which. A part's `extra` is (checksums or None, that line)."""
                path, mp = pair
                note = None
                if stage is not None:
                    if several_centers(path, mp, cat):
                        note = f"{path}: validating (--stage keeps one center's submission; this export holds several)"
                    else:
                        kept = find_kept(Engine(cat, column_engine=engine, thresholds=th), path, mp, stage)
                        if kept.result is not None:
                            parts = Parts(split=False)
                            parts.items.append((None, kept.submission, kept.result, (
                                kept.checksums, f"{path}: storing the validation kept at {kept.created_at} "
                                                "(the files are unchanged since)")))
                            return parts
                        note = f"{path}: validating ({kept.reason})"

                def check(sub: Any) -> tuple[Any, tuple[Any, str | None]]:
                    with ProgressDisplay(quiet or not inline, err_console) as progress:
                        result = Engine(cat, column_engine=engine, thresholds=th, progress=progress).validate(sub)
                    return result, (None, note)

                return load_parts(path, mp, cat, check)

            def store_one(path: Path, label: str | None, sub: Any, result: Any, extra: tuple[Any, str | None],
                          sums: Any) -> int:
                sums_kept, _note = extra
                name = str(path) if label is None else f"{path}, center {label}"
                out_file = part_output(output, path, several, label)
                if out_file is not None:
                    write_issues(result.issues, out_file)
                if not quiet:
                    render_terminal(result, console, name, max_issues=10)
                out = writer.ingest(sub, result, sums_kept or sums)
                if out.status == "rejected":
                    for line in result.could_not_run:  # an unchecked table is not a clean one (exit 2)
                        err_console.print(line, markup=False, highlight=False)
                    console.print(f"[red]rejected:[/red] {escape(name)}: nothing of it was stored ({escape(str(store))} was not changed by it); "
                                  "fix the errors above and submit again")
                    return result.exit_code
                if out.status == "unchanged":
                    console.print(f"unchanged: this submission of {out.center_id} is already stored as {out.submission_id}")
                    return 0
                total = sum(out.rows.values())
                replaced = f", replacing {out.replaced}" if out.replaced else ""
                console.print(f"[green]stored[/green] {total:,} rows of {out.center_id} as {out.submission_id}{replaced}")
                if out.shrunk:  # stored (within --allow-shrink's limit), but never silently
                    console.print(f"[yellow]fewer rows than the submission it replaces:[/yellow] "
                                  f"{escape('; '.join(out.shrunk))} (rows the center no longer sends are removed from the store)")
                return 0

            def one(item: tuple[tuple[Path, Path | None], Callable[[], Parts]]) -> int:
                (path, _mp), get = item
                parts = get()
                try:
                    for note in parts.notes:
                        err_console.print(note, markup=False, highlight=False)
                    sums = None
                    if parts.split and parts.items:  # the export's checksums, once for its centers
                        from ..checksums import submission_checksums

                        s0 = parts.items[0][1]
                        sums = submission_checksums(s0.files, s0.source_path, s0.mapping_file)
                    note = parts.items[0][3][1] if parts.items else None
                    if note:  # said even with --quiet: it is what was stored, not progress
                        err_console.print(note)
                    # Each center is its own submission: stored or refused on its own (one
                    # center's errors never hold back another's); the exit code is the worst.
                    # A center that cannot be stored (another mapping file stores it, it would
                    # shrink) is reported and the export's other centers are still stored.
                    codes = [store_one(path, label, sub, result, extra, sums) if label is None else
                             run_guarded(lambda a=(path, label, sub, result, extra, sums): store_one(*a), err_console,
                                         catch_interrupt=False)
                             for label, sub, result, extra in parts.items]
                    if parts.unassigned is not None:
                        un = parts.unassigned
                        out_file = part_output(output, path, several, Parts.NO_CENTER)
                        if out_file is not None:
                            write_issues(un.issues, out_file)
                        if not quiet:
                            render_terminal(un, console, f"{path}, rows that name no center", max_issues=10)
                        console.print(f"[red]not stored:[/red] {escape(str(path))}: {un.issues.height:,} row(s) name no center "
                                      "of the mapping; they are in no center's submission. Fix their center and submit again")
                        codes.append(un.exit_code)
                    return max(codes, default=0)
                finally:
                    parts.cleanup()

            # One writer for every folder: the store is opened (and locked) once, at the first
            # submission to store, and checkpointed once at the end; each center is still its
            # own transaction.
            with StoreWriter(store, cat, wait, allow_shrink, confirm_center) as writer, \
                    closing(in_order(pairs, work, lambda r: r.cleanup(), jobs, is_small)) as items:
                return run_guarded_each(items, one, err_console)

        raise typer.Exit(run_guarded(body, err_console))

    @app.command()
    def status(
        store: Annotated[Path | None, typer.Option(help="The registry's DuckDB file (default: the registry folder's store, if any).")] = None,
        format: Annotated[str, typer.Option("--format", "-f", help="text or json.")] = "text",
    ) -> None:
        """Show the model in use (built-in or a registry folder, with its checksum) and, with a
        store, the registry: centers, submissions, row counts and open warnings."""

        def body() -> int:
            from ..paths import find_registry, model_in_use

            if format not in ("text", "json"):
                raise UserError("--format must be 'text' or 'json'")
            reg = find_registry()
            path = store if store is not None else (reg.store if reg is not None else None)
            model = model_in_use()
            st = None
            if path is not None and (store is not None or path.exists()):
                from ..ingest import store_status

                st = store_status(path)
            if format == "json":
                _status_json(model, path if st is not None else None, st)
            else:
                _status_text(model, path, st)
            return 0

        raise typer.Exit(run_guarded(body, err_console))


def _status_json(model: dict, path: Path | None, st: dict | None) -> None:
    import json
    import sys

    doc: dict[str, Any] = {"model": model, "store": str(path) if path is not None else None}
    if st is not None:
        doc["submissions"] = [{**r, "submitted_at": str(r["submitted_at"]),
                               "row_counts": json.loads(r["row_counts"]) if r.get("row_counts") else None}
                              for r in st["submissions"].iter_rows(named=True)]
        doc["counts"] = st["counts"]
        doc["not_collected"] = st["not_collected"]  # per center: the tables it does not collect
        doc["warnings"] = st["warnings"].to_dicts()
    json.dump(doc, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def _status_text(model: dict, path: Path | None, st: dict | None) -> None:
    where = {"built-in": "built-in model", "registry": f"registry folder {model['registry']}",
             "PTRH_SCHEMAS": f"PTRH_SCHEMAS={model['schemas']}"}[model["source"]]
    console.print(f"model: {where} (schemas sha256 {model['schemas_sha256'][:12]})", markup=False)
    if st is None:
        console.print("no store given (--store)" if path is None else f"store {path} not created yet",
                      markup=False)
        return
    subs = st["submissions"]
    t = Table(title=f"Submissions in {path}", show_edge=False)
    for c in ("center", "submission", "submitted", "status", "errors", "warnings"):
        t.add_column(c)
    for r in subs.iter_rows(named=True):
        # Cells are text, never markup: a center id such as `MK[/]1` is not a rich tag.
        t.add_row(escape(str(r["center_id"])), escape(str(r["submission_id"])), str(r["submitted_at"])[:19], r["status"],
                  str(r["n_errors"]), str(r["n_warnings"]))
    console.print(t)
    counts = st["counts"]
    centers = sorted({c for v in counts.values() for c in v})
    ct = Table(title="Rows by table and center", show_edge=False)
    ct.add_column("table")
    for c in centers:
        ct.add_column(escape(str(c)), justify="right")
    off = st["not_collected"]
    for table, per in counts.items():
        ct.add_row(table, *["not collected" if table in off.get(c, ()) else f"{per.get(c, 0):,}" for c in centers])
    console.print(ct)
    w = st["warnings"]
    if w.height:
        wt = Table(title="Open warnings", show_edge=False)
        for c in ("center", "rule", "count"):
            wt.add_column(c)
        for r in w.iter_rows(named=True):
            wt.add_row(escape(str(r["center_id"])), escape(str(r["rule_id"])), f"{r['n']:,}")
        console.print(wt)
    else:
        console.print("no open warnings")
