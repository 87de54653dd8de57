"""Federated mode (issue #20): the study through vantage6's MockAlgorithmClient over one store
per demo center equals the pooled run-analysis of the same submissions, and no node releases
a count below the minimum.

Expected values are the pooled `run-analysis` of the same data (itself checked against R in
test_analysis.py / test_stats_reference.py) and the disclosure rules as written in
ptrharmonize/federated/disclosure.py (DataSHIELD nfilter.tab / Achilles smallCellCount: every
count 0 or >= the minimum; event times only where >= the minimum are at risk).
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

# vantage6 is the federated extra, which CI installs (.ci/run: '.[test,federated]'): a missing
# extra fails here rather than skipping.
import vantage6.algorithm.tools.mock_client  # noqa: E402,F401

from ptrharmonize.analysis.runner import run_analysis  # noqa: E402
from ptrharmonize.cdm import load_definitions  # noqa: E402
from ptrharmonize.federated import combine  # noqa: E402
from ptrharmonize.federated.demo import build_stores, compare, qa_equal, run_mock  # noqa: E402
from ptrharmonize.federated.disclosure import Policy, Refused  # noqa: E402
from ptrharmonize.federated.node import event_table  # noqa: E402
from ptrharmonize.federated.rounds import Rounds  # noqa: E402
from ptrharmonize.stats.regression import linear  # noqa: E402

# Every pool variable a candidate and every candidate entering (entry p < 0.9999), so that a
# model of several variables is selected whatever the demo data say, and Firth's fit and
# profile limits run (the study's settings select nothing on the demo cohort).
WIDE = """analysis:
  candidate_p: 0.9999
  entry_p: 0.9999
  removal_p: 0.99999
  multivariable_pool: [age_years, male, infection, peak_il6]
"""


# The three states of issue 16 at the nodes: the first center does not collect two tables
# (medications: the file is absent; infections: declared `not_collected` in its mapping) nor
# a column (transfusions.units_reported, declared); the second left cells blank (unknown): storage
# times of 8 patients' transfusions, some ages, some extramedullary flags, some temperatures.
NOT_SENT_FILE = "medications"
DECLARED = ["infections", "transfusions.units_reported"]
BLANK_STORAGE_PATIENTS = 8


def _not_collecting(folder: Path):
    """The first center through an identity mapping that declares what it does not collect."""
    import polars as pl
    import yaml

    from ptrharmonize.mapping import apply_mapping

    (folder / f"{NOT_SENT_FILE}.csv").unlink(missing_ok=True)
    tables = {}
    for f in sorted(folder.glob("*.csv")):
        if f.stem in DECLARED:
            continue
        cols = pl.read_csv(f, n_rows=0).columns
        tables[f.stem] = {"file": f.name, "columns": {
            c: c for c in cols if c != "center_id" and f"{f.stem}.{c}" not in DECLARED}}
    center = pl.read_csv(folder / "patients.csv", infer_schema_length=0)["center_id"][0]
    doc = {"mapping_version": 1, "center_id": center, "tables": tables, "not_collected": DECLARED,
           "defaults": {"timestamp_format": "%Y-%m-%dT%H:%M:%S", "date_format": "%Y-%m-%d"}}
    mapping = folder.parent / f"{folder.name}-not-collected.yaml"
    mapping.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return apply_mapping(mapping, folder)


def _blank(df, column: str, every: int, offset: int):
    import polars as pl

    return df.with_row_index("_i").with_columns(
        pl.when(pl.col("_i") % every == offset).then(None).otherwise(pl.col(column)).alias(column)
    ).drop("_i")


def _with_blanks(folder: Path):
    """The second center with blank cells (idempotent: called once per store)."""
    import polars as pl

    from ptrharmonize.read.canonical import read_canonical

    tx = pl.read_csv(folder / "transfusions.csv", infer_schema_length=0)
    who = sorted(tx["patient_id"].unique().to_list())[:BLANK_STORAGE_PATIENTS]
    tx.with_columns(storage_h=pl.when(pl.col("patient_id").is_in(who)).then(None)
                    .otherwise(pl.col("storage_h"))).write_csv(folder / "transfusions.csv")
    pt = pl.read_csv(folder / "patients.csv", infer_schema_length=0)
    _blank(_blank(pt, "age_years", 9, 1), "extramedullary", 5, 2).write_csv(folder / "patients.csv")
    crs = pl.read_csv(folder / "crs_assessments.csv", infer_schema_length=0)
    _blank(crs, "max_temp_c", 3, 0).write_csv(folder / "crs_assessments.csv")
    return read_canonical(folder)


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("federated")
    stores, pooled_store = build_stores(root / "stores", patients_per_center=40, centers=3,
                                        readers={0: _not_collecting, 1: _with_blanks})
    config = root / "wide.yaml"
    config.write_text(WIDE, encoding="utf-8")
    return {"root": root, "stores": stores, "pooled_store": pooled_store, "config": config}


@pytest.fixture(scope="module")
def exact_run(network: dict) -> dict:
    """Minimum cell count 1 (nothing suppressed): every exact quantity must match."""
    pooled = run_analysis(network["pooled_store"], network["root"] / "pooled",
                          config=network["config"], progress=False)
    fed = run_mock(network["stores"], load_definitions(network["config"]), node_min_count=1,
                   log_dir=network["root"] / "logs-1")
    return {"pooled": pooled, "fed": fed}


@pytest.fixture(scope="module")
def default_run(network: dict) -> dict:
    logs = network["root"] / "logs-5"
    fed = run_mock(network["stores"], load_definitions(None), node_min_count=5, log_dir=logs)
    return {"fed": fed, "logs": logs}


def _close(a: float, b: float, rel: float = 1e-6) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-12)


def test_every_exact_quantity_equals_the_pooled_run(exact_run: dict) -> None:
    verdicts = compare(exact_run["pooled"], exact_run["fed"])
    assert {v.analysis for v in verdicts} == {*exact_run["pooled"]["analyses"], "flows"}
    for v in verdicts:
        assert not v.exact_differ, (v.analysis, v.exact_differ[:3])
        assert not v.missing, (v.analysis, v.missing[:3])
        assert v.max_rel_exact <= 1e-6
    counted = {v.analysis: v.exact_equal for v in verdicts}
    # the exact analyses were compared number by number, not skipped
    for a in ("ptr_by_group", "ptr_by_group_stratified", "cart_characteristics",
              "ptr_multivariable", "cci_vs_il6", "bleeding_cuminc"):
        assert counted[a] >= 10, a


def _without_files(flows: dict) -> dict:
    return {k: {kk: vv for kk, vv in v.items() if kk != "files"} for k, v in flows.items()}


def test_population_and_flows_equal_the_pooled_run_with_three_states(network: dict,
                                                                     exact_run: dict) -> None:
    """Issue 16 federated: who each analysis used and left out, and why, per group, per
    variable and per center, and the CONSORT flows, summed from the nodes: the pooled run's."""
    p, f = exact_run["pooled"], exact_run["fed"]
    declared = [a for a in p["analyses"] if "population" in p["analyses"][a]]
    assert len(declared) >= 10
    for a in declared:
        assert f["analyses"][a]["population"] == p["analyses"][a]["population"], a
    assert _without_files(f["flows"]) == _without_files(p["flows"]) and len(f["flows"]) >= 5
    # the three states reached the populations as the pooled run states them: the first
    # center's medications (file absent) and infections (declared) are not collected, never
    # "no"; the second center's blanks are unknown
    nc, blank = list(network["stores"])[:2]
    # which centers sent which files (the generator's Milan shape sends no medications,
    # infections or bleeding either)
    sent: dict[str, set[str]] = {}
    for folder in (network["root"] / "stores" / "synth" / "truth").glob("*/"):
        center = (folder / "patients.csv").read_text().splitlines()[1].split(",")[0]
        sent[center] = {f.stem for f in folder.glob("*.csv")} - (
            {"infections"} if center == nc else set())
    t3 = f["analyses"]["cart_characteristics"]["population"]
    assert t3["by_center"][nc]["included"] > 0  # in Table 3; only its unknown rows are not
    for var, table in (("tocilizumab", "medications"), ("infection", "infections")):
        without = [c for c in sent if table not in sent[c]]
        assert nc in without
        assert t3["variables"][var]["excluded"] == {
            f"{var}: {table}_not_collected": sum(t3["by_center"][c]["included"] for c in without)}
    dose = f["analyses"]["platelet_dose_by_ptr"]["population"]
    assert dose["variables"]["units"]["excluded"]["units: units_not_collected"] == \
        dose["by_center"][nc]["included"] > 0
    t1 = f["analyses"]["baseline"]["population"]
    assert t1["variables"]["age_years"]["excluded"] == {
        "age_years: age_years_unknown": len(range(1, 40, 9))}  # the second center's blanks
    t2 = f["analyses"]["ptr_by_group"]["population"]
    assert set(t2["by_center"][blank]["excluded"]) == {"PTR not assessable: storage_unknown"}
    assert 0 < t2["by_center"][blank]["excluded"]["PTR not assessable: storage_unknown"] \
        <= BLANK_STORAGE_PATIENTS
    # ... and the exact analyses equal the pooled run's with those patients left out
    assert f["analyses"]["ptr_by_group"]["table"] == p["analyses"]["ptr_by_group"]["table"]


def test_table2_and_cmh_breslow_day_identical(exact_run: dict) -> None:
    p, f = (exact_run[k]["analyses"] for k in ("pooled", "fed"))
    assert f["ptr_by_group"]["table"] == p["ptr_by_group"]["table"]
    assert f["ptr_by_group"]["test"] == p["ptr_by_group"]["test"]
    assert _close(f["ptr_by_group"]["p_value"], p["ptr_by_group"]["p_value"], 1e-12)
    s_p, s_f = p["ptr_by_group_stratified"], f["ptr_by_group_stratified"]
    assert s_f["centers"] == s_p["centers"] and len(s_f["centers"]) == 3
    for k in ("statistic", "p_value", "common_odds_ratio", "ci_low", "ci_high",
              "breslow_day_statistic", "breslow_day_p_value"):
        assert _close(s_f[k], s_p[k], 1e-12), k


def test_table4_forward_selection_wald_and_firth_equal_to_1e6(exact_run: dict) -> None:
    p, f = (exact_run[k]["analyses"]["ptr_multivariable"] for k in ("pooled", "fed"))
    assert p["selected"], "the wide screen must select a model for this test to mean anything"
    assert [s["variable"] for s in f["selected"]] == [s["variable"] for s in p["selected"]]
    assert [s["variable"] for s in f["screen"]] == [s["variable"] for s in p["screen"]]
    assert [st["action"] + st["variable"] for st in f["steps"]] == \
        [st["action"] + st["variable"] for st in p["steps"]]
    for a, b in zip(f["selected"], p["selected"], strict=True):
        for k in ("estimate", "se", "odds_ratio", "ci_low", "ci_high", "p_value"):
            assert _close(a[k], b[k]), (a["variable"], k, a[k], b[k])
    assert f["firth"] and p["firth"]
    for a, b in zip(f["firth"]["selected"], p["firth"]["selected"], strict=True):
        for k in ("estimate", "se", "ci_low", "ci_high", "p_value"):
            assert _close(a[k], b[k]), ("firth", a["variable"], k, a[k], b[k])
    assert _close(f["firth"]["statistic"], p["firth"]["statistic"])
    cost = exact_run["fed"]["federated"]["cost"]["ptr_multivariable"]
    assert cost["rounds"] >= 10 and set(cost["bytes_per_node"]) == set(
        exact_run["fed"]["federated"]["centers"])


def test_figure3b_cuminc_and_gray_equal_to_1e6(exact_run: dict) -> None:
    p, f = (exact_run[k]["analyses"]["bleeding_cuminc"] for k in ("pooled", "fed"))
    assert f["times_coarsened"] == 0
    assert _close(f["statistic"], p["statistic"]) and _close(f["p_value"], p["p_value"])
    for g in ("ptr", "non_ptr"):
        assert f["curves"][g]["time"] == p["curves"][g]["time"]
        assert np.allclose(f["curves"][g]["cif"], p["curves"][g]["cif"], rtol=1e-6, atol=1e-12)
        assert np.allclose(f["curves"][g]["var"], p["curves"][g]["var"], rtol=1e-6, atol=1e-12)
        assert _close(f["cif_at_horizon"][g], p["cif_at_horizon"][g])


def test_figure2b_regression_from_sufficient_statistics(exact_run: dict) -> None:
    p, f = (exact_run[k]["analyses"]["cci_vs_il6"] for k in ("pooled", "fed"))
    assert f["n"] == p["n"] and f["n_patients"] == p["n_patients"]
    for k in ("slope", "intercept", "r2", "statistic", "p_value", "slope_se", "intercept_se"):
        assert _close(f[k], p[k], 1e-9), k


def test_medians_are_marked_approximate_and_rank_tests_refused(exact_run: dict) -> None:
    f = exact_run["fed"]["analyses"]
    for kind, key in (("cytokines_by_ptr", "IL6"), ("cytokines_by_crs", "IL10"),
                      ("platelet_dose_by_ptr", "units")):
        e = f[kind][key]
        assert e["approximate"] == ["median"] and "McGrath" in e["median_method"]
        assert e["test"] is None and e["p_value"] is None and "ranks" in e["test_refused"]
        assert e["range"] == {g: [None, None] for g in e["n"]}
        assert set(e["center_medians"]) == set(exact_run["fed"]["federated"]["centers"])
        assert e["n"] == exact_run["pooled"]["analyses"][kind][key]["n"]  # counts stay exact
    # the study's Student t of peak temperature is exact from the centers' moments
    t_p = next(r for r in exact_run["pooled"]["analyses"]["cart_characteristics"]["rows"]
               if r["variable"] == "peak_temp_c")
    t_f = next(r for r in f["cart_characteristics"]["rows"] if r["variable"] == "peak_temp_c")
    assert _close(t_f["statistic"], t_p["statistic"], 1e-9)
    assert t_f["ptr"]["min"] is None and t_f["approximate"] == ["median"]


def test_qa_rule_results_pooled(network: dict, exact_run: dict) -> None:
    assert qa_equal(network["pooled_store"], exact_run["fed"])
    reg = {r["rule_id"]: r for r in exact_run["fed"]["qa"]["registry"]}
    per = exact_run["fed"]["qa"]["rule_results"]
    rule = next(iter(reg))
    assert reg[rule]["checked"] == sum(r["checked"] for r in per if r["rule_id"] == rule)
    # what the first center does not collect travelled with its QA counts (issue 16)
    nc = list(network["stores"])[0]
    gone = {(k["table"], k["column"], k["how"]) for k in exact_run["fed"]["qa"]["collection"]
            if k["center_id"] == nc and not k["collected"]}
    assert {(NOT_SENT_FILE, None, "absent"), ("infections", None, "declared"),
            ("transfusions", "units_reported", "declared")} <= gone


def _counts_ok(counts: list[int], k: int) -> bool:
    return all(c == 0 or c >= k for c in counts)


def test_default_minimum_refuses_small_cells_and_logs_every_release(default_run: dict) -> None:
    fed = default_run["fed"]
    assert fed["federated"]["min_count"] == {c: 5 for c in fed["federated"]["centers"]}
    refused = [a for a in fed["analyses"].values() if a.get("status") == "refused"]
    refused_rows = [r for r in fed["analyses"]["cart_characteristics"].get("rows", [])
                    if r.get("status") == "refused"]
    assert refused or refused_rows  # 40 patients per center: some cells are 1-4
    for r in refused_rows:
        # a 2x2 cell of 1-4, or a mean over fewer than 5 patients: both name the minimum 5
        assert all("minimum cell count 5" in why or "fewer than 5 patients" in why
                   for why in r["centers_refused"].values())
    logs = sorted(default_run["logs"].glob("release-log-*.jsonl"))
    assert len(logs) == 3
    n_parts = 0
    for log in logs:
        entries = [json.loads(line) for line in log.read_text().splitlines()]
        assert entries and all(e["min_count"] == 5 and e["bytes"] > 0 for e in entries)
        for e in entries:
            if e["method"] != "partial_summary":
                continue
            ans = e["payload"]["answer"]
            if "released" in ans["ptr_by_group"]:
                cells = [c for g in ans["ptr_by_group"]["released"].values()
                         for c in (g["ptr"], g["n"] - g["ptr"])]
                assert _counts_ok(cells, 5)
            t3 = ans["cart_characteristics"]
            for var, row in t3.get("released", {}).get("rows", {}).items():
                if "released" in row and var != "peak_temp_c":
                    for g in row["released"].values():
                        assert _counts_ok([g["n"], g["N"] - g["n"]], 5), var
            # populations and flows (issue 16): every count of a released part 0 or >= 5, a
            # refused part names the minimum
            for part in _parts(ans["population"]["released"]):
                if "refused" in part:
                    assert "minimum cell count 5" in part["refused"]
                else:
                    assert _counts_ok(list(_ints(part["released"])), 5)
                    n_parts += 1
            for g in ans["bleeding_cuminc"].get("released", {}).values():
                n_left = g["n"]
                for _t, *counts in g["rows"]:
                    assert n_left >= 5  # at risk at every released time
                    n_left -= sum(counts)


    assert n_parts > 20  # released parts were checked, not only refusals
    # the coordinator puts a refused part in the place of its numbers, with the reason
    pops = [a["population"] for a in fed["analyses"].values() if "population" in a]
    refused_parts = [x for pop in pops for x in (pop["included"], pop.get("groups"))
                     if isinstance(x, dict) and x.get("status") == "refused"]
    assert refused_parts  # 40 patients per center and blank cells: some exclusions are 1-4
    for x in refused_parts:
        assert all("minimum cell count 5" in why for why in x["centers_refused"].values())
    listed = fed["federated"]["population_refused"]
    assert listed and all("minimum cell count 5" in why
                          for by in listed.values() for why in by.values())


def _ints(obj):
    """Every count in a released population part (booleans are flags, not counts)."""
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _ints(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _ints(v)
    elif isinstance(obj, int) and not isinstance(obj, bool):
        yield obj


def _parts(released: dict):
    """The separately released parts of a node's populations answer."""
    for entry in released["analyses"].values():
        yield entry["head"]
        if "groups" in entry:
            yield entry["groups"]
        yield from (entry.get("variables") or {}).values()
    yield from released["flows"].values()


def test_a_center_with_nothing_to_regress_releases_zeros() -> None:
    """Figure 2B at a center with no transfusion that has a CCI and a same-day IL-6 (storage
    times or cytokines not collected there): zeros, not a refusal that would take the whole
    analysis down (zero is released: nobody, not somebody)."""
    import polars as pl

    from ptrharmonize.federated import node

    class Empty:
        def population(self, analysis_id: str) -> pl.DataFrame:
            return pl.DataFrame(schema={"center_id": pl.Utf8, "patient_id": pl.Utf8,
                                        "cci": pl.Float64, "il6_same_day": pl.Float64})

    got = node.cci_vs_il6(Empty(), Policy(5))  # type: ignore[arg-type]
    assert got["n"] == 0 and got["n_patients"] == 0
    m = combine.pool_comoments([got, {"n": 3, "mean_x": 1.0, "mean_y": 2.0, "sxx": 2.0,
                                      "syy": 8.0, "sxy": 4.0}])
    assert m == {"n": 3.0, "mean_x": 1.0, "mean_y": 2.0, "sxx": 2.0, "syy": 8.0, "sxy": 4.0}


def test_node_minimum_is_never_lowered_by_a_request() -> None:
    assert Policy.for_node(5, 1).min_count == 5
    assert Policy.for_node(5, 10).min_count == 10
    with pytest.raises(Refused, match="minimum cell count 5"):
        Policy(5).counts("t", [0, 3, 12])
    Policy(5).counts("t", [0, 5, 12])  # zero and >= 5 pass


def test_event_times_coarsened_where_few_are_at_risk() -> None:
    # Rule (disclosure.py): a time is released only if >= min_count are at risk at it; the
    # tail is counted at the last such time. Times 1..7, one patient each: at risk 7..1;
    # with a minimum of 3 the last releasable time is 5 (3 at risk), so 6 and 7 move to 5.
    t = np.arange(1.0, 8.0)
    status = np.array([1, 0, 2, 1, 0, 1, 2])
    rows, moved = event_table(t, status, Policy(3), "x")
    assert moved == 2
    assert [r[0] for r in rows] == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert rows[-1] == [5.0, 1, 1, 1]  # the censoring at 5, the bleed at 6, the death at 7
    with pytest.raises(Refused):
        event_table(t[:2], status[:2], Policy(3), "x")


def test_rounds_batch_independent_chains() -> None:
    sent: list[int] = []

    def evaluate(reqs: list[int]) -> list[int]:
        sent.append(len(reqs))
        return [r * 10 for r in reqs]

    rounds = Rounds(evaluate)

    def chain(n: int) -> int:
        return sum(rounds.call(i) for i in range(n))

    assert rounds.run(lambda: rounds.map(chain, [1, 3, 2])) == [0, 30, 10]
    assert rounds.rounds == 3 and sent == [3, 2, 1]  # the longest chain, not the sum (6)


def test_linear_from_pooled_moments_equals_lm() -> None:
    rng = np.random.default_rng(7)
    x, y = rng.gamma(2, 50, 90), rng.normal(10, 4, 90)
    parts = []
    for sl in (slice(0, 20), slice(20, 55), slice(55, 90)):
        xs, ys = x[sl], y[sl]
        parts.append({"n": xs.size, "mean_x": xs.mean(), "mean_y": ys.mean(),
                      "sxx": ((xs - xs.mean()) ** 2).sum(), "syy": ((ys - ys.mean()) ** 2).sum(),
                      "sxy": ((xs - xs.mean()) * (ys - ys.mean())).sum()})
    got, want = combine.linear_from_moments(combine.pool_comoments(parts)), linear(x, y)
    for k in ("slope", "intercept", "slope_se", "intercept_se", "r2", "statistic", "p_value"):
        assert _close(got[k], want[k], 1e-10), k


def test_weighted_median_of_medians() -> None:
    assert combine.weighted_median([3.0, 1.0, 2.0], [1, 1, 1]) == 2.0
    assert combine.weighted_median([1.0, 3.0], [5, 5]) == 2.0  # halves: mean of the middle two
    assert combine.weighted_median([1.0, 3.0, 10.0], [1, 1, 5]) == 10.0
    assert combine.weighted_median([], []) is None


def test_partial_function_reads_the_store_named_by_the_node(network: dict, monkeypatch,
                                                           tmp_path: Path) -> None:
    """Outside the mock, the node passes its database as environment variables."""
    from ptrharmonize.federated import algorithm

    center, store = next(iter(network["stores"].items()))
    monkeypatch.setenv("USER_REQUESTED_DATABASE_LABELS", "ptrh")
    monkeypatch.setenv("PTRH_DATABASE_URI", str(store))
    monkeypatch.setenv("PTRH_FED_MIN_COUNT", "5")
    monkeypatch.setenv("PTRH_FED_RELEASE_LOG", str(tmp_path / "log.jsonl"))
    out = algorithm.partial_summary(definitions=load_definitions(None), sections=["ptr_by_group"])
    assert out["center"] == center and out["min_count"] == 5
    assert set(out["answer"]) == {"ptr_by_group"}
    assert (tmp_path / "log.jsonl").read_text().count("\n") == 1


def test_cli_demo_and_run_arguments(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "ptrharmonize", "federated", "demo", "--out",
                           str(tmp_path / "d"), "--patients-per-center", "30", "--centers", "2"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Federated vs pooled" in proc.stdout
    cmp = json.loads((tmp_path / "d" / "comparison.json").read_text())
    assert cmp["exact_differences"] == 0 and cmp["qa_equal"]
    bad = subprocess.run([sys.executable, "-m", "ptrharmonize", "federated", "run",
                          "--collaboration", "1", "--organizations", "a,b", "--server",
                          "http://localhost", "--username", "u", "--image", "x", "--out",
                          str(tmp_path / "r")], capture_output=True, text=True)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "--organizations" in bad.stderr


def test_cli_demo_exits_1_on_a_planted_exact_difference(network: dict, exact_run: dict,
                                                        monkeypatch, tmp_path: Path) -> None:
    """`ptrh federated demo` fails when an exact quantity differs: the demo's own stores,
    pooled run and mock network are replaced by this module's (already run), and one exact
    number of the federated result is changed, as a bug in a central function would."""
    import copy

    from typer.testing import CliRunner

    from ptrharmonize.analysis import runner
    from ptrharmonize.cli import app
    from ptrharmonize.federated import demo

    planted = copy.deepcopy(exact_run["fed"])
    planted["analyses"]["cci_vs_il6"]["slope"] *= 1.001  # 1e-3 relative: above 1e-6
    del planted["analyses"]["baseline"]["population"]["variables"]["age_years"]["excluded"]
    monkeypatch.setattr(demo, "build_stores",
                        lambda *a, **k: (network["stores"], network["pooled_store"]))
    def pooled_run(store: Path, out: Path, **kwargs) -> dict:
        runner.write_json(exact_run["pooled"], Path(out) / "results.json")
        return exact_run["pooled"]

    monkeypatch.setattr(runner, "run_analysis", pooled_run)
    monkeypatch.setattr(demo, "run_mock", lambda *a, **k: planted)
    res = CliRunner().invoke(app, ["federated", "demo", "--out", str(tmp_path / "d"),
                                   "--min-count", "1", "--config", str(network["config"])])
    assert res.exit_code == 1, res.output
    assert "DIFFERS cci_vs_il6.slope" in res.output
    assert "MISSING baseline.population.variables.age_years.excluded" in res.output
    cmp = json.loads((tmp_path / "d" / "comparison.json").read_text())
    assert cmp["exact_differences"] == 2
    # the unchanged result passes the same command
    monkeypatch.setattr(demo, "run_mock", lambda *a, **k: exact_run["fed"])
    res = CliRunner().invoke(app, ["federated", "demo", "--out", str(tmp_path / "e"),
                                   "--min-count", "1", "--config", str(network["config"])])
    assert res.exit_code == 0, res.output


def test_qa_report_renders_the_federated_result(network: dict, exact_run: dict,
                                                tmp_path: Path) -> None:
    from ptrharmonize.federated.qa_store import write_qa_store

    store = write_qa_store(exact_run["fed"], tmp_path / "qa-store.duckdb")
    html = tmp_path / "qa.html"
    proc = subprocess.run([sys.executable, "-m", "ptrharmonize", "qa-report", "--store",
                           str(store), "--out", str(html), "--quiet"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = html.read_text(encoding="utf-8")
    # every rule result the nodes released is a row of the report with its counts
    rows = {(m["data-center"], m["data-rule"]): (int(m["data-checked"]), int(m["data-failed"]),
                                                 m["data-status"])
            for m in (dict(re.findall(r'(data-[a-z]+)="([^"]*)"', tag))
                      for tag in re.findall(r"<tr [^>]*data-rule=[^>]*>", text))
            if "data-center" in m and "data-checked" in m}
    released = exact_run["fed"]["qa"]["rule_results"]
    assert len(released) > 100
    for r in released:
        assert rows[(r["center_id"], r["rule_id"])] == (r["checked"], r["failed"], r["status"])
    # failed rules are among them (in this data, at the center with blank cells)
    assert any(r["status"] == "failed" for r in released)
    # and what the first center does not collect is shown as such (issue 16)
    nc = list(network["stores"])[0]
    tables = re.search(rf'data-center="{nc}" data-metric="not_collected_tables">([^<]*)<', text)
    assert tables and {NOT_SENT_FILE, "infections"} <= {t.strip() for t in tables[1].split(",")}
