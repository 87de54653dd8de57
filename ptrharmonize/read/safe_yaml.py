"""YAML from outside (mappings, thresholds, configs) loaded with its size bounded before use.

A safe loader still expands aliases: nine nested levels of ten `*ref`s are a 7 KB file whose
documents hold a billion nodes once anything walks them (issue 23: 2.2 GB). The loader here
counts alias nodes while it composes, then measures the document as it would be with every
alias expanded (memoised, so measuring costs the size of the file, not of the expansion), and
refuses either above `schemas/limits.yaml` (`max_yaml_aliases`, `max_yaml_expanded_nodes`)
before a single Python object is constructed. Limit hits are `ReadError`s naming the file: exit 2.
"""

from __future__ import annotations

from typing import IO, Any

import yaml

from ..limits import limit
from . import ReadError


class _Limited:
    """Mixin for a yaml Loader: alias count and expanded size capped at compose time."""

    _ptrh_aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:  # noqa: D401 - yaml's hook
        if self.check_event(yaml.AliasEvent):  # type: ignore[attr-defined]
            self._ptrh_aliases += 1
            cap = int(limit("max_yaml_aliases"))
            if self._ptrh_aliases > cap:
                raise _TooBig(f"the file uses more than {cap:,} YAML aliases (*name); write the values out "
                              "(limit max_yaml_aliases)")
        return super().compose_node(parent, index)  # type: ignore[misc]

    def get_single_node(self) -> Any:
        node = super().get_single_node()  # type: ignore[misc]
        if node is not None:
            cap = int(limit("max_yaml_expanded_nodes"))
            n = expanded_size(node, cap)
            if n > cap:
                raise _TooBig(f"with its aliases expanded the file would hold more than {cap:,} values; "
                              "write it without nested aliases (limit max_yaml_expanded_nodes)")
        return node


class _TooBig(Exception):
    pass


def expanded_size(root: yaml.Node, cap: int) -> int:
    """Nodes of the document with every alias expanded (a shared node counted at each use);
    stops counting past `cap`. A node that contains itself counts as past the cap."""
    memo: dict[int, int] = {}
    busy: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in memo:
            return memo[key]
        if key in busy:
            return cap + 1  # recursive alias: infinite once expanded
        busy.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            for child in node.value:
                total += size(child)
                if total > cap:
                    break
        elif isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                total += size(k) + size(v)
                if total > cap:
                    break
        busy.discard(key)
        memo[key] = min(total, cap + 1)
        return memo[key]

    return size(root)


_LIMITED: dict[type, type] = {}


def limited(loader: type) -> type:
    """`loader` (a yaml SafeLoader subclass) with the limits above."""
    if loader not in _LIMITED:
        _LIMITED[loader] = type("Limited" + loader.__name__, (_Limited, loader), {})
    return _LIMITED[loader]


def load(stream: IO[str] | str, display: str, loader: type = yaml.SafeLoader) -> Any:
    """Parse one YAML document with `loader` and the limits; ReadError naming `display` when over."""
    try:
        return yaml.load(stream, Loader=limited(loader))  # noqa: S506 - a SafeLoader subclass
    except _TooBig as exc:
        raise ReadError(display, message=str(exc)) from None
    except RecursionError:
        raise ReadError(display, message="the YAML is nested too deeply to be a mapping or a configuration") from None
