"""The CONSORT-style flow of an analysis set as a figure: one box per step with its n (and per
center), and beside each arrow a box with who left there and why (issue 16)."""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch

MAX_CENTERS_SHOWN = 6  # more centers than this: the box shows the count of centers only


def _centers(by_center: dict[str, int]) -> str:
    if not by_center or len(by_center) == 1:
        return ""
    if len(by_center) > MAX_CENTERS_SHOWN:
        return f"\n{len(by_center)} centers"
    return "\n" + ", ".join(f"{c} {n}" for c, n in by_center.items())


def _excluded(step: dict[str, Any]) -> str:
    excl = step.get("excluded") or {}
    total = sum(excl.values())
    if not total:
        return ""
    head = "not in scope" if step.get("scope") else "excluded"
    lines = [f"{head}: {total}"] + [f"  {r}: {n}" for r, n in sorted(excl.items(), key=lambda kv: -kv[1])]
    return "\n".join(lines)


def flow_figure(flow: dict[str, Any]) -> Figure:
    steps = flow["steps"]
    height = 1.6 * len(steps) + 0.8
    fig = Figure(figsize=(9.0, height))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 10)
    ax.set_ylim(0, height)
    ax.axis("off")
    ax.text(0.2, height - 0.3, flow.get("label", ""), fontsize=11, weight="bold", va="top")
    y = height - 1.0
    for i, step in enumerate(steps):
        text = f"{step['label']}\nn = {step['n']}{_centers(step.get('by_center') or {})}"
        box = FancyBboxPatch((0.4, y - 0.9), 4.2, 0.9, boxstyle="round,pad=0.05", fc="#eef3f8", ec="#2e4a62")
        ax.add_patch(box)
        ax.text(2.5, y - 0.45, text, ha="center", va="center", fontsize=8.5)
        if i + 1 < len(steps):
            ax.annotate("", xy=(2.5, y - 1.5), xytext=(2.5, y - 0.95),
                        arrowprops={"arrowstyle": "->", "color": "#2e4a62"})
            side = _excluded(step)
            if side:
                ax.plot([2.5, 5.0], [y - 1.2, y - 1.2], color="#999999", lw=0.8)
                ax.text(5.1, y - 1.2, side, ha="left", va="center", fontsize=7.5,
                        bbox={"boxstyle": "round,pad=0.3", "fc": "#fbf3ea", "ec": "#b07a3a"})
        y -= 1.6
    return fig
