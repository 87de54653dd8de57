"""The rule catalog as data: generated column rules plus the cross-field rules of rules.yaml.

Every rule has a stable id, a table, a severity, a Kahn-framework category, a threshold and a
message. The engine evaluates rules; it never invents an id or a message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..cdm import TYPE_TEXT, Catalog, ColumnSpec, TableSpec

COLUMN_CHECKS = ("required", "type", "codes", "range", "unique", "references")


@dataclass(frozen=True)
class Rule:
    id: str
    table: str
    check: str                    # a check type of check_types.yaml, or 'custom'
    severity: str
    category: str
    message: str
    engine: str                   # column | polars | duckdb
    column: str | None = None     # the column reported in the issue table
    columns: tuple[str, ...] = () # columns the rule needs (for not_applicable)
    threshold: float = 0.0
    source: str | None = None
    spec: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


def _fmt_num(x: float | None) -> str:
    if x is None:
        return ""
    return f"{x:g}"


def _column_message(template: str, table: TableSpec, col: ColumnSpec) -> str:
    return template.format(
        table=table.name,
        column=col.name,
        label=col.label,
        min=_fmt_num(col.min) if col.min is not None else "-inf",
        max=_fmt_num(col.max) if col.max is not None else "+inf",
        unit=col.unit or "",
        codes=", ".join(col.codes or ()),
        type_text=TYPE_TEXT[col.type],
    ).replace("  ", " ").replace(" .", ".")


def column_rules(catalog: Catalog) -> list[Rule]:
    ct = catalog.check_types
    rules: list[Rule] = []
    for table in catalog.tables.values():
        for col in table.columns:
            wanted = []
            if col.required:
                wanted.append("required")
            if col.type not in ("text", "code"):
                wanted.append("type")
            if col.codes:
                wanted.append("codes")
            if col.min is not None or col.max is not None:
                wanted.append("range")
            if col.unique_within_center:
                wanted.append("unique")
            if col.name == "patient_id" and table.references:
                wanted.append("references")
            for check in wanted:
                t = ct[check]
                rules.append(
                    Rule(
                        id=f"{table.name}.{col.name}.{check}",
                        table=table.name,
                        check=check,
                        severity=t["severity"],
                        category=t["category"],
                        message=_column_message(t["message"], table, col),
                        engine="column",
                        column=col.name,
                        columns=(col.name,),
                        source=f"CDM v1 (schemas/tables/{table.name}.yaml)",
                        spec={"col": col},
                    )
                )
    return rules


def structural_rules(catalog: Catalog) -> list[Rule]:
    """Rules about files and headers: one per table (missing table/column, unknown column)."""
    ct = catalog.check_types
    out = []
    for table in catalog.tables.values():
        for check in ("missing_table", "missing_column", "unknown_column"):
            if check == "missing_table" and not table.required_table:
                continue
            t = ct[check]
            out.append(
                Rule(
                    id=f"{table.name}.{check}",
                    table=table.name,
                    check=check,
                    severity=t["severity"],
                    category=t["category"],
                    message=t["message"],
                    engine="structure",
                    source="CDM v1",
                )
            )
    return out


def catalog_rules(catalog: Catalog) -> list[Rule]:
    out = []
    for r in catalog.rules:
        out.append(
            Rule(
                id=r["id"],
                table=r["table"],
                check="custom",
                severity=r["severity"],
                category=r["category"],
                message=r["message"].strip(),
                engine=r["engine"],
                column=r.get("report_column") or (r.get("columns") or [None])[0],
                columns=tuple(r.get("columns", ())),
                threshold=float(r.get("threshold", 0) or 0),
                source=r.get("source"),
                spec=r,
            )
        )
    return out


PHI_TABLE = "*"  # identifier rules scan every table


def phi_rules(catalog: Catalog) -> list[Rule]:
    """Direct-identifier rules (schemas/phi.yaml). Their threshold is always 0: never tolerated."""
    doc = catalog.phi or {}
    out = []
    col = doc.get("columns")
    if col:
        out.append(Rule(id=col["id"], table=PHI_TABLE, check="phi_column", severity=col["severity"],
                        category=col["category"], message=col["message"], engine="phi",
                        source=doc.get("source"), spec=col))
    for v in doc.get("values", []):
        out.append(Rule(id=v["id"], table=PHI_TABLE, check="phi_value", severity=v["severity"],
                        category=v["category"], message=v["message"], engine="phi",
                        source=doc.get("source"), spec=v))
    return out


def all_rules(catalog: Catalog) -> list[Rule]:
    rules = structural_rules(catalog) + column_rules(catalog) + catalog_rules(catalog) + phi_rules(catalog)
    ids = [r.id for r in rules]
    dupes = {i for i in ids if ids.count(i) > 1}
    if dupes:
        raise ValueError(f"duplicate rule ids in the catalog: {sorted(dupes)}")
    return rules


def structural_message(rule: Rule, catalog: Catalog, column: str) -> str:
    table = catalog.tables[rule.table]
    label = column
    for c in table.columns:
        if c.name == column:
            label = c.label
    return rule.message.format(table=rule.table, column=column, label=label)
