"""The study's figures, drawn with matplotlib's object API (no pyplot state, Agg rendering):
box plots with every patient as a point, cumulative incidence curves, a scatter with its fit."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure

COLORS = ("#c0392b", "#2e86c1", "#27ae60", "#8e44ad")
# Above this many points a scatter layer is embedded in the SVG as an image (axes, text and
# boxes stay vector): a registry-sized SVG with every point as a path is slow and huge.
RASTERIZE_ABOVE = 1000
DPI = 300  # journal-size raster (most journals ask for 300 dpi at print size)


def p_label(p: float | None) -> str:
    if p is None:
        return "p = n/a"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def box_panels(
    panels: Sequence[tuple[str, Mapping[str, np.ndarray], float | str | None]],
    title: str,
    log: bool = False,
    test: str = "Mann-Whitney U",
) -> Figure:
    """One panel per (y label with unit, {group: values}, p value): a box per group (median,
    quartiles, whiskers at 1.5 IQR) with each value as a jittered point over it; each group's
    n under its name and the test's name with its p above the panel (what an editor asks)."""
    fig = Figure(figsize=(4.0 * len(panels), 4.5), layout="constrained")
    rng = np.random.default_rng(0)  # the same jitter on every run
    for i, (ylabel, groups, p) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        labels = list(groups)
        data = [np.asarray(groups[g], dtype=float) for g in labels]
        if log:
            # A value of 0 (below detection) cannot sit on a log axis: show it at the floor.
            positive = np.concatenate([d[d > 0] for d in data] or [np.array([1.0])])
            floor = positive.min() / 2 if positive.size else 1.0
            data = [np.where(d > 0, d, floor) for d in data]
            ax.set_yscale("log")
        # the boxes are drawn over the points, so they stay visible at registry size
        ax.boxplot(
            [d if d.size else [np.nan] for d in data],
            showfliers=False,
            widths=0.5,
            medianprops={"color": "black", "linewidth": 2, "zorder": 4},
            boxprops={"zorder": 4},
            whiskerprops={"zorder": 4},
            capprops={"zorder": 4},
        )
        ax.set_xticks(range(1, len(labels) + 1),
                      [f"{g}\n(n = {d.size})" for g, d in zip(labels, data, strict=True)])
        for j, d in enumerate(data):
            big = d.size > RASTERIZE_ABOVE
            x = j + 1 + rng.uniform(-0.12, 0.12, size=d.size)
            ax.scatter(x, d, s=4 if big else 18, alpha=0.3 if big else 0.75,
                       color=COLORS[j % len(COLORS)], zorder=3, rasterized=big)
        ax.set_ylabel(ylabel)
        # a text instead of a p says why no pooled test is shown
        ax.set_title(p if isinstance(p, str) else f"{test}, {p_label(p)}", fontsize=10)
    fig.suptitle(title)
    return fig


def cuminc_curves(
    curves: Mapping[str, Mapping[str, Sequence[float]]],
    labels: Mapping[str, str],
    horizon: float,
    p: float | None,
    title: str,
    ylabel: str,
    at_risk: Mapping[str, Mapping[str, Sequence[float]]] | None = None,
    xlabel: str = "Days since CAR-T infusion",
) -> Figure:
    """Step curves of cumulative incidence per group, from `{group: {time, cif}}`, with Gray's
    test and its p on the plot and, under it, the number at risk per group at the ticks of
    `at_risk` (`{group: {time, n}}`)."""
    fig = Figure(figsize=(6.0, 5.2 if at_risk else 4.5), layout="constrained")
    if at_risk:
        grid = fig.add_gridspec(2, 1, height_ratios=[4, 0.35 + 0.25 * len(at_risk)])
        ax = fig.add_subplot(grid[0])
        table_ax = fig.add_subplot(grid[1], sharex=ax)
    else:
        ax = fig.add_subplot(1, 1, 1)
    for j, (g, c) in enumerate(curves.items()):
        t = np.concatenate([[0.0], np.asarray(c["time"], dtype=float)])
        y = np.concatenate([[0.0], np.asarray(c["cif"], dtype=float)])
        # extend each curve flat to the horizon
        if t[-1] < horizon:
            t, y = np.append(t, horizon), np.append(y, y[-1])
        ax.step(t, y, where="post", color=COLORS[j % len(COLORS)], label=labels.get(g, g), lw=2)
    ax.set_xlim(0, horizon)
    ax.set_ylim(0, 1)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=11)
    ax.text(0.98, 0.95, f"Gray's test, {p_label(p)}", transform=ax.transAxes, ha="right",
            va="top", fontsize=10)
    ax.legend(loc="upper left")
    if at_risk:
        groups = list(at_risk)
        for j, g in enumerate(groups):
            row = at_risk[g]
            yj = len(groups) - j
            for t, n in zip(row["time"], row["n"], strict=True):
                table_ax.text(t, yj, str(n), ha="center", va="center", fontsize=8,
                              color=COLORS[j % len(COLORS)])
        table_ax.set_ylim(0.4, len(groups) + 0.6)
        table_ax.set_yticks(range(len(groups), 0, -1), [labels.get(g, g) for g in groups],
                            fontsize=8)
        table_ax.set_title("Number at risk", fontsize=9, loc="left")
        table_ax.tick_params(axis="x", labelsize=8)
        table_ax.tick_params(axis="y", length=0, pad=12)
        for side in ("top", "right", "left"):
            table_ax.spines[side].set_visible(False)
        ax.tick_params(axis="x", labelbottom=False)
        table_ax.set_xlabel(xlabel)
    else:
        ax.set_xlabel(xlabel)
    return fig


def scatter_fit(
    x: np.ndarray,
    y: np.ndarray,
    slope: float | None,
    intercept: float | None,
    xlabel: str,
    ylabel: str,
    title: str,
) -> Figure:
    """Points with the least-squares line over the range of x."""
    fig = Figure(figsize=(6.0, 4.5), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    ax.scatter(x, y, s=18 if len(x) <= RASTERIZE_ABOVE else 4, alpha=0.75, color=COLORS[1],
               rasterized=len(x) > RASTERIZE_ABOVE)
    if slope is not None and intercept is not None and len(x):
        xs = np.linspace(float(np.min(x)), float(np.max(x)), 100)
        ax.plot(xs, intercept + slope * xs, color=COLORS[0], lw=2, label="least-squares fit")
        ax.legend(loc="upper right")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=11)
    return fig


def save(fig: Figure, stem: Path) -> list[Path]:
    """Write `<stem>.png` and `<stem>.svg`; SVG without a date so reruns are identical."""
    png, svg = stem.with_suffix(".png"), stem.with_suffix(".svg")
    # SVG text stays text (editable by a journal's editor, searchable), not glyph paths
    with matplotlib.rc_context({"svg.hashsalt": "ptrharmonize", "svg.fonttype": "none"}):
        fig.savefig(png, dpi=DPI, metadata={"Software": None})
        fig.savefig(svg, metadata={"Date": None})
    return [png, svg]
