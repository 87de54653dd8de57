"""The normalized form of a mapping, and what the mapping language knows about the CDM.

The CDM-specific roles (which table holds measurements and in which columns; which center
convention fills which column) are declared under `mapping:` in `schemas/tables/<table>.yaml`
and read here; the mapping code itself names no CDM table or column.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..cdm import Catalog


@dataclass
class ValueMap:
    exact: dict[str, str | None] = field(default_factory=dict)  # casefolded key -> target
    written: list[tuple[str, str | None]] = field(default_factory=list)  # (key as written, target), in order
    patterns: list[tuple[str, str | None]] = field(default_factory=list)  # (regex, target or $-template)
    default: str | None = None
    has_default: bool = False

    def targets(self) -> list[str | None]:
        out = list(self.exact.values()) + [t for _, t in self.patterns if t is None or "$" not in t]
        if self.has_default:
            out.append(self.default)
        return out


@dataclass
class ColumnMap:
    cdm: str
    column: str | None = None
    constant: Any = None
    is_constant: bool = False
    values: ValueMap | None = None
    unit: str | None = None
    formats: list[str] | None = None
    decimal: str = "."
    thousands: str | None = None
    below_lod: list[str] | None = None
    time_column: str | None = None
    unmapped: str = "keep"
    description: str | None = None  # what the column holds, in words (a REDCap field's label)


@dataclass
class SourceBlock:
    table: str
    where: str
    file: str
    fmt: str | None
    reader_options: dict[str, Any]
    columns: dict[str, ColumnMap]
    unpivot: dict[str, ColumnMap] | None
    rows: dict[str, Any] | None
    null_values: list[str]
    date_formats: list[str] | None
    timestamp_formats: list[str] | None
    units_by_analyte: dict[str, str]

    def source_columns(self) -> list[str]:
        """Every source column the block reads, in order, without repeats."""
        names = [cm.column for cm in self.columns.values() if cm.column]
        names += [cm.time_column for cm in self.columns.values() if cm.time_column]
        names += [cm.column for cm in (self.unpivot or {}).values() if cm.column]
        if self.rows:
            names.append(str(self.rows["column"]))
        return list(dict.fromkeys(names))


@dataclass
class Mapping:
    path: Path
    center_id: str | None
    blocks: list[SourceBlock]
    conventions: dict[str, Any]
    problems: list[dict[str, str]]

    def tables(self) -> list[str]:
        return list(dict.fromkeys(b.table for b in self.blocks))


@dataclass(frozen=True)
class Measurement:
    """A table of measurements: one analyte, value, unit and below-the-limit flag per row."""

    table: str
    analyte: str
    value: str
    unit: str
    below_lod: str
    canonical_units: dict[str, str]


@dataclass(frozen=True)
class Convention:
    """A center-wide convention that fills a CDM column (`fills`) of `table`."""

    name: str
    table: str
    fills: str
    when: str | None = None  # filled only on rows where this column is filled
    multiply: str | None = None  # fills = this column x the convention's value ...
    by: str | None = None  # ... looked up by this column's code (or one value for all)


@dataclass(frozen=True)
class Roles:
    measurement: Measurement | None
    conventions: dict[str, Convention]

    def for_table(self, table: str) -> list[Convention]:
        return [c for c in self.conventions.values() if c.table == table]

    def is_measurement(self, table: str) -> bool:
        return self.measurement is not None and self.measurement.table == table


# A language-level convention: the prefixes that mark a measurement below its limit.
BELOW_LOD = "below_lod"


def roles(catalog: Catalog) -> Roles:
    """The CDM's roles for the mapping language, from each table's `mapping:` declaration."""
    measurement = None
    conventions: dict[str, Convention] = {}
    for name, spec in catalog.tables.items():
        decl = spec.extra.get("mapping") or {}
        m = decl.get("measurement")
        if m:
            measurement = Measurement(
                table=name, analyte=m["analyte_column"], value=m["value_column"], unit=m["unit_column"],
                below_lod=m["below_lod_column"],
                canonical_units={str(k): str(v) for k, v in (spec.extra.get("canonical_units") or {}).items()},
            )
        for conv, c in (decl.get("conventions") or {}).items():
            conventions[conv] = Convention(name=conv, table=name, fills=c["fills"], when=c.get("when"),
                                           multiply=c.get("multiply"), by=c.get("by"))
    return Roles(measurement=measurement, conventions=conventions)
