"""`--mann-whitney spss|r` (issue 18): R's wilcox.test rule (the default) and SPSS's asymptotic
significance, each checked against the numbers its own formula gives and against the paper."""

from __future__ import annotations

import json
import math
from pathlib import Path

import duckdb
import pytest
from scipy import stats

from ptrharmonize.analysis.runner import run_analyses
from ptrharmonize.cdm import load_definitions
from ptrharmonize.stats.continuous import mann_whitney
from ptrharmonize.synth.paper import _PEAKS


def test_spss_formula_by_hand() -> None:
    """IBM SPSS Algorithms, NPAR TESTS Mann-Whitney: Z = (U - n1 n2 / 2) / sqrt(n1 n2 /
    (N (N - 1)) ((N^3 - N) / 12 - sum(t^3 - t) / 12)), no continuity correction.
    x = 1 2 2 3, y = 2 3 4 5: ranks 1, 3, 3, 5.5 for x (ties 2,2,2 -> 3; 3,3 -> 5.5), so
    U = 12.5 - 4 * 5 / 2 = 2.5; N = 8; ties t = 3 and t = 2: sum(t^3 - t) = 24 + 6 = 30."""
    var = 4 * 4 / (8 * 7) * ((8**3 - 8) / 12 - 30 / 12)  # = 11.2857...
    z = (2.5 - 8) / math.sqrt(var)
    res = mann_whitney([1, 2, 2, 3], [2, 3, 4, 5], variant="spss")
    assert res["statistic"] == 2.5 and not res["exact"]
    assert math.isclose(res["z"], z, rel_tol=1e-12)
    assert math.isclose(res["p_value"], 2 * stats.norm.cdf(-abs(z)), rel_tol=1e-12)
    assert "SPSS" in res["variant"] and res["mann_whitney"] == "spss"
    # R on the same data: tie-corrected normal with continuity correction 0.5 (larger p)
    r = mann_whitney([1, 2, 2, 3], [2, 3, 4, 5])
    assert math.isclose(r["z"], (2.5 - 8 + 0.5) / math.sqrt(var), rel_tol=1e-12)
    with pytest.raises(ValueError, match="variant"):
        mann_whitney([1, 2], [3, 4], variant="prism")


# The paper's calibrated cohort (ptrharmonize/synth/paper.py): peaks per latent group
# A: PTR & CRS>=3, B: PTR & CRS<=2, C: non-PTR & CRS>=3, D: non-PTR & CRS<=2; units per group.
UNITS_PTR = [40, 51, 55, 56, 61, 61, 61, 70, 95, 98, 117, 156, 157, 171]
UNITS_NON = [25, 31, 33, 34, 50, 50, 64, 69, 70, 85, 86]
CASES = {  # name: (x, y, paper's printed p (R's rule), SPSS asymptotic p as issue 18 states it)
    "IL-6 by PTR": (_PEAKS["IL6"]["A"] + _PEAKS["IL6"]["B"], _PEAKS["IL6"]["C"] + _PEAKS["IL6"]["D"],
                    "0.024", "0.022"),
    "IL-10 by CRS": (_PEAKS["IL10"]["B"] + _PEAKS["IL10"]["D"], _PEAKS["IL10"]["A"] + _PEAKS["IL10"]["C"],
                     "0.090", "0.085"),
    "platelet units": (UNITS_PTR, UNITS_NON, "0.0426", "0.040"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_paper_values_r_rule_and_spss(name: str) -> None:
    x, y, printed, spss = CASES[name]
    r = mann_whitney(x, y)
    s = mann_whitney(x, y, variant="spss")
    assert f"{r['p_value']:.{len(printed) - 2}f}" == printed  # the paper's digits: R's rule
    assert f"{s['p_value']:.{len(spss) - 2}f}" == spss        # SPSS's asymptotic formula
    assert s["p_value"] < r["p_value"]  # no continuity correction: smaller p


def test_variant_is_an_option_named_in_results(tmp_path: Path) -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE patient_summary AS SELECT * FROM (VALUES "
                + ", ".join(f"('A', 'p{i}', 'car_t', {str(i % 2 == 0).upper()}, TRUE, {10.0 * i}, "
                            f"{5.0 * (i % 4)}, {3.0 * i})" for i in range(12))
                + ") t(center_id, patient_id, treatment_type, ptr, has_cytokines, peak_il6, peak_il10, peak_ifng)")
    defs = load_definitions()
    defs["analysis"]["mann_whitney"] = "spss"
    res = run_analyses(con, defs, tmp_path, analyses=["cytokines_by_ptr"])
    con.close()
    doc = json.loads((tmp_path / "results.json").read_text())
    assert doc["variants"]["mann_whitney"] == "spss"
    il6 = doc["analyses"]["cytokines_by_ptr"]["IL6"]
    assert il6["mann_whitney"] == "spss" and "SPSS" in il6["variant"]
    assert res["analyses"]["cytokines_by_ptr"]["status"] == "ok"
    assert load_definitions()["analysis"]["mann_whitney"] == "r"  # the study's default
