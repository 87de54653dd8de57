"""Help as users read it: paragraphs that flow, and argument types as words.

Docstrings are wrapped at 100 columns in the source; Typer's rich help keeps those line breaks,
so a terminal of another width showed paragraphs broken mid-sentence. Typer also prints a
parameter's Python annotation (`<list[Path]>`) where click prints a word (`PATH...`). The root
group below rewrites both once, for every command and sub-command, when the CLI is built.
"""

from __future__ import annotations

import re
import sys
from enum import Enum
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from typer.core import TyperGroup

_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


def reflow(text: str | None) -> str | None:
    """Join the lines of each paragraph; keep the blank lines between paragraphs. A paragraph
    that starts with click's no-rewrap marker (\\b) or is a list ("- ") keeps its lines."""
    if not text:
        return text
    import inspect

    out = []
    for para in _PARAGRAPH_BREAK.split(inspect.cleandoc(text)):
        lines = para.splitlines()
        if para.startswith("\b") or any(ln.lstrip().startswith(("- ", "* ")) for ln in lines):
            out.append(para)
        else:
            out.append(" ".join(ln.strip() for ln in lines))
    return "\n\n".join(out)


def type_word(param: Any) -> str | None:
    """The metavar of a parameter as a word: PATH, TEXT, INTEGER, with ... when it repeats; None
    for a flag (it takes no value)."""
    annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    repeats = False
    if get_origin(annotation) is list:
        annotation, repeats = get_args(annotation)[0], True
    if annotation is None or annotation is bool:
        return None
    if get_origin(annotation) is Literal:
        word = "[" + "|".join(map(str, get_args(annotation))) + "]"
    elif isinstance(annotation, type) and issubclass(annotation, Enum):
        word = "[" + "|".join(str(m.value) for m in annotation) + "]"
    else:
        word = _WORDS.get(annotation, getattr(annotation, "__name__", "value").upper())
    return word + ("..." if repeats or getattr(param, "multiple", False) else "")


_WORDS = {Path: "PATH", str: "TEXT", int: "INTEGER", float: "NUMBER"}


def tidy(command: Any) -> None:
    """Rewrite help texts and metavars of a command and everything under it."""
    command.help = reflow(command.help)
    if getattr(command, "short_help", None):
        command.short_help = reflow(command.short_help)
    for param in command.params:
        if getattr(param, "help", None):
            param.help = reflow(param.help)
        word = type_word(param)
        # The type column of the help (Typer prints the annotation there, `<list[Path]>`).
        param.display_type_rich = lambda ctx, word=word: word or None
        if param.metavar is None and getattr(param, "param_type_name", "") == "argument":
            param.metavar = (param.name or "value").upper()
        elif param.metavar is None and word:
            param.metavar = word
    for sub in getattr(command, "commands", {}).values():
        tidy(sub)


class TidyGroup(TyperGroup):
    """The root group: tidies its whole tree (options added after it was built included) before
    it parses or prints help."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        tidy(self)
        try:
            return super().main(*args, **kwargs)
        except SystemExit as exc:
            # click turns a closed pipe (`ptrh schema | head`) into exit 1, after wrapping stdout
            # in its PacifyFlushWrapper; the reader leaving early is not an error.
            if exc.code == 1 and type(sys.stdout).__name__ == "PacifyFlushWrapper":
                raise SystemExit(0) from None
            raise
