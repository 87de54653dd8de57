"""The common data model, loaded from `schemas/` into typed objects.

Everything downstream (readers, the validation engine, the store's DDL, the QA report) asks
this module what a table looks like, so a column is declared in exactly one place.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from .errors import UserError
from .paths import schemas_dir

# CDM type -> polars dtype and DuckDB type. The only place these correspondences live.
POLARS_TYPES: dict[str, pl.DataType] = {
    "text": pl.Utf8(),
    "code": pl.Utf8(),
    "integer": pl.Int64(),
    "decimal": pl.Float64(),
    "boolean": pl.Boolean(),
    "date": pl.Date(),
    "timestamp": pl.Datetime("us"),
}
DUCKDB_TYPES: dict[str, str] = {
    "text": "VARCHAR",
    "code": "VARCHAR",
    "integer": "BIGINT",
    "decimal": "DOUBLE",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
}
TYPE_TEXT: dict[str, str] = {
    "text": "text",
    "code": "a code",
    "integer": "a whole number",
    "decimal": "a number (decimal point, no units)",
    "boolean": "true or false",
    "date": "a date written YYYY-MM-DD",
    "timestamp": "a date and time written YYYY-MM-DDTHH:MM:SS",
}

# Provenance columns carried by every frame from reader to store.
FILE_COL = "_file"
ROW_COL = "_row"


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    type: str
    label: str
    unit: str | None = None
    codes: tuple[str, ...] | None = None
    min: float | None = None
    max: float | None = None
    min_exclusive: bool = False
    required: bool = False
    unique_within_center: bool = False
    # Every attribute as written in tables/<table>.yaml: a check type reads the ones it declares
    # (validate/checks/), so a new check needs no field here.
    attrs: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def polars_type(self) -> pl.DataType:
        return POLARS_TYPES[self.type]

    @property
    def duckdb_type(self) -> str:
        return DUCKDB_TYPES[self.type]


@dataclass(frozen=True)
class TableSpec:
    name: str
    description: str
    columns: tuple[ColumnSpec, ...]
    required_table: bool = False
    key: tuple[str, ...] = ()
    references: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> ColumnSpec:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name}.{name}")


@dataclass(frozen=True)
class Catalog:
    tables: dict[str, TableSpec]
    check_types: dict[str, dict[str, Any]]
    rules: tuple[dict[str, Any], ...]
    definitions: dict[str, Any]
    phi: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    root: str | None = field(default=None, compare=False)  # the schemas folder it was loaded from

    @property
    def table_names(self) -> list[str]:
        return list(self.tables)


TABLE_ORDER = [
    "patients",
    "treatments",
    "transfusions",
    "labs",
    "crs_assessments",
    "bleeding_events",
    "medications",
    "infections",
    "outcomes",
]


class CatalogError(UserError):
    """A file of the model that cannot be read: names the file and line (shown as one line, exit 2)."""


# libyaml when the wheel has it (~10x faster than the pure-Python parser), the same documents.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _load_yaml(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as fh:
            return yaml.load(fh, Loader=_LOADER)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise CatalogError(f"{where}: not valid YAML ({problem})") from None
    except FileNotFoundError:
        raise CatalogError(f"{path}: missing from the model folder {path.parent}") from None
    except (OSError, UnicodeError) as exc:
        raise CatalogError(f"{path}: cannot be read ({exc})") from None


def _table_from_yaml(doc: dict[str, Any]) -> TableSpec:
    cols = []
    for c in doc["columns"]:
        cols.append(
            ColumnSpec(
                name=c["name"],
                type=c["type"],
                label=c.get("label", c["name"]),
                unit=c.get("unit"),
                codes=tuple(c["codes"]) if c.get("codes") else None,
                min=c.get("min"),
                max=c.get("max"),
                min_exclusive=bool(c.get("min_exclusive", False)),
                required=bool(c.get("required", False)),
                unique_within_center=bool(c.get("unique_within_center", False)),
                attrs=dict(c),
            )
        )
    known = {"table", "description", "columns", "required_table", "key", "references"}
    return TableSpec(
        name=doc["table"],
        description=doc.get("description", ""),
        columns=tuple(cols),
        required_table=bool(doc.get("required_table", False)),
        key=tuple(doc.get("key", ())),
        references=doc.get("references"),
        extra={k: v for k, v in doc.items() if k not in known},
    )


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Merge a config override into the defaults, key by key, without mutating either."""
    out = copy.deepcopy(base)
    for k, v in (override or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


@lru_cache(maxsize=4)
def _load(root: str) -> Catalog:
    base = Path(root)
    tables: dict[str, TableSpec] = {}
    for name in TABLE_ORDER:
        path = base / "tables" / f"{name}.yaml"
        tables[name] = _table_from_yaml(_load_yaml(path))
    # Tables a registry adds beyond v1 are picked up too.
    for path in sorted((base / "tables").glob("*.yaml")):
        if path.stem not in tables:
            tables[path.stem] = _table_from_yaml(_load_yaml(path))
    return Catalog(
        tables=tables,
        # Optional: a registry's own messages, severities or categories for check types
        # (their defaults are declared by the check modules, validate/checks/).
        check_types=(_load_yaml(base / "check_types.yaml") or {}) if (base / "check_types.yaml").exists() else {},
        rules=tuple(_load_yaml(base / "rules.yaml") or ()),
        definitions=_load_yaml(base / "definitions.yaml"),
        phi=_load_yaml(base / "phi.yaml") if (base / "phi.yaml").exists() else {},
        root=str(base),
    )


def load_catalog(root: Path | None = None) -> Catalog:
    return _load(str(root or schemas_dir()))


def load_definitions(override_file: Path | None = None) -> dict[str, Any]:
    """The clinical definitions, with an analyst's `--config` file merged over the defaults."""
    defs = load_catalog().definitions
    if override_file is None:
        return copy.deepcopy(defs)
    return deep_merge(defs, _load_yaml(Path(override_file)) or {})
