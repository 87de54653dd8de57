"""Who each analysis used and who it left out, federated (issue 16's `population` and flows).

At a node, `node_populations` runs the pooled run's own code (`analysis.population`: the sets
and steps of `analysis/flows.yaml` over the center's `patient_summary` and `patient_missing`)
and releases, per analysis, its population entry and, per analysis set, its CONSORT flow:
counts only (included, excluded by reason, per group, per variable, per step). The reasons are
the flows' labels and `patient_missing`'s reason codes (e.g. "PTR not assessable:
storage_unknown"), so a value not collected and a value left blank stay apart, as in the pooled
run; nothing about a single patient leaves.

Disclosure (`disclosure.Policy`): each of these is released or refused as a whole,
every count in it 0 or at least the minimum cell count:
- an analysis's head count: included, excluded by reason, and the same per center;
- its groups: included and excluded by reason per group, and the patients outside every group
  (the head count minus the groups' sum, so no small cell follows by subtraction);
- each variable tested row by row: included and excluded by reason, overall and per group,
  and the patients outside every group;
- each set's flow: every step's n and its exclusions by reason.
A refused part is `{"status": "refused", "reason", "centers_refused"}` at the coordinator, in
the place of the numbers, and the comparison with a pooled run shows it as refused, not as a
difference. Within a part, the cells are what an attacker could subtract from one another; across
parts the released numbers are sums of cells already checked (a flow step's exclusions add up to
the difference of its n's; a population's exclusions are its flow's), so the subtraction of one
released part from another gives 0 or at least the minimum, except across analyses whose sets
differ only by steps with exclusions (not guarded: as DataSHIELD, checks are per answer).

At the coordinator, `combine_populations` adds the released counts up: the same entries as the
pooled run's, equal to them when no part is refused (tests/test_federated.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import polars as pl

from ..analysis import population as pooled
from ..analysis._common import Context
from .disclosure import Policy, Refused

# --------------------------------------------------------------------------- at the node


def _check(what: str, cells: Iterable[int], policy: Policy, part: Any) -> dict[str, Any]:
    try:
        policy.counts(what, [int(c) for c in cells])
    except Refused as exc:
        return {"refused": str(exc)}
    return {"released": part}


def _outside(total: Mapping[str, Any], groups: Mapping[str, Mapping[str, Any]]) -> list[int]:
    """The patients counted in `total` and in no group (included, then per reason)."""
    out = [int(total["included"]) - sum(int(g["included"]) for g in groups.values())]
    for reason, n in (total.get("excluded") or {}).items():
        out.append(int(n) - sum(int((g.get("excluded") or {}).get(reason, 0))
                                for g in groups.values()))
    return out


def _cells(entry: Mapping[str, Any]) -> list[int]:
    return [int(entry["included"]), *(int(n) for n in (entry.get("excluded") or {}).values())]


def _groups_of_excluded(con: Any, analysis_id: str, pop: dict[str, Any]) -> dict[str, Any]:
    """The population's groups, plus the groups in which this center has excluded patients but
    nobody included (the pooled run lists a group when any center includes someone in it, and
    counts every center's excluded patients of that group: a node cannot know, so it says)."""
    spec = pooled.flows_spec()["analyses"][analysis_id]
    group_col = spec["groups"]
    groups = dict(pop.get("groups") or {})
    summary, missing = pooled._summary(con), pooled._missing(con)
    _, _, gone = pooled._run_steps(con, spec["set"], summary, missing)
    gone_g = gone.join(summary.select("center_id", "patient_id", group_col),
                       on=["center_id", "patient_id"], how="left")
    for value in sorted(gone_g[group_col].drop_nulls().unique().to_list(), key=str):
        key = pooled._group_key(group_col, value)
        if key not in groups:
            groups[key] = {"included": 0,
                           "excluded": pooled._excluded(gone_g.filter(pl.col(group_col) == value))}
    return groups


def _release_population(con: Any, analysis_id: str, pop: dict[str, Any], policy: Policy
                        ) -> dict[str, Any]:
    what = f"{analysis_id}: population"
    out: dict[str, Any] = {k: pop[k] for k in ("set", "unit", "scope", "groups_by") if k in pop}
    head = {"included": pop["included"], "excluded": pop["excluded"],
            "by_center": pop.get("by_center", {})}
    out["head"] = _check(what, [*_cells(head), *(c for e in head["by_center"].values()
                                                  for c in _cells(e))], policy, head)
    if "groups" in pop:
        groups = _groups_of_excluded(con, analysis_id, pop)
        cells = [c for g in groups.values() for c in _cells(g)] + _outside(pop, groups)
        out["groups"] = _check(f"{what} by group", cells, policy, groups)
    if "variables" in pop:
        out["variables"] = {}
        for name, v in pop["variables"].items():
            gs = v.get("groups") or {}
            cells = _cells(v) + [c for g in gs.values() for c in _cells(g)]
            if gs:
                cells += _outside(v, gs)
            out["variables"][name] = _check(f"{what}, {name} known", cells, policy, v)
    return out


def _flow_cells(fl: Mapping[str, Any]) -> list[int]:
    cells: list[int] = []
    for step in fl.get("steps", []):
        cells += [int(step["n"]), *(int(n) for n in step.get("by_center", {}).values())]
        cells += [int(n) for n in (step.get("excluded") or {}).values()]
        cells += [int(n) for by in (step.get("excluded_by_center") or {}).values()
                  for n in by.values()]
    return cells


def node_populations(ctx: Context, policy: Policy) -> dict[str, Any]:
    """Per declared analysis its population entry, per analysis set its flow: each part
    released or refused (see the module's docstring)."""
    con = ctx.con
    declared = list(pooled.flows_spec()["analyses"])
    out: dict[str, Any] = {"analyses": {}, "flows": {}}
    for analysis_id in declared:
        pop = pooled.population(con, analysis_id)
        if pop is not None:
            out["analyses"][analysis_id] = _release_population(con, analysis_id, pop, policy)
    for set_id, fl in pooled.flows(con, declared).items():
        if "error" in fl:  # the store lacks what the steps read: said, as in the pooled run
            out["flows"][set_id] = {"released": fl}
        else:
            out["flows"][set_id] = _check(f"flow {set_id}", _flow_cells(fl), policy, fl)
    return out


# --------------------------------------------------------------------------- at the coordinator


def _refused(what: str, centers: Mapping[str, str]) -> dict[str, Any]:
    return {"status": "refused", "reason": f"a center refused {what}",
            "centers_refused": dict(centers)}


def _sum_excluded(entries: Iterable[Mapping[str, Any]], by_size: bool) -> dict[str, int]:
    total: Counter[str] = Counter()
    for e in entries:
        total.update({k: int(v) for k, v in (e.get("excluded") or {}).items()})
    items = [(k, n) for k, n in total.items() if n]
    if by_size:  # as analysis.population._excluded
        items.sort(key=lambda kv: (-kv[1], kv[0]))
    return dict(items)


def _sum_groups(per_center: Iterable[Mapping[str, Any]], by_size: bool, drop_empty: bool
                ) -> dict[str, Any]:
    """Groups summed; with `drop_empty`, a group nobody is included in is dropped (a
    population's groups are those of its included patients; a variable's groups are its
    population's, listed even when nobody in one has the value known)."""
    keys: dict[str, None] = {}
    entries = list(per_center)
    for gs in entries:
        keys.update(dict.fromkeys(gs))
    out = {}
    for key in sorted(keys):
        parts = [gs[key] for gs in entries if key in gs]
        included = sum(int(p["included"]) for p in parts)
        if included or not drop_empty:
            out[key] = {"included": included, "excluded": _sum_excluded(parts, by_size)}
    return out


def _parts(entries: Mapping[str, Mapping[str, Any]]) -> tuple[list[Any], dict[str, str]]:
    released = [e["released"] for e in entries.values() if "released" in e]
    return released, {c: e["refused"] for c, e in entries.items() if "refused" in e}


def _combine_population(per_center: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    first = next(iter(per_center.values()))
    out: dict[str, Any] = {k: first[k] for k in ("set", "unit") if k in first}
    heads, no = _parts({c: e["head"] for c, e in per_center.items()})
    if no:
        refused = _refused("its head count", no)
        out |= {"included": refused, "excluded": refused}
    else:
        out |= {"included": sum(int(h["included"]) for h in heads),
                "excluded": _sum_excluded(heads, by_size=True)}
    out["scope"] = first.get("scope", [])
    by_center: dict[str, Any] = {}
    for c, e in sorted(per_center.items()):
        head = e["head"]
        if "released" in head:
            by_center.update(head["released"]["by_center"])
        else:
            by_center[c] = _refused("its head count", {c: head["refused"]})
    out["by_center"] = dict(sorted(by_center.items()))
    if "groups" in first:
        groups, no = _parts({c: e["groups"] for c, e in per_center.items()})
        out["groups"] = _refused("its groups", no) if no else _sum_groups(groups, by_size=True, drop_empty=True)
        out["groups_by"] = first["groups_by"]
    if "variables" in first:
        out["variables"] = {}
        for name in first["variables"]:
            vs, no = _parts({c: e["variables"][name] for c, e in per_center.items()})
            if no:
                out["variables"][name] = _refused(f"the row {name}", no)
                continue
            v: dict[str, Any] = {"included": sum(int(x["included"]) for x in vs),
                                 "excluded": _sum_excluded(vs, by_size=False)}
            if any("groups" in x for x in vs):
                v["groups"] = _sum_groups([x.get("groups") or {} for x in vs], by_size=False,
                                         drop_empty=False)
            out["variables"][name] = v
    return out


def _combine_flow(per_center: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    flows, no = _parts(per_center)
    label = flows[0]["label"] if flows else None
    if no:
        return {"label": label, **_refused("its flow", no)}
    broken = next((f for f in flows if "error" in f), None)
    if broken is not None:
        return broken
    steps = []
    for k, step in enumerate(flows[0]["steps"]):
        parts = [f["steps"][k] for f in flows]
        s: dict[str, Any] = {"label": step["label"], "n": sum(int(p["n"]) for p in parts),
                             "by_center": dict(sorted(
                                 (c, n) for p in parts for c, n in p["by_center"].items()))}
        if "excluded" in step:
            s["excluded"] = _sum_excluded(parts, by_size=False)
            s["excluded_by_center"] = dict(sorted(
                (c, r) for p in parts for c, r in p["excluded_by_center"].items()))
            s["scope"] = step["scope"]
        steps.append(s)
    return {"label": label, "steps": steps}


def combine_populations(parts: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """`{"analyses": {analysis: population}, "flows": {set: flow}}` from the nodes' answers
    (center -> `{"released": node_populations(...)}` or `{"refused": reason}`)."""
    released, no = _parts(parts)
    if no or not released:
        why = _refused("its populations", no)
        return {"analyses": {}, "flows": {}, "refused": why}
    by_center = {c: p["released"] for c, p in sorted(parts.items())}
    analyses = {a: _combine_population({c: r["analyses"][a] for c, r in by_center.items()})
                for a in released[0]["analyses"]}
    flows = {s: _combine_flow({c: r["flows"][s] for c, r in by_center.items()})
             for s in released[0]["flows"]}
    return {"analyses": analyses, "flows": flows}


def caption(pop: Mapping[str, Any]) -> str:
    """The pooled run's caption, when the head count and groups were released."""
    if isinstance(pop.get("included"), dict) or (pop.get("groups") or {}).get("status"):
        return ""
    return pooled.caption(dict(pop))


def refused_parts(pops: Mapping[str, Any], flows: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """`{"<analysis>.population.<part>" or "flows.<set>": {center: reason}}` of every refused
    part, for results.json's `federated` summary."""
    out: dict[str, dict[str, str]] = {}

    def walk(x: Any, path: str) -> None:
        if isinstance(x, Mapping):
            if x.get("status") == "refused":
                out.setdefault(path, dict(x.get("centers_refused") or {}))
                return
            for k, v in x.items():
                walk(v, f"{path}.{k}")

    for a, pop in pops.items():
        walk(pop, f"{a}.population")
    for s, fl in flows.items():
        walk(fl, f"flows.{s}")
    return out
