"""The mapping package stays small and simple: one job per module, short functions, low
cyclomatic complexity (measured with radon, as issue #25 asks), and no CDM table or column
named in its code (those roles are read from schemas/)."""

from __future__ import annotations

import re
from pathlib import Path

from radon.complexity import cc_visit
from radon.raw import analyze

import ptrharmonize.mapping as mapping_pkg
from ptrharmonize.cdm import load_catalog
from ptrharmonize.mapping import language

PACKAGE = Path(mapping_pkg.__file__).parent
MODULES = sorted(PACKAGE.glob("*.py"))
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80
MAX_COMPLEXITY = 20


def _blocks():
    for path in MODULES:
        for block in cc_visit(path.read_text(encoding="utf-8")):
            yield path.name, block
            for inner in getattr(block, "methods", []):  # classes: their methods
                yield path.name, inner


def test_the_package_has_modules() -> None:
    assert PACKAGE.is_dir() and len(MODULES) >= 8, MODULES


def test_no_module_over_400_lines() -> None:
    long = {p.name: analyze(p.read_text(encoding="utf-8")).loc for p in MODULES}
    assert all(n <= MAX_MODULE_LINES for n in long.values()), long


def test_no_function_over_80_lines_or_complexity_20() -> None:
    seen = 0
    for module, block in _blocks():
        seen += 1
        lines = block.endline - block.lineno + 1
        assert lines <= MAX_FUNCTION_LINES, f"{module}:{block.name} has {lines} lines"
        assert block.complexity <= MAX_COMPLEXITY, f"{module}:{block.name} has complexity {block.complexity}"
    assert seen > 30  # the measure looked at the functions


def test_no_cdm_table_or_column_named_in_the_code() -> None:
    """CDM-specific knowledge comes from schemas/ (`mapping:` in the table files)."""
    cat = load_catalog()
    names = set(cat.table_names)
    for t in cat.tables.values():
        names |= set(t.column_names)
    # Keys of the mapping language itself (`unit:`, `below_lod:`, `center_id:`) share a name
    # with a CDM column; they are the language's words, not knowledge of the CDM.
    names -= {"center_id", *language.COLUMN_KEYS, *language.SOURCE_KEYS, *language.TOP_KEYS, *language.PATTERN_TARGET_KEYS}
    for path in MODULES:
        text = path.read_text(encoding="utf-8")
        code = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
        literals = set(re.findall(r"""["']([a-z_0-9]+)["']""", code))
        assert not (literals & names), f"{path.name} names {sorted(literals & names)}"
