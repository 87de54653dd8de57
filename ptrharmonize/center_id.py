"""A center id is text: a code checked against a pattern, in Unicode NFC.

It names the center's rows in the store, files of the QA report and lines of every table, so
it must be the same code however it was typed: `0123` in a mapping is the text `0123` (YAML
would read it as the octal number 83, so an unquoted number is refused), `Zürich` with a
combining diaeresis is the same center as with a precomposed `ü` (NFC), and `MK[/]1` or
`T09'); DROP ...` are not codes at all (schemas/limits.yaml `center_id_pattern`).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from .limits import limit


def center_id_problem(value: Any) -> tuple[str | None, str | None]:
    """(the center id as NFC text, None) or (None, why it is not acceptable)."""
    if value is None:
        return None, None
    if isinstance(value, bool) or not isinstance(value, str):
        return None, (f"center_id must be text: write it in quotes (center_id: \"{value}\"); unquoted, "
                      "YAML reads it as a number (0123 becomes 83)")
    text = unicodedata.normalize("NFC", value.strip())
    if not re.fullmatch(limit("center_id_pattern"), text):
        return None, ("center_id must be a code of letters, digits, '.', '_' or '-' (at most 40, starting "
                      "with a letter or digit; schemas/limits.yaml center_id_pattern)")
    return text, None


def check_center_id(value: Any, where: str) -> str | None:
    """The center id as NFC text; UserError naming `where` when it is not an acceptable code."""
    from .errors import UserError

    text, why = center_id_problem(value)
    if why:
        raise UserError(f"{where}: {why}")
    return text
