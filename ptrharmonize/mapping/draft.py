"""Draft a center's mapping from a scan of its files (`ptrh mapping draft`).

The draft is YAML in the mapping language, every line a proposal commented with its evidence
and confidence; what it cannot decide is written `TODO` (a source value no code matched, a CDM
column no source column matched), and `ptrh mapping check --data` lists every TODO left. A
coordinator edits the draft; nothing here is meant to be used unread.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..scan.match import Proposal, TableProposal
from ..scan.profile import FileProfile

TODO = "TODO"


def _q(v: Any) -> str:
    """A YAML scalar that reads back as the same text (quoted JSON strings are valid YAML)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    return json.dumps(str(v), ensure_ascii=False)


def draft_mapping(center_id: str, folder: Path, tables: list[TableProposal], files: list[FileProfile],
                  catalog: Any) -> str:
    """The draft mapping as YAML text."""
    lines = [
        f"# Draft mapping for center {center_id}, written by `ptrh mapping draft` from the files in",
        f"# {Path(folder).name}/. Each line is a proposal with its evidence and confidence (0-1): check",
        "# each one against the center's files. TODO marks what the draft could not decide;",
        "# `ptrh mapping check THIS_FILE --data FOLDER` lists every TODO left.",
        "",
        "mapping_version: 1",
        f"center_id: {_q(center_id)}",
        f"center_name: {_q(TODO)}",
        "",
        "tables:",
    ]
    for tp in tables:
        lines += _table(tp, folder, catalog)
    unused = _unused_files(tables, files)
    if unused:
        lines += ["", "# Files (and sheets) the draft did not place in any CDM table:"]
        lines += [f"#   {f}" for f in unused]
    missing = [t for t in catalog.table_names if t not in {tp.table for tp in tables}]
    if missing:
        lines += ["", "# CDM tables no file matched (not collected, or name them above):"]
        lines += [f"#   {t}" for t in missing]
    return "\n".join(lines) + "\n"


def _table(tp: TableProposal, folder: Path, catalog: Any) -> list[str]:
    f = tp.file
    out = ["", f"  {tp.table}:                 # {tp.evidence} (confidence {tp.confidence:.2f})",
           f"    file: {_q(f.file)}"]
    if f.sheet is not None:
        out.append(f"    sheet: {_q(f.sheet)}")
        if f.header_row != 1:
            out.append(f"    header_row: {f.header_row}        # the names are on row {f.header_row} (rows above: title)")
    if f.format == "csv":
        enc = _encoding(Path(folder) / f.file)
        if enc:
            out.append(f"    encoding: {_q(enc)}       # sniffed from the bytes: check it")
    if f.format == "spss":
        out.append("    value_labels: true       # read the labels a person sees, not the stored numbers")
    if any(p.source.decimal == "," for p in tp.columns):
        out.append('    decimal: ","             # numbers are written with a decimal comma')
    out.append("    columns:")
    specs = {c.name: c for c in catalog.tables[tp.table].columns}
    for p in tp.columns:
        out.append(_column(p, specs[p.cdm_column]))
    done = {p.cdm_column for p in tp.columns}
    todo = [c.name for c in catalog.tables[tp.table].columns if c.name not in done and c.name != "center_id"]
    if todo:
        out.append(f"      # {TODO}: no source column proposed for: {', '.join(todo)}")
    used = {p.source.column for p in tp.columns}
    rest = [c.column for c in f.columns if c.column not in used]
    if rest:
        out.append(f"      # source columns left unmapped: {', '.join(rest)}")
    return out


def _column(p: Proposal, spec: Any) -> str:
    parts = [f"column: {_q(p.source.column)}"]
    if p.unit:
        parts.append(f"unit: {_q(p.unit)}")
    if p.source.date_format and spec.type in ("date", "timestamp"):
        parts.append(f"format: {_q(p.source.date_format)}")
    if spec.type in ("code", "boolean") and (p.values or p.unmatched_values):
        vals = {**p.values, **dict.fromkeys(p.unmatched_values, TODO)}
        parts.append("values: {" + ", ".join(f"{_q(k)}: {_q(v)}" for k, v in vals.items()) + "}")
    why = "; ".join(p.evidence)
    if p.unit_evidence:
        why += f"; unit: {p.unit_evidence}"
    if p.unmatched_values:
        why += f"; {len(p.unmatched_values)} value(s) to map by hand ({TODO})"
    if p.source.hidden_values and spec.type in ("code", "boolean"):
        why += f"; {p.source.hidden_values} rare value(s) not shown by the scan"
    return f"      {p.cdm_column}: {{{', '.join(parts)}}}   # {why} ({p.confidence:.2f})"


def _encoding(path: Path) -> str | None:
    from ..read.encoding import sniff

    try:
        return sniff(path, path.name)
    except Exception:  # noqa: BLE001 - a draft without the encoding is still a draft
        return None


def _unused_files(tables: list[TableProposal], files: list[FileProfile]) -> list[str]:
    used = {(tp.file.file, tp.file.sheet) for tp in tables}
    return [f"{f.file}" + (f" [{f.sheet}]" if f.sheet else "") + (f": {f.error}" if f.error else "")
            for f in files if (f.file, f.sheet) not in used]
