"""`ptrh qa-report`: from a store or a submission to one HTML file (and the issue exports)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..cdm import Catalog, load_catalog
from .qa import QAReport, QASource, collect, issues_file_stem

# Reference lines drawn on a distribution: (distribution id, definitions key, label)
REFERENCES = (
    ("storage", "cci.max_storage_h", "CCI limit {v:g} h"),
    ("cci", "cci.refractory_below", "refractory below {v:g}"),
    ("temp", "crs.lee2014.fever_min_c", "fever {v:g} °C"),
)


@dataclass
class QAOutcome:
    out: Path
    centers: list[str]
    errors: int
    warnings: int
    exports: list[Path]
    notes: list[str]


def figures_for(report: QAReport) -> dict[str, str]:
    from .plots import box_strip_svg

    defs = report.data.get("definitions") or {}
    figs: dict[str, str] = {}
    for entry in report.data["distributions"]:
        vals = report.values.get(entry["id"])
        if not vals or not any(vals.values()):
            continue
        refs = []
        for did, key, text in REFERENCES:
            if did == entry["id"] and key in defs:
                try:
                    v = float(defs[key])
                except (TypeError, ValueError):
                    continue
                refs.append((v, text.format(v=v)))
        try:
            figs[entry["id"]] = box_strip_svg(vals, entry["label"], entry["unit"], log=entry["log"],
                                              reference=refs, id_prefix=f"f-{entry['id']}-")
        except Exception as exc:  # noqa: BLE001 - one bad figure must not lose the report
            report.notes.append(f"Figure {entry['label']} could not be drawn: {type(exc).__name__}: {exc}")
    return figs


def export_issues(report: QAReport, issues_dir: Path, html_out: Path) -> tuple[list[Path], dict[str, dict[str, str]]]:
    """issues_<center>.csv and .xlsx per center (formula text neutralised), and the links to them
    relative to the HTML file."""
    from .issues import write_issues

    issues_dir.mkdir(parents=True, exist_ok=True)
    written, links = [], {}
    for center, df in report.issues.items():
        stem = issues_file_stem(center)
        csv_path, xlsx_path = issues_dir / f"{stem}.csv", issues_dir / f"{stem}.xlsx"
        write_issues(df, csv_path)
        write_issues(df, xlsx_path)
        written += [csv_path, xlsx_path]

        def rel(p: Path) -> str:
            r = os.path.relpath(p.resolve(), html_out.resolve().parent)
            return quote(Path(r).as_posix())

        links[center] = {"csv": rel(csv_path), "xlsx": rel(xlsx_path),
                         "csv_name": csv_path.name, "xlsx_name": xlsx_path.name}
    return written, links


def build_report(src: QASource, out: Path, thresholds: dict[tuple[str, str | None], float] | None = None,
                 issues_dir: Path | None = None, max_rows: int = 1000, catalog: Catalog | None = None,
                 definitions: dict[str, Any] | None = None) -> QAOutcome:
    from .qa_html import render

    catalog = catalog or load_catalog()
    report = collect(src, thresholds, catalog, definitions)
    figs = figures_for(report)
    exports: list[Path] = []
    links = None
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if issues_dir is not None:
        exports, links = export_issues(report, Path(issues_dir), out)
    text = render(report, figs, links, max_rows=max_rows)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    totals = report.data["issues"]
    return QAOutcome(out, report.data["centers"], sum(v["errors"] for v in totals.values()),
                     sum(v["warnings"] for v in totals.values()), exports, report.notes)
