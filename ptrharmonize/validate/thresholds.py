"""The thresholds file: a data manager's tolerances per rule, optionally per center.

CSV with columns `rule_id, center_id, threshold` (center_id may be empty: all centers), or YAML
`{rule_id: threshold}` / a list of `{rule_id, center_id, threshold}`. A threshold is a fraction
of the checked rows (< 1), a count of rows (>= 1), or a percentage written '2%'.
"""

from __future__ import annotations

import csv
from pathlib import Path

import yaml

from .result import parse_threshold

Thresholds = dict[tuple[str, str | None], float]


class ThresholdsError(ValueError):
    pass


def load_thresholds(path: Path, known_rules: set[str] | None = None) -> Thresholds:
    path = Path(path)
    if not path.is_file():
        raise ThresholdsError(f"{path}: thresholds file not found")
    rows: list[dict[str, str]] = []
    if path.suffix.lower() in (".yaml", ".yml"):
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if isinstance(doc, dict):
            rows = [{"rule_id": k, "center_id": "", "threshold": v} for k, v in doc.items()]
        elif isinstance(doc, list):
            rows = doc
        else:
            raise ThresholdsError(f"{path}: expected a mapping or a list of entries")
    else:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            rows = list(csv.DictReader(fh))
    out: Thresholds = {}
    for i, r in enumerate(rows, start=2):
        rule = str(r.get("rule_id") or "").strip()
        if not rule:
            raise ThresholdsError(f"{path}, row {i}: rule_id is empty")
        if known_rules is not None and rule not in known_rules:
            raise ThresholdsError(f"{path}, row {i}: unknown rule id '{rule}'")
        try:
            value = parse_threshold(r.get("threshold"))
        except (TypeError, ValueError):
            raise ThresholdsError(f"{path}, row {i}, column 'threshold': not a number: {r.get('threshold')!r}") from None
        if value < 0:
            raise ThresholdsError(f"{path}, row {i}, column 'threshold': must be >= 0")
        center = (str(r.get("center_id") or "").strip()) or None
        out[(rule, center)] = value
    return out
