"""The reproduction report: the QA report's layout, every number at the precision the study
printed it (published.yaml `digits`), the study's value, ours and the difference side by side.

Fast: a hand-built results document, not the full pipeline (test_reproduction.py runs that)."""

from __future__ import annotations

import re

from ptrharmonize.report.templating import static_text
from ptrharmonize.reproduce.compare import compare_results, load_published, to_html

# Values an analysis could return, with more digits than the paper prints.
RESULTS = {"analyses": {
    "ptr_by_group": {"statistic": 7.40612, "p_value": 0.00651, "groups": {"car_t": {"ptr": 14, "n": 26}}},
    "ptr_multivariable": {"selected": [{"odds_ratio": 15.7}]},
}}


def rows_by_id() -> dict[str, dict]:
    return {r["id"]: r for r in compare_results(RESULTS)}


def test_numbers_at_their_published_precision() -> None:
    rows = rows_by_id()
    # published.yaml: chi-square 7.406 (3 decimals), p 0.007 (3 decimals), OR 16 (0 decimals),
    # 26 CAR-T patients and 15 with PTR (counts)
    assert {k: rows["ptr_chi2"][k] for k in ("study", "ours", "difference")} == {
        "study": "7.406", "ours": "7.406", "difference": "0.000"}
    assert {k: rows["ptr_chi2_p"][k] for k in ("study", "ours", "difference")} == {
        "study": "0.007", "ours": "0.007", "difference": "0.000"}
    assert {k: rows["mv_or"][k] for k in ("study", "ours", "difference")} == {
        "study": "16", "ours": "16", "difference": "0"}
    assert {k: rows["n_car_t"][k] for k in ("study", "ours", "difference")} == {
        "study": "26", "ours": "26", "difference": "0"}
    assert {k: rows["ptr_car_t"][k] for k in ("study", "ours", "difference")} == {
        "study": "15", "ours": "14", "difference": "-1"}
    assert rows["ptr_car_t"]["match"] is False
    # a number the study prints as 1.000 keeps its three decimals
    neut = next(e for e in load_published() if e["id"] == "neut_impr_p")
    assert neut["value"] == 1.0 and rows["neut_impr_p"]["study"] == "1.000"
    assert rows["neut_impr_p"]["ours"] == "missing" and rows["neut_impr_p"]["difference"] == "–"


def test_same_look_as_the_qa_report() -> None:
    rows = compare_results(RESULTS)
    html = to_html(rows, "Synthetic cohort analysed by `ptrh run-analysis`")
    assert static_text("report.css") in html  # the shared stylesheet of the base layout
    assert re.search(r"<meta http-equiv=\"Content-Security-Policy\" content=\"default-src &#39;none&#39;", html)
    assert "`" not in html, "literal backticks"
    body = html[html.index('<table class="sortable" id="reproduction">'):html.index("</table>")]
    assert '<th scope="col" class="num" data-sort="num">study</th>' in body
    assert '<th scope="col" class="num" data-sort="num">ours</th>' in body
    assert '<th scope="col" class="num" data-sort="num">difference</th>' in body
    # no number with more decimals than the study printed: the 17-digit floats are gone
    assert not re.search(r"\d\.\d{6,}", body)
    row = re.search(r'<tr class="ok" data-id="ptr_chi2".*?</tr>', body, re.S).group(0)
    assert re.findall(r'<td class="num"[^>]*>([^<]*)</td>', row) == ["7.406", "7.406", "0.000"]
    assert "✓</span> yes" in row
    bad = re.search(r'<tr class="bad" data-id="ptr_car_t".*?</tr>', body, re.S).group(0)
    assert "✗</span> no" in bad and ">-1<" in bad
    assert f"{sum(r['match'] for r in rows)} of {len(rows)}" in html
