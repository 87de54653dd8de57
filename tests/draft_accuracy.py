"""How much of a shipped mapping a draft gets right (used by tests/test_scan_draft.py).

Counted: every column of a shipped mapping that names one source column (`column:`), right when
the draft maps the same CDM column of the same table from the same file (and sheet) and source
column; every entry of a value map (inline or named; regex patterns are not counted) whose source
value occurs in the data, right when the draft maps that value to the same code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def _load(path: Path) -> dict[str, Any]:
    from ptrharmonize.mapping.language import load_mapping

    return load_mapping(path)


def _columns(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    out = {}
    named = doc.get("value_maps") or {}
    for table, spec in (doc.get("tables") or {}).items():
        if not isinstance(spec, dict):
            continue
        for cdm, col in (spec.get("columns") or {}).items():
            entry = {"file": spec.get("file"), "sheet": spec.get("sheet")}
            if isinstance(col, str):
                entry["column"] = col
            elif isinstance(col, dict) and isinstance(col.get("column"), str):
                entry["column"] = col["column"]
                vals = col.get("values")
                if isinstance(vals, str):
                    vals = named.get(vals)
                if isinstance(vals, dict):
                    vals = vals.get("map", vals) if "patterns" not in vals or "map" in vals else None
                    if isinstance(vals, dict):
                        entry["values"] = {str(k).strip().casefold(): _text(v) for k, v in vals.items()
                                           if k not in ("patterns", "default", "description", "note")}
            else:
                continue
            out[(table, cdm)] = entry
    return out


def _text(v: Any) -> str:
    return ("true" if v else "false") if isinstance(v, bool) else str(v)


def accuracy(shipped: Path, draft_text: str, present: dict[tuple[str, str], set[str]]) -> dict[str, int]:
    """{'columns': right, 'columns_total': n, 'values': right, 'values_total': n}."""
    from ptrharmonize.mapping.language import _Loader

    truth = _columns(_load(shipped))
    draft = _columns(yaml.load(draft_text, Loader=_Loader))  # noqa: S506 - a safe loader
    res = {"columns": 0, "columns_total": 0, "values": 0, "values_total": 0}
    for key, t in truth.items():
        res["columns_total"] += 1
        d = draft.get(key)
        same = d is not None and d["column"] == t["column"] and d["file"] == t["file"] and \
            (t.get("sheet") is None or d.get("sheet") == t.get("sheet"))
        res["columns"] += same
        seen = {v.strip().casefold() for v in present.get((t["file"] or "", t["column"]), set())}
        for src, code in (t.get("values") or {}).items():
            if src not in seen:
                continue
            res["values_total"] += 1
            res["values"] += bool(same and (d.get("values") or {}).get(src) == code)
    return res
