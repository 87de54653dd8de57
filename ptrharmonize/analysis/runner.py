"""`run_analysis`: every analysis of the study on a store, written as results.json, tables, figures.

The store is never written to. The analysis runs in a private in-memory DuckDB that ATTACHes
the store READ_ONLY (so an analyst may point it at a store another process reads, or at a
read-only copy), exposes each CDM table as a view of the store's table restricted by
`--center` / `--since`, installs the derived views over those (`derive.install_views`, with the
definitions in force, `--config` included), and materialises `patient_summary` and
`transfusion_il6` once, in memory, so that ten analyses do not each recompute the derivations.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import os
import platform
import re
import sys
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from .. import __version__
from ..cdm import load_catalog, load_definitions
from ..db import frame, run, scalar
from ..derive import install_views
from ..errors import UserError, one_line
from ..stats._common import NotEstimable
from ..store import attach_read_only, qi, table_ddl
from . import _plots, population, sensitivity
from ._common import AnalysisResult, Context, not_estimable, num
from .flow_figure import flow_figure
from .registry import Analysis, discover, registry_analyses_dir

STORE = "store"  # the alias of the attached store inside the analysis connection
# Derived relations the analyses read, materialised once per run.
MATERIALISED = ("patient_summary", "transfusion_il6", "patient_missing")
VARIANT_KEYS = ("mann_whitney", "cmh_correct", "entry_test", "gee_corstr", "landmark_days",
                "confidence", "min_expected", "shapiro_alpha")
SOFTWARE = (
    "duckdb", "polars", "pyarrow", "numpy", "scipy", "statsmodels", "firthmodels", "matplotlib",
)


def run_analysis(
    store_path: Path | str,
    out_dir: Path | str,
    centers: Sequence[str] | None = None,
    since: dt.date | str | None = None,
    config: Path | str | None = None,
    progress: bool = True,
    analyses_dirs: Sequence[Path | str] = (),
    options: dict[str, Any] | None = None,
    missing: str | None = None,
) -> dict[str, Any]:
    """Run every analysis found (`registry.discover`: the package's, the entry points', the
    registry folder's `analyses/` and `analyses_dirs`) on the store and write `out_dir/results.json`,
    `out_dir/tables/<id>.csv|.md` and `out_dir/figures/<id>.png|.svg`. Returns the results.

    `centers`: only these centers; `since`: only patients whose index date is on or after it;
    `config`: a YAML file merged over `schemas/definitions.yaml`. Raises `UserError` when the
    store is missing, unreadable or holds no patient (after the filters)."""
    store_path = Path(store_path)
    since_date = _parse_since(since)
    missing = sensitivity.check_mode(missing)
    centers = list(centers) if centers else None
    if config is not None and not Path(config).is_file():
        raise UserError(f"--config: no such file: {config}")
    definitions = load_definitions(Path(config) if config is not None else None)
    extra = [Path(d) for d in analyses_dirs]
    reg_dir = registry_analyses_dir()
    if reg_dir is not None and reg_dir not in extra:
        extra.append(reg_dir)
    for d in extra:
        if not d.is_dir():
            raise UserError(f"--analyses: no such folder: {d}")
    try:
        found = discover(extra)
    except Exception as exc:  # noqa: BLE001 - a registry's own module that does not import
        raise UserError(f"an analysis module could not be loaded ({', '.join(map(str, extra))}): "
                        f"{type(exc).__name__}: {exc}") from exc
    if options:
        definitions = {**definitions, "analysis": {**definitions["analysis"], **options}}
    with _Progress(progress, total=len(found) + 2) as bar:
        bar.step("reading the store and deriving the views")
        con = open_store(store_path, definitions, centers, since_date)
        try:
            return run_analyses(
                con,
                definitions,
                out_dir,
                submissions=active_submissions(con, centers),
                run_info={
                    "store": str(store_path),
                    "filters": {
                        "centers": centers,
                        "since": since_date.isoformat() if since_date else None,
                        "config": str(config) if config is not None else None,
                    },
                },
                bar=bar,
                found=found,
                missing=missing,
            )
        finally:
            con.close()


def run_analyses(
    con: duckdb.DuckDBPyConnection,
    definitions: dict[str, Any],
    out_dir: Path | str,
    submissions: Sequence[dict[str, Any]] = (),
    run_info: dict[str, Any] | None = None,
    analyses: Iterable[str] | None = None,
    bar: _Progress | None = None,
    figures: bool = True,
    found: dict[str, Analysis] | None = None,
    missing: str | None = None,
) -> dict[str, Any]:
    """Run the analyses on a connection where `patient_summary` and `transfusion_il6` can be
    read; write their tables and figures under `out_dir`, then results.json (which also
    records `submissions`, the software, the definitions and `run_info`). Returns the results."""
    out = Path(out_dir)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    bar = bar or _Progress(False, 0)
    ctx = Context(con, definitions)
    analyses_out: dict[str, Any] = {}
    summary: list[dict[str, Any]] = []
    files: dict[str, list[str]] = {}
    found = found if found is not None else discover()
    for analysis_id in analyses or found:
        bar.step(analysis_id)
        res = run_one(found[analysis_id].func, ctx)
        res.data["population_sql"] = _sql_name(found[analysis_id])
        population.attach(con, analysis_id, res)
        try:
            files[analysis_id] = [
                str(p.relative_to(out)) for p in write_outputs(res, out, analysis_id, figures)
            ]
        except Exception as exc:  # noqa: BLE001 - a figure that fails must not lose the numbers
            res.data["output_error"] = _message(exc)
            files[analysis_id] = []
        analyses_out[analysis_id] = num(res.data)
        summary += [{"analysis": analysis_id, **num(s)} for s in res.summary]
    sens = None
    if missing:  # Tables 2 and 3 again with the unknowns as events / non-events
        sens = sensitivity.run_sensitivity(con, ctx, missing, out, {k: a.func for k, a in found.items()},
                                           write_outputs, run_one)
    bar.step("writing results.json")
    status = {k: v["status"] for k, v in analyses_out.items()}
    params = definitions.get("analysis", {})
    flows = population.flows(con, analyses_out.keys())
    for set_id, fl in flows.items():
        fl["files"] = ([str(p.relative_to(out)) for p in
                        _plots.save(flow_figure(fl), out / "figures" / f"flow_{set_id}")]
                       if figures and "steps" in fl else [])
    results = {
        "status": status,
        # the test variants in force (study defaults; --config / --mann-whitney / --landmark-day)
        "variants": {k: params.get(k) for k in VARIANT_KEYS if k in params},
        "analyses": analyses_out,
        "summary": summary,
        "flows": flows,
        **({"sensitivity": num(sens)} if sens else {}),
        "software": software_versions(),
        "submissions": list(submissions),
        "settings": definitions,
        "files": files,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        **(run_info or {}),
    }
    write_json(results, out / "results.json")
    return results


def run_one(analysis: Any, ctx: Context) -> AnalysisResult:
    """One analysis that never takes the others down: data it cannot support end as
    `not_estimable` with the reason (`stats.NotEstimable`: too few events, an empty group, a
    singular design...), anything else as `error` with the message (a bug, or data nobody
    foresaw); the run goes on either way and the exit code reports the errors."""
    try:
        res = analysis(ctx)
    except NotEstimable as exc:
        return not_estimable(str(exc))
    except Exception as exc:  # noqa: BLE001 - reported as this analysis's `error`
        if os.environ.get("PTRH_DEBUG"):
            raise
        msg = _message(exc)
        return AnalysisResult(
            data={"status": "error", "error": msg},
            table=pl.DataFrame({"status": ["error"], "error": [msg]}),
        )
    res.data.setdefault("status", "ok")
    return res


def _sql_name(a: Analysis) -> str:
    """The population SQL as the user finds it: package-relative for the package's own."""
    package = Path(__file__).resolve().parents[1]
    try:
        return str(Path("ptrharmonize") / a.population_sql.relative_to(package))
    except ValueError:
        return str(a.population_sql)


def _message(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {one_line(str(exc), 600)}"


# --------------------------------------------------------------------------- the store


def _memory_limit() -> str:
    """DuckDB's memory limit for the analyses: PTRH_MEMORY_LIMIT (e.g. '4GB'), default 1GB."""
    value = os.environ.get("PTRH_MEMORY_LIMIT", "1GB").strip()
    if not re.fullmatch(r"[0-9]+(\.[0-9]+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)", value):
        raise UserError(f"PTRH_MEMORY_LIMIT must look like '1GB' or '512MB', not {value!r}")
    return value


def open_store(
    store_path: Path,
    definitions: dict[str, Any],
    centers: Sequence[str] | None = None,
    since: dt.date | None = None,
) -> duckdb.DuckDBPyConnection:
    """A private in-memory connection over the store, read-only, filtered, views installed."""
    if not store_path.is_file():
        raise UserError(
            f"no store at {store_path}: create it with `ptrh ingest EXTRACT --store {store_path}`"
        )
    # DuckDB's own progress bar would draw over ours (and print with --quiet)
    con = duckdb.connect()
    try:
        run(con, "SET enable_progress_bar = false")
        # Bounded memory: DuckDB spills the large joins of the derived views to disk instead of
        # holding them (measured at 50,000 patients: 2.1 GB peak unbounded, 1.3 GB with 1 GB).
        run(con, f"SET memory_limit = {_literal(_memory_limit())}")
        run(con, f"SET temp_directory = {_literal(os.path.join(tempfile.gettempdir(), 'ptrh-analysis-spill'))}")
    except duckdb.Error as exc:
        con.close()
        raise UserError(f"cannot prepare the analysis connection: {exc}") from exc
    try:
        present = attach_read_only(con, store_path, STORE)
        if "patients" not in present or not scalar(con, f"SELECT count(*) FROM {STORE}.patients"):
            raise UserError(
                f"the store {store_path} holds no patients: ingest a submission first "
                f"(`ptrh ingest EXTRACT --store {store_path}`)"
            )
        _cdm_views(con, present, centers, since)
        if not scalar(con, "SELECT count(*) FROM patients"):
            raise UserError(
                f"no patient of the store matches the filters (centers: {centers or 'all'}, "
                f"index date since: {since or 'any'})"
            )
        install_views(con, definitions)
        for name in MATERIALISED:
            run(con, f"CREATE TEMP TABLE {qi(name)} AS SELECT * FROM main.{qi(name)}")
    except BaseException:
        con.close()
        raise
    return con


def _cdm_views(
    con: duckdb.DuckDBPyConnection,
    present: set[str],
    centers: Sequence[str] | None,
    since: dt.date | None,
) -> None:
    """Each CDM table as a view of the store's table, keeping only the selected patients.
    A table the store lacks is an empty in-memory table of the CDM shape."""
    catalog = load_catalog()
    restrict = ""
    if since:
        restrict += (
            f" SEMI JOIN (SELECT center_id, patient_id FROM {STORE}.treatments"
            f" WHERE index_date >= DATE {_literal(since.isoformat())}) AS s"
            " USING (center_id, patient_id)"
        )
    if centers:
        restrict += f" WHERE t.center_id IN ({', '.join(_literal(c) for c in centers)})"
    for table in catalog.table_names:
        if table in present:
            run(con, f"CREATE VIEW {qi(table)} AS SELECT t.* FROM {STORE}.{qi(table)} AS t{restrict}")
        else:
            run(con, table_ddl(catalog, table))
    if "collection" in present:  # which tables/columns each center collects (issue 16)
        where = f" WHERE center_id IN ({', '.join(_literal(c) for c in centers)})" if centers else ""
        run(con, f"CREATE VIEW collection AS SELECT * FROM {STORE}.collection{where}")


def active_submissions(
    con: duckdb.DuckDBPyConnection, centers: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """The store's active submissions (of the selected centers): what the results rest on."""
    has = scalar(
        con,
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = ? AND table_name = 'submissions'",
        [STORE],
    )
    if not has:
        return []
    sql = f"SELECT * FROM {STORE}.submissions WHERE status = 'active'"
    if centers:
        sql += f" AND center_id IN ({', '.join(_literal(c) for c in centers)})"
    rows = frame(con, sql + " ORDER BY center_id, submitted_at").to_dicts()
    for r in rows:
        for k, v in r.items():
            if isinstance(v, (dt.date, dt.datetime)):
                r[k] = v.isoformat()
            elif k in ("file_checksums", "row_counts") and isinstance(v, str):
                r[k] = json.loads(v)
    return rows


def _literal(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def _parse_since(since: dt.date | str | None) -> dt.date | None:
    if since is None or isinstance(since, dt.date):
        return since
    try:
        return dt.date.fromisoformat(since)
    except ValueError as exc:
        raise UserError(f"--since must be a date written YYYY-MM-DD, not {since!r}") from exc


# --------------------------------------------------------------------------- outputs


def write_outputs(
    res: AnalysisResult, out: Path, analysis_id: str, figures: bool = True
) -> list[Path]:
    written = [out / "tables" / f"{analysis_id}.csv", out / "tables" / f"{analysis_id}.md"]
    # Center codes and labels come from the data: never let a spreadsheet run them as formulas.
    from ..spreadsheet import neutralize_formula

    texts = [c for c, t in res.table.schema.items() if t == pl.Utf8]
    res.table.with_columns(
        [pl.col(c).map_elements(neutralize_formula, return_dtype=pl.Utf8) for c in texts]
    ).write_csv(written[0])
    caption = f"\n{res.caption}\n" if res.caption else ""
    written[1].write_text(markdown_table(res.table) + caption, encoding="utf-8")
    if figures and res.figure is not None:
        fig = res.figure()
        if res.caption:
            fig.supxlabel(res.caption, fontsize=7, wrap=True)
        written += _plots.save(fig, out / "figures" / analysis_id)
    return written


def markdown_table(df: pl.DataFrame) -> str:
    """The table for reading: numbers formatted here only (the CSV keeps them as numbers);
    p-values to 3 decimals (4 below 0.01, "<0.001" below 0.001), other reals to 4 significant
    digits, an infinite value as "Infinity"."""
    from ._common import fmt, fmt_p

    p_columns = {c for c in df.columns if c == "p_value" or c.endswith("_p_value") or c.endswith("_p")}

    def cell(v: Any, column: str) -> str:
        if isinstance(v, float):
            v = fmt_p(v) if column in p_columns else fmt(v, 4)
        elif isinstance(v, bool):
            v = "yes" if v else "no"
        return "" if v is None else str(v).replace("|", "\\|").replace("\n", " ")

    lines = [
        "| " + " | ".join(df.columns) + " |",
        "|" + "|".join("---" for _ in df.columns) + "|",
    ]
    lines += ["| " + " | ".join(cell(v, c) for v, c in zip(row, df.columns, strict=True)) + " |"
              for row in df.iter_rows()]
    return "\n".join(lines) + "\n"


def write_json(results: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(num(results), indent=2, ensure_ascii=False, default=str) + "\n",
        encoding="utf-8",
    )


def software_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {
        "ptrharmonize": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }
    for name in SOFTWARE:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


class _Progress:
    """A rich progress bar over the analyses (on stderr); does nothing when disabled."""

    def __init__(self, enabled: bool, total: int) -> None:
        self.enabled, self.total = enabled, total
        self._p: Any = None
        self._task: Any = None
        self._started = False

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._p = Progress(
                TextColumn("[bold]run-analysis[/bold] {task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._p.start()
            self._task = self._p.add_task("", total=self.total)
        return self

    def step(self, description: str) -> None:
        """Start the next step (the previous one, if any, is done)."""
        if self._p is not None:
            self._p.update(self._task, description=description, advance=int(self._started))
            self._started = True

    def __exit__(self, *exc: object) -> None:
        if self._p is not None:
            self._p.update(self._task, completed=self.total)
            self._p.stop()


__all__ = ["run_analysis", "run_analyses", "open_store", "active_submissions"]
