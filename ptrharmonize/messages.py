"""The issue list's message catalog: `schemas/messages/<language>.yaml`, one file per language.

Messages are data, like the rules they explain (frictionless-py keeps its error texts the same
way: one catalog of templates keyed by error type). A key is a check type (`codes`, `required`,
...) or a rule id; the rule's own id wins. Each entry has a `message` for the person who fixes
the cell and, in the English catalog, a `hint` for the registry coordinator. A center's mapping
chooses the language (`language: nl`); a key the language lacks is shown in English, and a rule
no catalog knows keeps the message its own YAML gives. A registry folder (`ptrh init`) carries
its own copy under `schemas/messages/`, so a registry adds a language or rewords a message
without touching the package.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from .cdm import CatalogError, _load_yaml

FOLDER = "messages"
DEFAULT_LANGUAGE = "en"
TERM_SECTIONS = ("tables", "types", "units", "place")


def catalog_file(root: Path | str, language: str) -> Path:
    return Path(root) / FOLDER / f"{language}.yaml"


def languages(root: Path | str) -> list[str]:
    """The languages a model folder has a message catalog for."""
    folder = Path(root) / FOLDER
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def shape_problems(doc: Any, known: set[str] | None = None) -> list[tuple[tuple[Any, ...], str]]:
    """What is wrong with one catalog file, as (key path, problem): `messages` maps each key (a
    check type or rule id, when `known` is given) to {message, hint} templates; `terms` holds
    text or word lists. `ptrh schema check` reports them with their lines."""
    if not isinstance(doc, dict):
        return [((), "a message catalog is a mapping with `messages:` and `terms:`")]
    out: list[tuple[tuple[Any, ...], str]] = []
    out += [((k,), f"unknown key {k!r} (known: language, name, terms, messages)")
            for k in doc if k not in ("language", "name", "terms", "messages")]
    msgs = doc.get("messages") or {}
    if not isinstance(msgs, dict):
        return [*out, (("messages",), "must map each key to {message, hint}")]
    for key, entry in msgs.items():
        if known is not None and str(key) not in known:
            out.append((("messages", key), f"{key!r} is neither a check type nor a rule id of the catalog"))
        if not isinstance(entry, dict) or set(entry) - {"message", "hint"}:
            out.append((("messages", key), "must have `message` and optionally `hint` (text)"))
            continue
        for k, v in entry.items():
            why = _template_problem(v)
            if why:
                out.append((("messages", key, k), why))
    terms = doc.get("terms") or {}
    if not isinstance(terms, dict):
        return [*out, (("terms",), "must be a mapping")]
    for sec, words in terms.items():
        items = words.items() if isinstance(words, dict) else [("", words)]
        for w, v in items:
            why = _template_problem(v)
            if why:
                out.append((("terms", sec, w) if w else ("terms", sec), why))
    return out


def _template_problem(text: Any) -> str | None:
    if not isinstance(text, str):
        return "must be text"
    try:
        list(string.Formatter().parse(text))
    except ValueError as exc:
        return f"not a valid template ({exc})"
    return None


@lru_cache(maxsize=32)
def _load(path_text: str) -> dict[str, Any]:
    """One catalog file, checked (a malformed file is exit 2 naming it, before any data is read)."""
    path = Path(path_text)
    doc = _load_yaml(path)
    bad = shape_problems(doc)
    if bad:
        loc, why = bad[0]
        raise CatalogError(f"{path}: {'.'.join(str(p) for p in loc) or '(top)'}: {why}")
    return {"messages": doc.get("messages") or {}, "terms": doc.get("terms") or {}, "name": doc.get("name")}


def load(root: Path | str, language: str) -> dict[str, Any]:
    f = catalog_file(root, language)
    if not f.is_file():
        return {"messages": {}, "terms": {}, "name": None}
    return _load(str(f))


def untranslated(root: Path | str, language: str) -> list[str]:
    """Keys of the English catalog (messages and terms) that `language` does not translate."""
    en, other = load(root, DEFAULT_LANGUAGE), load(root, language)
    missing = [f"messages.{k}" for k, e in en["messages"].items()
               if "message" in e and "message" not in (other["messages"].get(k) or {})]
    for sec, words in en["terms"].items():
        mine = other["terms"].get(sec)
        if isinstance(words, dict):
            missing += [f"terms.{sec}.{w}" for w in words if not isinstance(mine, dict) or w not in mine]
        elif mine is None:
            missing.append(f"terms.{sec}")
    return missing


def language_problem(language: Any, root: Path | str) -> str | None:
    """Why a mapping's `language:` cannot be used, or None."""
    if language is None:
        return None
    if not isinstance(language, str) or not language.strip():
        return "`language` must be a language code such as en, nl or zh"
    if language not in languages(root):
        return (f"no message catalog for language '{language}' (schemas/messages/{language}.yaml); "
                f"messages will be in English. Known: {', '.join(languages(root))}")
    return None


class _Missing(dict):
    """Format fields: an unknown placeholder stays visible as written instead of failing."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


@dataclass
class Speaker:
    """Messages for one center: its language, English behind it."""

    root: Path
    language: str = DEFAULT_LANGUAGE
    _cats: list[dict[str, Any]] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        langs = [self.language] if self.language != DEFAULT_LANGUAGE else []
        self._cats = [load(self.root, lang) for lang in langs] + [load(self.root, DEFAULT_LANGUAGE)]

    def term(self, section: str, word: str, default: str | None = None) -> str:
        for c in self._cats:
            words = c["terms"].get(section)
            if isinstance(words, dict) and word in words:
                return words[word]
            if isinstance(words, str) and not word:
                return words
        return word if default is None else default

    def template(self, keys: list[str], part: str) -> str | None:
        """The first of `keys` with a `part` (message | hint): the center's language first for
        a message; a hint is the coordinator's, read in English."""
        cats = self._cats if part == "message" else self._cats[-1:]
        for k in keys:
            for c in cats:
                text = (c["messages"].get(k) or {}).get(part)
                if text:
                    return text
        return None

    @staticmethod
    def fill(template: str, fields: dict[str, Any]) -> str:
        return string.Formatter().vformat(template, (), _Missing(fields))
