"""Compare results.json with the published numbers (published.yaml), one row per number."""

from __future__ import annotations

import html
import math
import re
from pathlib import Path
from typing import Any

import yaml

PUBLISHED = Path(__file__).with_name("published.yaml")
_STEP = re.compile(r"([^.\[]+)|\[([^\]]+)\]")


def load_published(path: Path | None = None) -> list[dict[str, Any]]:
    return yaml.safe_load((path or PUBLISHED).read_text(encoding="utf-8"))


def resolve(doc: Any, path: str) -> Any:
    """Follow a path such as `cart_characteristics.rows[variable=cr].p_value` or `x.range.ptr[0]`."""
    cur = doc
    for name, index in _STEP.findall(path):
        if cur is None:
            return None
        if name:
            if name == "__len__":
                cur = len(cur)
            elif isinstance(cur, dict):
                cur = cur.get(name)
            else:
                return None
        else:
            if "=" in index:
                key, val = index.split("=", 1)
                cur = next((x for x in cur if isinstance(x, dict) and str(x.get(key)) == val), None)
            else:
                i = int(index)
                cur = cur[i] if isinstance(cur, list) and -len(cur) <= i < len(cur) else None
    return cur


def _matches(entry: dict[str, Any], got: Any) -> bool:
    if got is None or (isinstance(got, float) and math.isnan(got)):
        return False
    want = entry["value"]
    kind = entry["compare"]
    if kind == "exact":
        return got == want
    if kind == "round":
        digits = int(entry.get("digits", 3))
        return round(float(got), digits) == round(float(want), digits)
    if kind == "sign":
        return math.copysign(1, float(got)) == math.copysign(1, float(want)) and float(got) != 0
    if kind == "gt":
        return float(got) > float(want)
    if kind == "lt":
        return float(got) < float(want)
    raise ValueError(f"unknown comparison {kind!r} in published.yaml ({entry['id']})")


def _show(entry: dict[str, Any], got: Any) -> str:
    if got is None:
        return "missing"
    if isinstance(got, float) and entry["compare"] == "round":
        return f"{got:.{int(entry.get('digits', 3)) + 2}f}"
    return str(got)


def compare_results(results: dict[str, Any], published: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    analyses = results.get("analyses", results)
    rows = []
    for e in published or load_published():
        got = resolve(analyses, e["path"])
        want = e["value"]
        if e["compare"] in ("gt", "lt"):
            shown_want = f"{'>' if e['compare'] == 'gt' else '<'} {want}"
        elif e["compare"] == "sign":
            shown_want = "negative" if want < 0 else "positive"
        else:
            shown_want = str(want)
        rows.append({
            "id": e["id"], "figure": e["figure"], "what": e["what"], "published": shown_want,
            "reproduced": _show(e, got), "test": e.get("test", ""), "match": _matches(e, got),
            "expected_mismatch": bool(e.get("expect_mismatch", False)), "follows": e.get("follows", ""),
        })
    return rows


def to_markdown(rows: list[dict[str, Any]], header: str = "") -> str:
    n_ok = sum(r["match"] for r in rows)
    out = ["# Reproduction of the reference study", "", header,
           f"{n_ok} of {len(rows)} published numbers reproduced.", "",
           "| figure | number | published | reproduced | test | match | note |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        mark = "yes" if r["match"] else ("documented" if r["expected_mismatch"] else "**NO**")
        out.append(f"| {r['figure']} | {r['what']} | {r['published']} | {r['reproduced']} | {r['test']} | {mark} | {r['follows']} |")
    return "\n".join(out) + "\n"


def to_html(rows: list[dict[str, Any]], header: str = "") -> str:
    n_ok = sum(r["match"] for r in rows)
    body = []
    for r in rows:
        cls = "ok" if r["match"] else ("doc" if r["expected_mismatch"] else "bad")
        mark = "&#10003;" if r["match"] else ("documented" if r["expected_mismatch"] else "&#10007;")
        cells = [html.escape(str(r[k])) for k in ("figure", "what", "published", "reproduced", "test")]
        body.append(f"<tr class='{cls}'><td>" + "</td><td>".join(cells) + f"</td><td>{mark}</td>"
                    f"<td>{html.escape(r['follows'])}</td></tr>")
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Reproduction</title>
<style>body{{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em;color:#222}}
table{{border-collapse:collapse;font-size:14px}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}
tr.ok td:nth-child(6){{color:#15803d;font-weight:bold}}tr.bad{{background:#fee2e2}}tr.doc{{background:#fef9c3}}</style>
</head><body><h1>Reproduction of the reference study</h1><p>{html.escape(header)}</p>
<p><b>{n_ok} of {len(rows)}</b> published numbers reproduced.</p>
<table><thead><tr><th>figure</th><th>number</th><th>published</th><th>reproduced</th><th>test</th><th>match</th><th>note</th></tr></thead>
<tbody>{''.join(body)}</tbody></table></body></html>
"""
