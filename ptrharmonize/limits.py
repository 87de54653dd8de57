"""Limits checked before work (schemas/limits.yaml), each overridable by `PTRH_<NAME>`.

They are sizes and shares, not clinical thresholds; they live in a declarative file so that a
registry that really receives 300,000-row sheets raises one number instead of editing code.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

import yaml

from .paths import schemas_dir

DEFAULTS: dict[str, Any] = {
    "max_sheet_cells": 20_000_000,
    "max_sheet_rows": 1_048_576,
    "max_sheet_columns": 16_384,
    "max_yaml_aliases": 200,
    "max_yaml_expanded_nodes": 200_000,
    "max_shrink_share": 0.5,
    "center_id_pattern": r"^[^\W_][\w.-]{0,39}$",
    "column_issue_min_rows": 20,
    "reader_max_memory_mb": 8192.0,
    "reader_max_seconds": 600.0,
    "missing_block_memory_mb": 700.0,
}


@lru_cache(maxsize=1)
def _file_limits() -> dict[str, Any]:
    path = schemas_dir() / "limits.yaml"
    if not path.is_file():
        return {}
    with path.open(encoding="utf-8") as fh:
        doc = yaml.safe_load(fh) or {}
    return {k: v for k, v in doc.items() if k in DEFAULTS}


def limit(name: str) -> Any:
    """The limit `name`: `PTRH_<NAME>` from the environment, else schemas/limits.yaml, else the default."""
    default = DEFAULTS[name]
    env = os.environ.get("PTRH_" + name.upper())
    value = env if env not in (None, "") else _file_limits().get(name, default)
    if isinstance(default, str):
        return str(value)
    try:
        return type(default)(float(value)) if isinstance(default, int) else float(value)
    except (TypeError, ValueError):
        from .errors import UserError

        raise UserError(f"limit {name}: '{value}' is not a number (PTRH_{name.upper()} or schemas/limits.yaml)") from None
