"""A catalog file read with its YAML node marks, and its problems, each naming the file, the
line and the key (`Problem`); `CatalogError` is the exit 2 that lists them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ..errors import UserError

MAX_SHOWN = 8  # problems named in the one-line message of CatalogError


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        where = self.file + (f", line {self.line}" if self.line else "")
        return f"{where}, key '{self.key}': {self.message}" if self.key else f"{where}: {self.message}"


class CatalogError(UserError):
    """The catalog under schemas/ does not follow the catalog language (exit 2)."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        shown = "; ".join(str(p) for p in problems[:MAX_SHOWN])
        more = f" (and {len(problems) - MAX_SHOWN} more: ptrh schema check lists them)" if len(problems) > MAX_SHOWN else ""
        super().__init__(f"the rule catalog cannot be used: {shown}{more}")


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: ~10x faster, same marks


class _Doc:
    """A YAML file's data and node tree, to give a line for a path of keys and indices."""

    def __init__(self, path: Path, label: str) -> None:
        self.path, self.label = path, label
        text = path.read_text(encoding="utf-8")
        loader = _LOADER(text)
        try:
            self.node = loader.get_single_node()
            self.data = loader.construct_document(self.node) if self.node is not None else None
        finally:
            loader.dispose()

    def line(self, loc: tuple[Any, ...], at_key: bool = False) -> int | None:
        node, found = self.node, None
        for part in loc:
            if isinstance(node, yaml.MappingNode):
                hit = next(((k, v) for k, v in node.value if k.value == part), None)
                if hit is None:
                    break
                found, node = hit[0], hit[1]
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
                node = found = node.value[part]
            else:
                break
        target = found if at_key and found is not None else (node if node is not None else found)
        return target.start_mark.line + 1 if target is not None else None

    def problem(self, loc: tuple[Any, ...], message: str, key: str | None = None, at_key: bool = False) -> Problem:
        name = key if key is not None else next((str(p) for p in reversed(loc) if isinstance(p, str)), "")
        return Problem(self.label, self.line(loc, at_key), name, message)


def _pydantic_problems(doc: _Doc, exc: ValidationError, prefix: tuple[Any, ...] = ()) -> list[Problem]:
    out = []
    for e in exc.errors():
        loc = prefix + tuple(p for p in e["loc"] if not (isinstance(p, str) and p.startswith(("function-", "literal["))))
        if e["type"] == "extra_forbidden":
            msg = "unknown key (a typo? the catalog language has no such attribute here)"
            out.append(doc.problem(loc, msg, at_key=True))
        elif e["type"] == "missing":
            out.append(doc.problem(loc[:-1], f"required key is missing: {loc[-1]}", key=str(loc[-1])))
        else:
            value = e.get("input")
            shown = f"{value!r}: " if isinstance(value, str | int | float | bool) else ""
            out.append(doc.problem(loc, shown + e["msg"]))
    return out


def _sql_line(doc: _Doc, loc: tuple[Any, ...], p: Problem, why: str) -> Problem:
    """DuckDB names the line of the query (`LINE 3:`): in a block scalar (`sql: |`), that is the
    third line after the key."""
    m = re.search(r"LINE (\d+):", why)
    node = doc.node
    for part in loc:
        node = (next((v for k, v in node.value if k.value == part), None) if isinstance(node, yaml.MappingNode)
                else node.value[part] if isinstance(node, yaml.SequenceNode) else None)
        if node is None:
            return p
    if m and isinstance(node, yaml.ScalarNode) and node.style in ("|", ">") and p.line:
        return Problem(p.file, p.line + int(m.group(1)), p.key, p.message)
    return p
