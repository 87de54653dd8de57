"""The QA report's trend figure (issue 21): small multiples, one panel per count, each axis from
0 and shared by every center of a report, so that a data manager comparing centers reads the
same height as the same count. Hand-built histories (no store): what the figure must show is
written from the rule above, not from the code's output."""

from __future__ import annotations

import re

from ptrharmonize.report.history import nice_ceiling, trend, trend_scales
from ptrharmonize.report.templating import environment


def _subs(*counts: tuple[int, int, int]) -> list[dict]:
    return [{"rows": r, "errors": e, "warnings": w} for r, e, w in counts]


HIST = {
    "A01": _subs((1000, 0, 3), (1200, 2, 3)),    # errors 0 -> 2
    "B02": _subs((40, 30, 0), (44, 2, 1), (50, 0, 1)),  # errors 30 -> 2 -> 0
}


def _svg(center: str, index: int) -> str:
    scales = trend_scales(HIST)
    t = trend(center, HIST[center], index, scales)
    return environment().get_template("trend.svg.j2").render(h={"trend": t})


def test_nice_axis_maxima() -> None:
    assert [nice_ceiling(v) for v in (0, 1, 3, 30, 44, 1200, 5000)] == [1, 1, 5, 50, 50, 2000, 5000]


def test_one_axis_per_count_shared_by_the_centers() -> None:
    # rows up to 1200 -> 2000; errors up to 30 -> 50; warnings up to 3 -> 5
    assert trend_scales(HIST) == {"rows": 2000, "errors": 50, "warnings": 5}
    a, b = (trend(c, HIST[c], i, trend_scales(HIST)) for i, c in enumerate(HIST))
    pa = {p["key"]: p for p in a["panels"]}
    pb = {p["key"]: p for p in b["panels"]}
    assert [p["key"] for p in a["panels"]] == ["rows", "errors", "warnings"]  # never one axis for all
    # 2 errors is the same height in both centers; 0 is the bottom of the panel
    assert pa["errors"]["points"][1]["y"] == pb["errors"]["points"][1]["y"]
    bottom = a["top"] + a["plot_h"]
    assert pa["errors"]["points"][0]["y"] == bottom == pb["errors"]["points"][2]["y"]
    # 30 of 50 errors is 3/5 of the panel's height up from 0
    assert abs((bottom - pb["errors"]["points"][0]["y"]) - 0.6 * b["plot_h"]) < 0.11
    # B02's 50 rows are a sliver on the rows axis shared with A01's 1,200 (not stretched to the top)
    assert bottom - pb["rows"]["points"][2]["y"] < 0.03 * b["plot_h"]


def test_figure_labels_each_axis() -> None:
    svg = _svg("B02", 1)
    panels = re.findall(r'<g data-panel="(\w+)" data-axis-max="(\d+)">(.*?)</g>', svg, re.S)
    assert [(k, m) for k, m, _ in panels] == [("rows", "2000"), ("errors", "50"), ("warnings", "5")]
    for key, top, body in panels:
        ticks = re.findall(r'data-ytick="(\d+)">([^<]+)<', body)
        assert ("0", "0") in ticks and ticks[-1][0] == top  # the axis is labelled from 0 to its maximum
        assert re.search(rf">\S {key}</text>", body)  # the panel's title names the count
        assert body.count(">submission</text>") == 1 and ">#3</text>" in body
    assert "each axis from 0 and the same for every center" in svg


def test_a_center_alone_gets_its_own_axis() -> None:
    t = trend("A01", HIST["A01"], 0)
    assert {p["key"]: p["max"] for p in t["panels"]} == {"rows": 2000, "errors": 2, "warnings": 5}
