"""The unit registry, loaded from `schemas/units.yaml`.

A unit has a dimension and a conversion to its dimension's base unit
(`base = value * factor + offset`); converting between two units of one dimension goes
through the base, so every factor is declared once, with its source, in the YAML file.

    >>> convert(pl.col("plt"), "/uL", "10^9/L")      # a polars expression
    >>> convert(15000.0, "/mm3", "x10^9/L")          # 15.0

Unknown units and conversions across dimensions raise `UnitError` with a message that names
the known spellings, so a mapping author can fix the declaration.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any, overload

import polars as pl

from .paths import schemas_dir


class UnitError(ValueError):
    """An unknown unit, or a conversion between units of different dimensions."""


@dataclass(frozen=True)
class Unit:
    name: str
    dimension: str
    factor: Fraction
    offset: Fraction = Fraction(0)
    aliases: tuple[str, ...] = ()
    source: str = ""


@dataclass(frozen=True)
class Registry:
    units: dict[str, Unit]
    dimensions: dict[str, dict[str, Any]]
    exact: dict[str, str]  # normalized spelling -> unit name
    folded: dict[str, set[str]]  # casefolded normalized spelling -> unit names

    def lookup(self, spelling: str) -> Unit:
        if spelling is None or not str(spelling).strip():
            raise UnitError("no unit given")
        key = normalize_spelling(str(spelling))
        if key in self.exact:
            return self.units[self.exact[key]]
        hits = self.folded.get(key.casefold(), set())
        if len(hits) == 1:
            return self.units[next(iter(hits))]
        if len(hits) > 1:
            raise UnitError(
                f"unit '{spelling}' is ambiguous ({' or '.join(sorted(hits))}); write it with its exact case"
            )
        raise UnitError(f"unknown unit '{spelling}'; known units: {', '.join(self.units)} (see schemas/units.yaml)")

    def known(self, spelling: str) -> bool:
        try:
            self.lookup(spelling)
        except UnitError:
            return False
        return True

    def linear(self, from_unit: str, to_unit: str) -> tuple[float, float]:
        """(scale, shift) such that value_in_to = value_in_from * scale + shift."""
        a = self.lookup(from_unit)
        b = self.lookup(to_unit)
        if a.dimension != b.dimension:
            raise UnitError(
                f"cannot convert '{from_unit}' ({a.dimension.replace('_', ' ')}) to '{to_unit}' "
                f"({b.dimension.replace('_', ' ')}): they measure different things"
            )
        if a.name == b.name:
            return 1.0, 0.0
        scale = a.factor / b.factor
        shift = (a.offset - b.offset) / b.factor
        return float(scale), float(shift)


_SUPERSCRIPT = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻", "0123456789-")


def normalize_spelling(s: str) -> str:
    """Fold the harmless differences in how a unit is written (see schemas/units.yaml)."""
    t = s.strip()
    t = t.replace("µ", "u").replace("μ", "u").replace("×", "x").replace("·", "").replace("℃", "degC").replace("℉", "degF")
    t = t.replace("°C", "degC").replace("°F", "degF").replace("º", "").replace("°", "")
    # Superscript exponents: 10⁹ -> 10^9, mm³ -> mm^3
    t = re.sub(r"([⁰¹²³⁴⁵⁶⁷⁸⁹⁻]+)", lambda m: "^" + m.group(1).translate(_SUPERSCRIPT), t)
    t = re.sub(r"\s+", "", t)
    t = t.replace("**", "^")
    t = re.sub(r"10[*eE](?=-?\d)", "10^", t)  # 10*9, 10E9 -> 10^9
    t = re.sub(r"^[xX*](?=10)", "", t)  # x10^9/L -> 10^9/L
    t = re.sub(r"(?<=[A-Za-z])\^(?=\d)", "", t)  # mm^3 -> mm3
    return t


def _exact(v: Any, unit: str) -> Fraction:
    """A YAML number or fraction text as an exact rational ("5/9", 0.45359237, 1.0e-6)."""
    try:
        return Fraction(str(v).strip())
    except (ValueError, ZeroDivisionError):
        raise UnitError(f"units.yaml: unit '{unit}' has a factor or offset that is not a number: {v!r}") from None


def _load(path: Path) -> Registry:
    from .cdm import _load_yaml  # one reader of the model's YAML (errors name file and line)

    doc = _load_yaml(path)
    dims = doc.get("dimensions", {})
    units: dict[str, Unit] = {}
    exact: dict[str, str] = {}
    folded: dict[str, set[str]] = {}
    for name, spec in doc["units"].items():
        name = str(name)
        if spec["dimension"] not in dims:
            raise UnitError(f"units.yaml: unit '{name}' has unknown dimension '{spec['dimension']}'")
        u = Unit(
            name=name,
            dimension=spec["dimension"],
            factor=_exact(spec["factor"], name),
            offset=_exact(spec.get("offset", 0), name),
            aliases=tuple(str(a) for a in spec.get("aliases") or ()),
            source=str(spec.get("source", "")),
        )
        units[name] = u
    for u in units.values():
        for spelling in (u.name, *u.aliases):
            key = normalize_spelling(spelling)
            other = exact.get(key)
            if other is not None and other != u.name:
                a, b = units[other], u
                if (a.dimension, a.factor, a.offset) != (b.dimension, b.factor, b.offset):
                    raise UnitError(f"units.yaml: spelling '{spelling}' names both '{other}' and '{u.name}'")
                continue
            exact[key] = u.name
            folded.setdefault(key.casefold(), set()).add(u.name)
    # Case-insensitive hits that are the same unit twice are not ambiguous.
    for k, names in folded.items():
        conv = {(units[n].dimension, units[n].factor, units[n].offset) for n in names}
        if len(conv) == 1 and len(names) > 1:
            folded[k] = {sorted(names)[0]}
    for d, spec in dims.items():
        if spec.get("base") not in units:
            raise UnitError(f"units.yaml: base unit of dimension '{d}' is not declared")
    return Registry(units=units, dimensions=dims, exact=exact, folded=folded)


@lru_cache(maxsize=4)
def _registry(path: str) -> Registry:
    return _load(Path(path))


def registry(path: Path | None = None) -> Registry:
    return _registry(str(path or schemas_dir() / "units.yaml"))


def lookup(spelling: str) -> Unit:
    return registry().lookup(spelling)


def is_known(spelling: str) -> bool:
    return registry().known(spelling)


def linear(from_unit: str, to_unit: str) -> tuple[float, float]:
    return registry().linear(from_unit, to_unit)


@overload
def convert(values: pl.Expr | str, from_unit: str, to_unit: str) -> pl.Expr: ...
@overload
def convert(values: pl.Series, from_unit: str, to_unit: str) -> pl.Series: ...
@overload
def convert(values: float | int, from_unit: str, to_unit: str) -> float: ...
@overload
def convert(values: list[float], from_unit: str, to_unit: str) -> list[float]: ...


def convert(values: Any, from_unit: str, to_unit: str) -> Any:
    """Convert `values` from one unit to another of the same dimension.

    An expression (or a column name) gives an expression; a Series a Series; a number a
    float; a list a list. Raises UnitError for an unknown unit or a dimension mismatch."""
    scale, shift = linear(from_unit, to_unit)
    if isinstance(values, str):
        values = pl.col(values)
    if isinstance(values, pl.Expr):
        expr = values.cast(pl.Float64)
        if scale != 1.0:
            expr = expr * scale
        if shift != 0.0:
            expr = expr + shift
        return expr
    if isinstance(values, pl.Series):
        return values.cast(pl.Float64) * scale + shift
    if isinstance(values, int | float):
        return float(values) * scale + shift
    return [None if v is None else float(v) * scale + shift for v in values]
