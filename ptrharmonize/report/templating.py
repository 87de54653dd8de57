"""Jinja2 for every HTML page ptrharmonize writes: one environment, autoescaped, one base layout.

Why templates: the pages are read by people who fix data, and other engineers add fields to
them; markup lives in `templates/` where it can be read and changed as markup, and every text
that comes from data is escaped by Jinja2's autoescape, not by hand.

A page is self-contained: inline CSS, inline SVG, one inline script (filter, sort, search) that
the Content-Security-Policy allows by its SHA-256 hash and nothing else; `default-src 'none'`
blocks every request, so the file opens the same from a USB stick as from a web server.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from functools import lru_cache
from importlib import resources
from typing import Any

import jinja2
from markupsafe import Markup

from .. import __version__

TEMPLATE_PACKAGE = "ptrharmonize.report"
TEMPLATE_DIR = "templates"


def _finite(x: Any) -> Any:
    """NaN and infinities are not JSON: they become null."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {str(k): _finite(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_finite(v) for v in x]
    return x


def _json_text(data: Any) -> Markup:
    """Data for a `<script type="application/json">` block: `<`, `>`, `&` and `'` as \\u escapes,
    so no string in the data can end the block early (the same rule as Jinja2's `tojson`)."""
    text = json.dumps(_finite(data), ensure_ascii=False, sort_keys=True, default=str, allow_nan=False)
    for ch, rep in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("'", "\\u0027")):
        text = text.replace(ch, rep)
    return Markup(text)


def fmt_int(n: Any) -> str:
    if n is None:
        return "–"
    return f"{int(n):,}"


def fmt_num(x: Any, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, int):
        return f"{x:,}"
    return f"{x:.{digits}g}"


def fmt_pct(x: Any, digits: int = 1) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{100 * x:.{digits}f}%"


def fmt_share(x: Any) -> str:
    """A completeness share: 0% and 100% without decimals (they are exact), others with one."""
    if x is None:
        return "–"
    return fmt_pct(x, 0) if x in (0, 1) else fmt_pct(x, 1)


def fmt_threshold(th: Any) -> str:
    """A rule's tolerance: a fraction of the checked rows (< 1) or a count of rows (>= 1)."""
    if th is None:
        return "–"
    th = float(th)
    if th == 0:
        return "0"
    if th < 1:
        return fmt_pct(th, 2)
    return f"{int(th):,} rows" if th == int(th) else f"{th:g} rows"


def human(code: Any) -> str:
    return str(code).replace("_", " ") if code is not None else "–"


def share_colour(frac: float | None) -> str:
    """Background for a share in [0, 1]: red (0) through amber to green (1). Light tones, so
    dark text stays readable (contrast AA); the share is always written in the cell too."""
    if frac is None:
        return "#e5e7eb"
    f = min(max(float(frac), 0.0), 1.0)
    if f >= 1.0:
        return "hsl(125, 55%, 78%)"  # complete: the only full green
    hue = 95.0 * f * f  # 50% orange, 90% yellow-green: gaps stand out against complete columns
    return f"hsl({hue:.0f}, 75%, 80%)"


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader(TEMPLATE_PACKAGE, TEMPLATE_DIR),
        autoescape=True,  # every template is HTML; data is escaped unless marked safe
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(fmt_int=fmt_int, fmt_num=fmt_num, fmt_pct=fmt_pct, fmt_share=fmt_share,
                       fmt_threshold=fmt_threshold, human=human, share_colour=share_colour,
                       json_text=_json_text, plural=plural)
    env.globals.update(version=__version__)
    return env


def static_text(name: str) -> str:
    """A static file of the templates folder (the stylesheet, the script) as text."""
    return resources.files(TEMPLATE_PACKAGE).joinpath(TEMPLATE_DIR, name).read_text(encoding="utf-8")


def csp(script: str) -> str:
    """The page's Content-Security-Policy: nothing may be fetched; inline CSS; the one inline
    script runs because its hash is listed (no other script can)."""
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    return ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
            f"script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'")


def render(template: str, **context: Any) -> str:
    """Render `template` (which extends base.html.j2) with the shared stylesheet and script."""
    script = static_text("report.js")
    return environment().get_template(template).render(
        css=Markup(static_text("report.css")), script=Markup(script), csp=csp(script), **context)
