"""The rule catalog as data: rules generated from the check types the columns of
`schemas/tables/*.yaml` ask for, the entries of `rules.yaml`, and the identifier rules of
`phi.yaml`.

Every rule has a stable id, a table, a severity, a Kahn-framework category, a threshold and a
message. The engine evaluates rules through their check type (`validate/checks/`); it never
invents an id or a message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..cdm import TYPE_TEXT, Catalog, ColumnSpec, TableSpec
from .checks import Check, Evaluation, Query, Target, fmt_num, registry


@dataclass(frozen=True)
class Rule:
    id: str
    table: str
    check: str                    # the check type (validate/checks/<module>.py), phi_column or phi_value
    severity: str
    category: str
    message: str
    engine: str                   # polars | duckdb | structure | phi: what evaluates it
    column: str | None = None     # the column reported in the issue table
    columns: tuple[str, ...] = () # columns the rule needs (for not_applicable)
    threshold: float = 0.0
    source: str | None = None
    spec: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    level: str = "rule"           # column | rule | structure | phi
    target: Target | None = field(default=None, hash=False, compare=False)

    @property
    def check_type(self) -> Check:
        return registry()[self.check]

    def evaluation(self) -> Evaluation:
        """The polars evaluation of its check type (raises for a rule that does not compile)."""
        return self.check_type.polars(self.target)

    def query(self) -> Query:
        return self.check_type.duckdb(self.target)


def _override(catalog: Catalog, check: Check) -> dict[str, Any]:
    """A check type's severity, category and message, with a registry's check_types.yaml over
    the defaults the module declares."""
    own = (catalog.check_types or {}).get(check.name) or {}
    return {"severity": own.get("severity", check.severity), "category": own.get("category", check.category),
            "message": own.get("message", check.message)}


def _column_message(template: str, check: Check, target: Target) -> str:
    col, table = target.column, target.table
    fields = {f"{k}": (fmt_num(v) if isinstance(v, int | float) and not isinstance(v, bool) else v)
              for k, v in col.attrs.items()}
    fields.update(table=table.name, column=col.name, label=col.label, unit=col.unit or "",
                  type_text=TYPE_TEXT[col.type])
    if check.message_fields is not None:
        fields.update(check.message_fields(target))
    return template.format_map(fields).replace("  ", " ").replace(" .", ".")


# The order column rules have always had within a column (ids are stable; the order only
# decides the order of rule results); a new check type comes after these.
_COLUMN_ORDER = ("required", "type", "codes", "range", "unique", "references")


def _column_order(check: Check) -> tuple[int, str]:
    rank = _COLUMN_ORDER.index(check.name) if check.name in _COLUMN_ORDER else len(_COLUMN_ORDER)
    return rank, check.name


def column_rules(catalog: Catalog) -> list[Rule]:
    """One rule per (column, check type it asks for), in the order of the columns."""
    checks = sorted((c for c in registry().values() if c.level == "column"), key=_column_order)
    rules: list[Rule] = []
    for table in catalog.tables.values():
        for col in table.columns:
            for check in checks:
                if not check.applies(table, col):
                    continue
                target = Target(table, col, col.attrs)
                meta = _override(catalog, check)
                rules.append(
                    Rule(
                        id=f"{table.name}.{col.name}.{check.name}",
                        table=table.name,
                        check=check.name,
                        severity=meta["severity"],
                        category=meta["category"],
                        message=_column_message(meta["message"], check, target),
                        engine=check.engine,
                        column=col.name,
                        columns=check.needs(target) if check.needs else (col.name,),
                        source=f"CDM v1 (schemas/tables/{table.name}.yaml)",
                        spec=dict(col.attrs),
                        level="column",
                        target=target,
                    )
                )
    return rules


def structural_rules(catalog: Catalog) -> list[Rule]:
    """Rules about files and headers: one per table (missing table/column, unknown column)."""
    reg = registry()
    out = []
    for table in catalog.tables.values():
        for name in ("missing_table", "missing_column", "unknown_column"):
            if name == "missing_table" and not table.required_table:
                continue
            meta = _override(catalog, reg[name])
            out.append(
                Rule(
                    id=f"{table.name}.{name}",
                    table=table.name,
                    check=name,
                    severity=meta["severity"],
                    category=meta["category"],
                    message=meta["message"],
                    engine="structure",
                    source="CDM v1",
                    level="structure",
                )
            )
    return out


def rule_check_name(entry: dict[str, Any]) -> str:
    """The check type of a rules.yaml entry: `check:`, else the custom expression of its engine."""
    if entry.get("check"):
        return str(entry["check"])
    return "query" if entry.get("engine") == "duckdb" else "expression"


def catalog_rules(catalog: Catalog) -> list[Rule]:
    reg = registry()
    out = []
    for r in catalog.rules:
        check = reg[rule_check_name(r)]
        table = catalog.tables[r["table"]]
        target = Target(table, None, r)
        columns = tuple(r.get("columns") or (check.needs(target) if check.needs else ()))
        out.append(
            Rule(
                id=r["id"],
                table=r["table"],
                check=check.name,
                severity=r["severity"],
                category=r.get("category") or check.category,
                message=r["message"].strip(),
                engine=check.engine,
                column=r.get("report_column") or (columns or (None,))[0],
                columns=columns,
                threshold=float(r.get("threshold", 0) or 0),
                source=r.get("source"),
                spec=r,
                level="rule",
                target=target,
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
                        source=doc.get("source"), spec=col, level="phi"))
    for v in doc.get("values", []):
        out.append(Rule(id=v["id"], table=PHI_TABLE, check="phi_value", severity=v["severity"],
                        category=v["category"], message=v["message"], engine="phi",
                        source=doc.get("source"), spec=v, level="phi"))
    return out


def identifier_rule_ids(catalog: Catalog) -> frozenset[str]:
    """The ids of the direct-identifier rules (phi.yaml): their values are never shown and their
    threshold is always 0. Found by what the rules are, never by an id prefix."""
    return frozenset(r.id for r in phi_rules(catalog))


def all_rules(catalog: Catalog) -> list[Rule]:
    rules = structural_rules(catalog) + column_rules(catalog) + catalog_rules(catalog) + phi_rules(catalog)
    ids = [r.id for r in rules]
    dupes = {i for i in ids if ids.count(i) > 1}
    if dupes:
        raise ValueError(f"duplicate rule ids in the catalog: {sorted(dupes)}")
    return rules


def structural_message(rule: Rule, catalog: Catalog, column: str) -> str:
    table: TableSpec = catalog.tables[rule.table]
    label = column
    c: ColumnSpec
    for c in table.columns:
        if c.name == column:
            label = c.label
    return rule.message.format(table=rule.table, column=column, label=label)
