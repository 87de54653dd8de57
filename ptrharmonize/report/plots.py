"""Figures for HTML reports, drawn with matplotlib (Agg) and returned as inline SVG text.

The SVG carries no external reference: no XML prolog or DOCTYPE (the DTD URL), no RDF
metadata, no namespace URLs (an inline <svg> in HTML needs none). Text stays text
(`svg.fonttype = 'none'`) and is drawn by the browser in a system sans-serif font.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence

import numpy as np

MAX_POINTS_PER_GROUP = 200  # strip points drawn per center (boxes use every value)
_PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b",
            "#e377c2", "#7f7f7f", "#bcbd22")


def _matplotlib():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return matplotlib, plt


def clean_svg(svg: str, prefix: str = "") -> str:
    """Make matplotlib's SVG fit for inline use in a self-contained page.

    `prefix` is put before every id (and every reference to one), so several figures in one
    page never share an id."""
    svg = re.sub(r"<\?xml[^>]*\?>\s*", "", svg)
    svg = re.sub(r"<!DOCTYPE[^>]*>\s*", "", svg, flags=re.S)
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.S)
    svg = re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", svg)
    # width/height in pt fix the size; CSS scales the figure to its box instead.
    svg = re.sub(r'(<svg[^>]*?)\s+width="[^"]*"\s+height="[^"]*"', r"\1", svg, count=1)
    if prefix:
        svg = re.sub(r'\bid="([^"]+)"', rf'id="{prefix}\1"', svg)
        svg = re.sub(r'href="#([^"]+)"', rf'href="#{prefix}\1"', svg)
        svg = re.sub(r"url\(#([^)]+)\)", rf"url(#{prefix}\1)", svg)
    return svg.strip()


def box_strip_svg(groups: Mapping[str, Sequence[float]], label: str, unit: str | None,
                  log: bool = False, title: str | None = None,
                  reference: Sequence[tuple[float, str]] = (), id_prefix: str = "") -> str:
    """Horizontal box plot per group (center) with the individual values as jittered points.

    Boxes use all values (quartiles, whiskers at 1.5 IQR); at most MAX_POINTS_PER_GROUP points
    per group are drawn (an evenly spaced subset of the sorted values, so the page stays small).
    On a log axis values <= 0 are left out and counted in the tick label.
    """
    matplotlib, plt = _matplotlib()
    names = list(groups)
    with matplotlib.rc_context({
        "svg.fonttype": "none",
        "font.family": "sans-serif",
        "font.sans-serif": ["DejaVu Sans", "Liberation Sans", "Arial", "Helvetica"],
        "font.size": 10,
        "svg.hashsalt": "ptrh",  # stable ids: the same data gives the same file
    }):
        fig, ax = plt.subplots(figsize=(7.0, 1.1 + 0.55 * max(len(names), 1)))
        try:
            rng = np.random.default_rng(12345)
            ticklabels = []
            for i, name in enumerate(names):
                v = np.asarray([x for x in groups[name] if x is not None], dtype=float)
                v = v[np.isfinite(v)]
                dropped = 0
                if log:
                    dropped = int((v <= 0).sum())
                    v = v[v > 0]
                lab = f"{name}  (n={v.size:,}" + (f", {dropped} ≤0 not shown" if dropped else "") + ")"
                ticklabels.append(lab)
                if v.size == 0:
                    continue
                colour = _PALETTE[i % len(_PALETTE)]
                ax.boxplot([v], positions=[i], orientation="horizontal", widths=0.55, showfliers=False,
                           patch_artist=True, manage_ticks=False,
                           boxprops={"facecolor": colour + "33", "edgecolor": colour},
                           medianprops={"color": colour, "linewidth": 2},
                           whiskerprops={"color": colour}, capprops={"color": colour})
                pts = np.sort(v)
                if pts.size > MAX_POINTS_PER_GROUP:
                    idx = np.linspace(0, pts.size - 1, MAX_POINTS_PER_GROUP).round().astype(int)
                    pts = pts[idx]
                jitter = rng.uniform(-0.18, 0.18, pts.size)
                ax.scatter(pts, i + jitter, s=9, color=colour, alpha=0.6, linewidths=0, zorder=3)
            for x, text in reference:
                ax.axvline(x, color="#555", linestyle="--", linewidth=0.8)
                ax.annotate(text, (x, 1.0), xycoords=("data", "axes fraction"), fontsize=8,
                            color="#555", ha="left", va="bottom", xytext=(2, 1), textcoords="offset points")
            ax.set_yticks(range(len(names)))
            ax.set_yticklabels(ticklabels)
            ax.set_ylim(-0.7, len(names) - 0.3)
            ax.invert_yaxis()
            if log:
                ax.set_xscale("log")
            ax.set_xlabel(f"{label} ({unit})" if unit else label)
            if title:
                ax.set_title(title, fontsize=11, loc="left")
            ax.grid(axis="x", color="#e3e3e3", linewidth=0.6)
            ax.set_axisbelow(True)
            for side in ("top", "right"):
                ax.spines[side].set_visible(False)
            fig.tight_layout()
            buf = io.StringIO()
            fig.savefig(buf, format="svg", metadata={"Date": None})
        finally:
            plt.close(fig)
    return clean_svg(buf.getvalue(), id_prefix)
