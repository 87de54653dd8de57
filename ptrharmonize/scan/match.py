"""Propose CDM tables, columns, codes and units for a center's profiled files.

Evidence, in the order it counts: the words of the file, sheet and column names against the
onboarding lexicon; whether the values fit the CDM column's type (a date column must hold
dates, a code column few distinct values); the values against the lexicon's codes; the
magnitudes against the CDM column's range, unit by unit of its dimension. Every proposal
carries its evidence and a confidence, because it is a draft for a person to check.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..cdm import Catalog, ColumnSpec
from ..paths import schemas_dir
from .profile import ColumnProfile, FileProfile

_BRACKETS = re.compile(r"[\(\[（【][^\)\]）】]*[\)\]）】]")
_SPLIT = re.compile(r"[^\w\u4e00-\u9fff%]+")
_CJK = re.compile(r"[\u4e00-\u9fff]")


def load_lexicon(root: Path | None = None) -> dict[str, Any]:
    """The onboarding lexicon of the model in use (a registry folder's copy, if any)."""
    return _load(str((root or schemas_dir()) / "onboarding" / "lexicon.yaml"))


@lru_cache(maxsize=4)
def _load(path: str) -> dict[str, Any]:
    from ..cdm import _load_yaml

    return _load_yaml(Path(path)) or {}


def normalize(text: str, keep_brackets: bool = False) -> str:
    """Casefolded, accents removed, bracketed units dropped, punctuation as single spaces."""
    t = str(text)
    if not keep_brackets:
        t = _BRACKETS.sub(" ", t)
    t = unicodedata.normalize("NFKD", t)
    t = "".join(ch for ch in t if not unicodedata.combining(ch)).casefold()
    t = t.replace("_", " ")
    return " ".join(w for w in _SPLIT.split(t) if w)


def term_score(header: str, term: str) -> float:
    """1.0 when the header is the term; 0.8 when every word of the term is a word of the header
    (or, for Chinese, the term is inside it); else 0."""
    h, t = normalize(header), normalize(term)
    if not h or not t:
        return 0.0
    if h == t:
        return 1.0
    if _CJK.search(t):
        return 0.8 if t.replace(" ", "") in h.replace(" ", "") else 0.0
    words = set(h.split())
    return 0.8 * (len(t.split()) / max(len(words), 1)) ** 0.25 if set(t.split()) <= words else 0.0


def best_term(header: str, terms: list[str]) -> tuple[float, str | None]:
    best = (0.0, None)
    for term in terms or []:
        s = term_score(header, str(term))
        if s > best[0]:
            best = (s, str(term))
    return best


@dataclass
class Proposal:
    """A source column proposed for a CDM column (of its TableProposal's table), with the reasons."""

    cdm_column: str
    source: ColumnProfile
    confidence: float
    evidence: list[str] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)       # source value -> CDM code/boolean
    unmatched_values: list[str] = field(default_factory=list)
    unit: str | None = None
    unit_evidence: str | None = None


@dataclass
class TableProposal:
    table: str
    file: FileProfile
    confidence: float
    evidence: str
    columns: list[Proposal] = field(default_factory=list)


def propose(files: list[FileProfile], catalog: Catalog, lexicon: dict[str, Any]) -> list[TableProposal]:
    """One proposal per CDM table that some file matches (the best-matching file), with its
    columns assigned one to one, best first."""
    candidates: list[tuple[float, str, FileProfile, str]] = []
    for f in files:
        if f.error or not f.columns:
            continue
        name = f"{Path(f.file).stem} {f.sheet or ''}"
        for table, terms in (lexicon.get("tables") or {}).items():
            if table not in catalog.tables:
                continue
            s, term = best_term(name, terms)
            if s:
                candidates.append((s, table, f, f"the {'sheet' if f.sheet else 'file'} name matches '{term}'"))
    chosen: dict[str, TableProposal] = {}
    used: set[int] = set()
    for s, table, f, why in sorted(candidates, key=lambda c: -c[0]):
        if table in chosen or id(f) in used:
            continue
        chosen[table] = TableProposal(table, f, round(s, 2), why)
        used.add(id(f))
    for tp in chosen.values():
        tp.columns = assign_columns(tp.file, catalog.tables[tp.table].columns, lexicon)
    return [chosen[t] for t in catalog.table_names if t in chosen]


def assign_columns(f: FileProfile, specs: list[ColumnSpec], lexicon: dict[str, Any]) -> list[Proposal]:
    words = lexicon.get("columns") or {}
    scored: list[tuple[float, ColumnSpec, ColumnProfile, str]] = []
    for spec in specs:
        if spec.name == "center_id":
            continue
        for col in f.columns:
            s, term = best_term(col.column, words.get(spec.name, []))
            if not s:
                continue
            fit, why = type_fit(spec, col, lexicon)
            scored.append((s * fit, spec, col, f"header matches '{term}'; {why}"))
    taken_cdm: set[str] = set()
    taken_src: set[str] = set()
    out: list[Proposal] = []
    for s, spec, col, why in sorted(scored, key=lambda x: (-x[0], x[2].position)):
        if s < 0.3 or spec.name in taken_cdm or col.column in taken_src:
            continue
        taken_cdm.add(spec.name)
        taken_src.add(col.column)
        p = Proposal(spec.name, col, round(s, 2), [why])
        _values(p, spec, col, lexicon)
        _unit(p, spec, col)
        out.append(p)
    order = {s.name: i for i, s in enumerate(specs)}
    return sorted(out, key=lambda p: order[p.cdm_column])


def type_fit(spec: ColumnSpec, col: ColumnProfile, lexicon: dict[str, Any]) -> tuple[float, str]:
    """How well the values fit the CDM column's type (1 fits, lower doubts, 0.2 contradicts)."""
    kind = col.kind
    if kind == "empty":
        return 0.6, "the column is empty"
    if spec.type in ("date", "timestamp"):
        return (1.0, f"values are {kind}s ({col.date_format})") if kind in ("date", "timestamp") \
            else (0.2, f"values are {kind}, not dates")
    if spec.type in ("integer", "decimal"):
        return (1.0, f"values are numbers ({col.minimum} to {col.maximum})") if kind in ("integer", "decimal") \
            else (0.5 if kind == "text" else 0.2, f"values are {kind}, not numbers")
    if spec.type in ("code", "boolean"):
        if kind in ("date", "timestamp"):
            return 0.2, "values are dates, not codes"
        return (1.0, f"{col.n_distinct} distinct values") if col.n_distinct <= 30 else (0.5, f"{col.n_distinct} distinct values")
    if kind in ("date", "timestamp") and spec.type == "text":
        return 0.4, "values are dates"
    return 1.0, f"{kind} values"


def _values(p: Proposal, spec: ColumnSpec, col: ColumnProfile, lexicon: dict[str, Any]) -> None:
    if spec.type == "boolean":
        table = {str(k).lower(): v for v, ks in (lexicon.get("booleans") or {}).items() for k in ks}
        table = {normalize(k): (str(v).lower() == "true") for k, v in table.items()}
    elif spec.type == "code":
        if spec.codes and _all_units(spec.codes):
            return  # a unit column: the mapping converts row by row, no value map
        table = {normalize(str(c), keep_brackets=True): str(c) for c in spec.codes or ()}
        for code, ks in ((lexicon.get("codes") or {}).get(spec.name) or {}).items():
            for k in [code, *ks]:
                table.setdefault(normalize(str(k)), str(code))
    else:
        return
    for v in col.values[:200]:
        key = normalize(v, keep_brackets=True)
        if key in table:
            p.values[v] = table[key]
        else:
            hit = _pattern_code(key, table)
            if hit is not None:
                p.values[v] = hit
            else:
                p.unmatched_values.append(v)


def _all_units(codes: tuple[str, ...]) -> bool:
    from .. import units

    return all(units.is_known(c) for c in codes)


def _pattern_code(key: str, table: dict[str, Any]) -> Any:
    """A value that holds exactly one known code word ("TC aferese" -> apheresis)."""
    words = set(key.split())
    hits = {code for k, code in table.items() if len(k) > 2 and (set(k.split()) <= words or
                                                                  (_CJK.search(k) and k in key))}
    return next(iter(hits)) if len(hits) == 1 else None


def _unit(p: Proposal, spec: ColumnSpec, col: ColumnProfile) -> None:
    """The unit: one named in the header (in brackets), else the unit of the CDM column's
    dimension under which the median falls best inside the column's range."""
    if not spec.unit or col.kind not in ("integer", "decimal"):
        return
    from .. import units

    reg = units.registry()
    try:
        target = reg.lookup(spec.unit)
    except units.UnitError:
        return
    named = re.findall(r"[\(\[（]([^\)\]）]+)[\)\]）]", col.column)
    named += [w for w in reversed(re.split(r"[\s_]+", _BRACKETS.sub(" ", col.column))[1:]) if w]
    for inner in named:
        try:
            u = reg.lookup(inner.strip())
        except units.UnitError:
            continue
        if u.dimension == target.dimension:
            p.unit, p.unit_evidence = u.name, f"the header names the unit ({inner.strip()})"
            return
    if col.median is None or spec.min is None or spec.max is None:
        return
    lo, hi = float(spec.min), float(spec.max)
    if lo <= col.median <= hi:
        # The model's own unit whenever the median fits its range: a pre-transfusion platelet
        # count of 11 is 11 x10^9/L in this population, though 110 (as 10^4/uL) would fit too.
        # Magnitudes only decide when the model's unit cannot hold the values.
        others = [u.name for u in reg.units.values() if u.dimension == target.dimension and u.name != target.name
                  and lo <= col.median * reg.linear(u.name, target.name)[0] + reg.linear(u.name, target.name)[1] <= hi]
        p.unit = target.name
        p.unit_evidence = (f"no unit in the header; median {col.median:g} fits {spec.name}'s range "
                           f"{spec.min}-{spec.max} in the model's unit" +
                           (f" (check: as {', '.join(others[:3])} it would fit too)" if others else ""))
        return
    best: tuple[float, str] | None = None
    for u in reg.units.values():
        if u.dimension != target.dimension:
            continue
        a, b = reg.linear(u.name, target.name)
        x = col.median * a + b
        if lo <= x <= hi:
            # prefer the unit that puts the median nearest the middle of the range (log scale for
            # positive ranges), and the CDM's own unit on a tie
            mid = math.sqrt(max(lo, 1e-9) * hi) if lo > 0 else (lo + hi) / 2
            dist = abs(math.log(max(x, 1e-9) / mid)) if lo > 0 else abs(x - mid) / (hi - lo)
            dist -= 1e-6 if u.name == target.name else 0
            if best is None or dist < best[0]:
                best = (dist, u.name)
    if best is not None:
        p.unit = best[1]
        p.unit_evidence = f"median {col.median:g} fits {spec.name}'s range {spec.min}-{spec.max} best as {best[1]}"
