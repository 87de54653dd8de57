"""Compare results.json with the published numbers (published.yaml), one row per number."""

from __future__ import annotations

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


def _precision(entry: dict[str, Any], got: Any) -> dict[str, str]:
    """The study's value, ours and their difference, at the precision the study printed
    (`digits` decimals for `round`, whole numbers for `exact`); a one-sided comparison has no
    difference to show."""
    kind, want = entry["compare"], entry["value"]
    if kind not in ("round", "exact") or not isinstance(want, int | float) or isinstance(want, bool):
        return {"study": "", "ours": "" if got is None else f"{got:.4g}" if isinstance(got, float) else str(got),
                "difference": "–"}
    digits = int(entry.get("digits", 3)) if kind == "round" else 0
    study = f"{want:.{digits}f}"
    if got is None or isinstance(got, bool) or not isinstance(got, int | float) or not math.isfinite(got):
        return {"study": study, "ours": "missing" if got is None else str(got), "difference": "–"}
    ours = round(float(got), digits)
    diff = round(ours - float(want), digits)
    return {"study": study, "ours": f"{ours:.{digits}f}",
            "difference": f"{diff + 0.0:+.{digits}f}" if diff else f"{0:.{digits}f}"}


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
        elif e["compare"] == "round" and isinstance(want, int | float):
            shown_want = f"{want:.{int(e.get('digits', 3))}f}"
        else:
            shown_want = str(want)
        rows.append({
            "id": e["id"], "figure": e["figure"], "what": e["what"], "published": shown_want,
            "reproduced": _show(e, got), "test": e.get("test", ""), "match": _matches(e, got),
            "expected_mismatch": bool(e.get("expect_mismatch", False)), "follows": e.get("follows", ""),
            **_precision(e, got),
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
    """The reproduction report: the same layout as the QA report (templates/reproduction.html.j2)."""
    from ..report.templating import render

    n_ok = sum(r["match"] for r in rows)
    return render("reproduction.html.j2", title="Reproduction of the reference study", subtitle=header,
                  nav=(), rows=rows, n_ok=n_ok, n_doc=sum(1 for r in rows if not r["match"] and r["expected_mismatch"]))
