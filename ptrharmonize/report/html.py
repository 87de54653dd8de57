"""Small helpers for self-contained HTML reports: escaping, tables, colours, the page shell.

A page built here loads nothing: inline CSS with the system font stack, figures as inline SVG,
no scripts (the only <script> is a JSON data block, which browsers never execute), and a
Content-Security-Policy that blocks every network request, so the file opens the same from a
USB stick as from a web server.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterable, Sequence
from typing import Any

# Everything is inline; nothing may be fetched (default-src 'none').
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"

CSS = """
:root { --fg: #1d232a; --muted: #5b6570; --line: #d5dae0; --bg-alt: #f4f6f8; --err: #b3261e;
        --warn: #8a5a00; --ok: #1e6b34; --na: #6b7280; }
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "Liberation Sans",
       "DejaVu Sans", Arial, sans-serif; color: var(--fg); margin: 0; line-height: 1.4;
       font-size: 14px; background: #fff; }
header { background: #22313f; color: #fff; padding: 14px 24px; }
header h1 { margin: 0 0 4px 0; font-size: 22px; }
header p { margin: 0; color: #d6dde4; font-size: 13px; }
nav { padding: 8px 24px; border-bottom: 1px solid var(--line); background: var(--bg-alt); }
nav a { margin-right: 14px; color: #1f5f99; text-decoration: none; white-space: nowrap; }
main { padding: 8px 24px 40px 24px; max-width: 1400px; }
section { margin-top: 22px; }
h2 { font-size: 19px; border-bottom: 2px solid #22313f; padding-bottom: 3px; margin-bottom: 8px; }
h3 { font-size: 15px; margin: 16px 0 6px 0; }
p.note, div.note { color: var(--muted); font-size: 13px; margin: 4px 0 8px 0; }
div.warn-box { border-left: 4px solid var(--warn); background: #fff7e6; padding: 6px 10px; margin: 8px 0; }
table { border-collapse: collapse; margin: 6px 0 10px 0; font-size: 13px; }
th, td { border: 1px solid var(--line); padding: 3px 7px; vertical-align: top; text-align: left; }
th { background: var(--bg-alt); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.sev-error td.sev, span.sev-error { color: var(--err); font-weight: 600; }
tr.sev-warning td.sev, span.sev-warning { color: var(--warn); font-weight: 600; }
span.st-failed { color: #fff; background: var(--err); padding: 0 5px; border-radius: 3px; }
span.st-passed { color: var(--ok); font-weight: 600; }
span.st-not_applicable { color: var(--na); }
span.st-error { color: #fff; background: #6a1b9a; padding: 0 5px; border-radius: 3px; }
span.changed { color: #6a1b9a; font-size: 11px; }
table.grid td { text-align: center; min-width: 58px; font-variant-numeric: tabular-nums; }
table.grid td.label, table.grid th.label { text-align: left; }
div.grids { display: flex; flex-wrap: wrap; gap: 4px 18px; align-items: flex-start; }
table.grid th.label { font-size: 14px; }
td.code, span.code { font-family: ui-monospace, "DejaVu Sans Mono", "Liberation Mono", Menlo, Consolas, monospace;
                     font-size: 12px; overflow-wrap: anywhere; }
td.rule { overflow-wrap: normal; min-width: 12em; }
td.value { max-width: 260px; word-break: break-all; }
td.msg { max-width: 520px; }
details { margin: 4px 0; }
details > summary { cursor: pointer; color: #1f5f99; }
.figs { display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr)); gap: 10px 18px; }
figure { margin: 0; border: 1px solid var(--line); padding: 6px; background: #fff; }
figure svg { width: 100%; height: auto; display: block; }
figcaption { font-size: 12px; color: var(--muted); }
.legend span { display: inline-block; padding: 1px 8px; margin-right: 4px; border: 1px solid var(--line); }
footer { color: var(--muted); font-size: 12px; padding: 12px 24px; border-top: 1px solid var(--line); }
"""


def esc(value: Any) -> str:
    """Text for HTML content or a quoted attribute: everything escaped, None as empty."""
    if value is None:
        return ""
    return html.escape(str(value), quote=True)


def attrs(**kw: Any) -> str:
    """` name="value"` pairs; `data_x` becomes `data-x`; None values are left out."""
    out = []
    for k, v in kw.items():
        if v is None:
            continue
        name = k.rstrip("_").replace("_", "-")
        out.append(f' {name}="{esc(v)}"')
    return "".join(out)


def fmt_int(n: Any) -> str:
    if n is None:
        return "–"
    return f"{int(n):,}"


def fmt_num(x: Any, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    if isinstance(x, int):
        return f"{x:,}"
    return f"{x:.{digits}g}"


def fmt_pct(x: Any, digits: int = 1) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{100 * x:.{digits}f}%"


def share_colour(frac: float | None) -> str:
    """Background for a share in [0, 1]: red (0) through amber to green (1); grey when unknown.
    Light tones, so dark text stays readable."""
    if frac is None:
        return "#e5e7eb"
    f = min(max(float(frac), 0.0), 1.0)
    if f >= 1.0:
        return "hsl(125, 55%, 78%)"  # complete: the only full green
    hue = 95.0 * f * f  # 50% orange, 90% yellow-green: gaps stand out against complete columns
    return f"hsl({hue:.0f}, 75%, 80%)"


def table(headers: Sequence[str | tuple[str, str]], rows: Iterable[Sequence[Any]], cls: str | None = None,
          row_attrs: Sequence[str] | None = None) -> str:
    """An HTML table. A header is text or (text, css class). A cell is already-built HTML when it
    is a `Raw`, otherwise it is escaped; numbers are right-aligned."""
    head = []
    for h in headers:
        text, hc = (h if isinstance(h, tuple) else (h, None))
        head.append(f"<th{attrs(class_=hc)}>{esc(text)}</th>")
    body = []
    for i, r in enumerate(rows):
        cells = []
        for v in r:
            if isinstance(v, Raw):
                cells.append(v.cell())
            elif isinstance(v, int | float) and not isinstance(v, bool):
                cells.append(f'<td class="num">{esc(fmt_num(v))}</td>')
            else:
                cells.append(f"<td>{esc(v)}</td>")
        extra = row_attrs[i] if row_attrs is not None else ""
        body.append(f"<tr{extra}>{''.join(cells)}</tr>")
    return (f"<table{attrs(class_=cls)}><thead><tr>{''.join(head)}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")


class Raw:
    """A table cell given as HTML (already escaped), with optional td attributes."""

    def __init__(self, html_text: str, **td_attrs: Any) -> None:
        self.html = html_text
        self.td_attrs = td_attrs

    def cell(self) -> str:
        return f"<td{attrs(**self.td_attrs)}>{self.html}</td>"


def _finite(x: Any) -> Any:
    """NaN and infinities are not JSON: they become null."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {str(k): _finite(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_finite(v) for v in x]
    return x


def json_block(element_id: str, data: Any) -> str:
    """Machine-readable data in the page: a JSON script block (never executed by a browser)."""
    text = json.dumps(_finite(data), ensure_ascii=False, sort_keys=True, default=str, allow_nan=False)
    # '</script>' or '<!--' inside a string must not end the block early.
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return f'<script type="application/json" id="{esc(element_id)}">{text}</script>'


def page(title: str, subtitle: str, nav: Sequence[tuple[str, str]], body: str, footer: str,
         data_block: str = "") -> str:
    links = "".join(f'<a href="#{esc(anchor)}">{esc(label)}</a>' for anchor, label in nav)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{esc(CSP)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head>\n<body>"
        f"<header><h1>{esc(title)}</h1><p>{subtitle}</p></header>"
        f"<nav>{links}</nav><main>{body}</main><footer>{footer}</footer>"
        f"{data_block}</body></html>\n"
    )
