"""The whole study at the coordinator, over any network that answers rounds.

`run_study(network, definitions)` asks every node for the one-round aggregates
(`partial_summary`), combines them (`combine`), fits Table 4 with as many `partial_glm` rounds
as the Newton iterations need (`logistic`), and returns the `results.json` of `run-analysis`
with the same analysis entries, plus `federated` (centers, minimum cell count, refusals, and
the cost: rounds and bytes each node sent, per analysis) and `qa` (the pooled rule results).
A `Network` is the vantage6 client (`algorithm.ClientNetwork`) or anything with its `round`.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np

from ..analysis import ANALYSES
from ..analysis._common import AnalysisResult, not_estimable, num
from ..analysis.ptr_multivariable import _result, _terms, report
from ..analysis.runner import software_versions
from ..stats._common import NotEstimable
from . import combine, populations
from .disclosure import Refused
from .logistic import add_parts, firth_logistic, forward_lr, logistic
from .rounds import Rounds


class Network(Protocol):
    def round(self, method: str, kwargs: dict[str, Any], label: str) -> dict[str, Any]:
        """Send one task to every node; return center -> the node's answer."""


class Cost:
    """Rounds and bytes sent by each node, per analysis label."""

    def __init__(self) -> None:
        self.by_label: dict[str, dict[str, Any]] = {}

    def add(self, label: str, answers_bytes: Mapping[str, int]) -> None:
        e = self.by_label.setdefault(label, {"rounds": 0, "bytes_per_node": {}})
        e["rounds"] += 1
        for center, b in answers_bytes.items():
            e["bytes_per_node"][center] = e["bytes_per_node"].get(center, 0) + int(b)

    def as_dict(self) -> dict[str, Any]:
        out = {}
        for label, e in self.by_label.items():
            b = e["bytes_per_node"]
            out[label] = {**e, "bytes_max_node": max(b.values()) if b else 0,
                          "bytes_total": sum(b.values())}
        return out


def answer_bytes(answer: Any) -> int:
    """What a node sends: its answer as JSON (as vantage6 serialises it)."""
    return len(json.dumps(answer).encode("utf-8"))


def glm_rounds(network: Network, label: str) -> Rounds:
    """Rounds of `partial_glm`; their cost is booked under `rounds.label` (changed as the
    analysis moves from the ML fits to Firth's)."""

    def evaluate(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        answers = network.round("partial_glm", {"requests": requests}, rounds.label)
        centers = sorted(answers)
        return [add_parts([answers[c][i] for c in centers]) for i in range(len(requests))]

    rounds = Rounds(evaluate)
    rounds.label = label  # type: ignore[attr-defined]
    return rounds


def ptr_multivariable(network: Network, definitions: dict[str, Any],
                      table3: AnalysisResult | dict[str, Any]) -> AnalysisResult | dict[str, Any]:
    """Table 4 as `analysis.ptr_multivariable`, from Table 3's federated rows and federated
    logistic fits."""
    p = definitions["analysis"]
    t3 = table3.data if isinstance(table3, AnalysisResult) else table3
    if t3.get("status") == "refused":
        return combine.refused("Table 3 was refused, and its tests screen the candidates",
                               t3.get("centers_refused"))
    if t3.get("status") in ("not_applicable", "not_estimable", "error"):
        return {"status": t3["status"],
                "reason": "the CAR-T subgroup has no PTR or no non-PTR patient",
                "n": sum((t3.get("n") or {}).values())}
    n_all = t3["n"]["ptr"] + t3["n"]["non_ptr"]
    events = t3["n"]["ptr"]
    table3_rows = {r["variable"]: r for r in t3["rows"]}
    settings = {k: p[k] for k in ("candidate_p", "entry_p", "removal_p", "entry_test")}

    def study() -> AnalysisResult | dict[str, Any]:
        def screen_one(var: str) -> dict[str, Any]:
            if var in table3_rows:
                row = table3_rows[var]
                if row.get("status") == "refused":
                    raise Refused(f"the Table 3 row {var} was refused: {row['reason']}")
                test, p_value = row["test"], row["p_value"]
            else:
                try:
                    fit = logistic(rounds, [var], [var], p["confidence"])
                    test, p_value = "logistic", _terms(fit)[0]["p_value"]
                except NotEstimable:  # as the pooled code: no screen p, not a candidate
                    test, p_value = "logistic", None
            return {"variable": var, "univariate_test": test, "univariate_p": p_value,
                    "candidate": p_value is not None and p_value < p["candidate_p"]}

        screen = rounds.map(screen_one, list(p["multivariable_pool"]))
        candidates = [s["variable"] for s in screen if s["candidate"]]
        if not candidates:
            data = {"test": "logistic", "statistic": None, "p_value": None, "n": n_all,
                    "events": events, "selected": [], "screen": screen, "candidates": [],
                    **settings}
            return _result(num(data), None)
        base = rounds.call({"model": [], "complete_cases": candidates, "beta": [0.0],
                            "firth": False})
        if "refused" in base:
            raise Refused(base["refused"])
        if base["events"] in (0, base["n"]):
            return not_estimable("no PTR or no non-PTR patient has every candidate known",
                                 n=base["n"], screen=screen, candidates=candidates)
        model = forward_lr(rounds, candidates, p["entry_p"], p["removal_p"], p["entry_test"],
                           p["confidence"])
        selected = [s["variable"] for s in model["selected"]]
        firth, firth_error = None, None
        if selected:
            rounds.label = "ptr_multivariable:firth"  # type: ignore[attr-defined]
            try:
                fit = firth_logistic(rounds, selected, candidates, confidence=p["confidence"])
                firth = {**fit, "selected": _terms(fit)}
                del firth["coefficients"]
            except NotEstimable as exc:
                firth_error = str(exc)
            except np.linalg.LinAlgError:
                firth_error = ("the information matrix became singular in Firth's fit or its "
                               "profile-likelihood search")
        reported = report(model, firth, firth_error, n=base["n"], events=int(base["events"]),
                          screen=screen, candidates=candidates)
        if isinstance(reported, AnalysisResult):
            return reported
        data = {**reported, **settings}
        return _result(num(data), firth)

    rounds = glm_rounds(network, "ptr_multivariable")
    try:
        return rounds.run(study)
    except Refused as exc:
        return combine.refused(str(exc))
    except NotEstimable as exc:
        return not_estimable(str(exc))


def _split(answers: Mapping[str, Mapping[str, Any]], section: str) -> dict[str, Any]:
    return {c: a[section] for c, a in sorted(answers.items())}


def run_study(network: Network, definitions: dict[str, Any]) -> tuple[dict[str, Any], dict]:
    """Every analysis of `run-analysis`, federated. Returns (results.json as a dict, the
    AnalysisResult objects of the analyses that have one, for tables and figures)."""
    summary = network.round("partial_summary", {}, "summary")
    section_bytes = {s: {c: answer_bytes(a[s]) for c, a in sorted(summary.items())}
                     for s in (next(iter(summary.values())) if summary else {})}
    parts = {s: _split(summary, s) for s in next(iter(summary.values()))} if summary else {}
    out: dict[str, Any] = {}
    out.update(combine.ptr_by_group(parts["ptr_by_group"], definitions))
    out["baseline"] = combine.table_rows("baseline", parts["baseline"], definitions)
    out["cart_characteristics"] = combine.table_rows(
        "cart_characteristics", parts["cart_characteristics"], definitions)
    out["ptr_multivariable"] = ptr_multivariable(network, definitions,
                                                 out["cart_characteristics"])
    for kind in ("cytokines_by_crs", "cytokines_by_ptr", "platelet_dose_by_ptr"):
        out[kind] = combine.medians(kind, parts[kind], definitions)
    out["cci_vs_il6"] = combine.cci_vs_il6(parts["cci_vs_il6"], definitions)
    out["bleeding_cuminc"] = combine.bleeding_cuminc(parts["bleeding_cuminc"], definitions)

    pops = populations.combine_populations(parts["population"])
    analyses: dict[str, Any] = {}
    objects: dict[str, AnalysisResult] = {}
    headlines: list[dict[str, Any]] = []
    for analysis_id in ANALYSES:
        # an analysis the federated study does not compute yet (e.g. bleeding_landmark) is
        # reported as refused, not lost
        res = out.get(analysis_id) or combine.refused("not computed by the federated study yet")
        if isinstance(res, AnalysisResult):
            objects[analysis_id] = res
            data = res.data
            headlines += [{"analysis": analysis_id, **num(s)} for s in res.summary]
        else:
            data = res
        data.setdefault("status", "ok")
        if analysis_id in pops["analyses"]:  # who it used and left out (issue 16), summed
            data["population"] = pops["analyses"][analysis_id]
            if isinstance(res, AnalysisResult):
                res.caption = populations.caption(data["population"])
        data["population_sql"] = f"ptrharmonize/analysis/sql/{analysis_id}.sql"
        analyses[analysis_id] = num(data)
    refusals = {k: v.get("centers_refused") or v.get("reason") for k, v in analyses.items()
                if v.get("status") == "refused"}
    qa = combine.qa(parts["qa"])
    results = {
        "analyses": analyses,
        "summary": headlines,
        "status": {k: v.get("status") for k, v in analyses.items()},
        "submissions": qa["submissions"],  # as run-analysis, without paths and checksums
        "qa": qa,
        "software": software_versions(),
        "settings": definitions,
        "federated": {
            "centers": sorted(summary),
            "refused": refusals,
            "approximate": {k: v["approximate"] for k, v in analyses.items()
                            if v.get("approximate")},
            # the parts of populations and flows a center refused (small counts), by place
            "population_refused": populations.refused_parts(
                {k: v["population"] for k, v in analyses.items() if "population" in v},
                pops["flows"]),
            "cost": network.cost.as_dict() if hasattr(network, "cost") else None,
            "summary_bytes_by_section": section_bytes,
        },
        "flows": pops["flows"],
        "filters": {"centers": sorted(summary), "since": None, "config": None},
        "files": {},
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    return num(results), objects
