"""Text written into a file a spreadsheet opens (CSV, Excel): never run as a formula.

Shared by every writer of such files (the issue lists, the analyses' tables), below all of
them, so none has to import another's module for it.
"""

from __future__ import annotations

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def neutralize_formula(value: str | None) -> str | None:
    """Prefix text a spreadsheet would run as a formula (`=HYPERLINK(...)`) with a quote (OWASP)."""
    if value is None or not value.startswith(FORMULA_START) or _is_number(value):
        return value
    return "'" + value
