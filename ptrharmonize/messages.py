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
TERM_SECTIONS = ("tables", "types", "units", "place", "labels")
LABELS = "labels"  # terms.labels: the CDM columns' labels in a language (else the CDM's English label)


def catalog_file(root: Path | str, language: str) -> Path:
    return Path(root) / FOLDER / f"{language}.yaml"


def languages(root: Path | str) -> list[str]:
    """The languages a model folder has a message catalog for."""
    folder = Path(root) / FOLDER
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def shape_problems(doc: Any, known: set[str] | None = None,
                   columns: set[str] | None = None) -> list[tuple[tuple[Any, ...], str]]:
    """What is wrong with one catalog file, as (key path, problem): `messages` maps each key (a
    check type or rule id, when `known` is given) to {message, hint} templates; `terms` holds
    text or word lists; each key of `terms.labels` names a CDM column (`table.column`, or a
    column name shared by every table that has it; checked when `columns` is given, the set
    `label_keys` makes). `ptrh schema check` reports them with their lines."""
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
    labels = terms.get(LABELS)
    if labels is not None and not isinstance(labels, dict):
        out.append((("terms", LABELS), "must map CDM columns (table.column or column) to their labels"))
    elif labels and columns is not None:
        out += [(("terms", LABELS, k), f"{k!r} is not a CDM column (table.column, or a column name)")
                for k in labels if str(k) not in columns]
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


def label_keys(tables: dict[str, list[str]]) -> set[str]:
    """The keys `terms.labels` may use: `table.column` for every CDM column, and each bare
    column name (its label then serves every table that has the column)."""
    return {f"{t}.{c}" for t, cols in tables.items() for c in cols} | {c for cols in tables.values() for c in cols}


def untranslated_labels(root: Path | str, language: str) -> list[str]:
    """`terms.labels.<table>.<column>` for each CDM column that `language` gives no label (by
    `table.column` or by the bare column name): those are shown in English (the CDM's label)."""
    from .cdm import load_catalog

    if not (Path(root) / "tables").is_dir():
        return []  # a folder of message catalogs only: no CDM to label
    labels = load(root, language)["terms"].get(LABELS) or {}
    cat = load_catalog(Path(root))
    return [f"terms.{LABELS}.{t}.{c.name}" for t, spec in cat.tables.items() for c in spec.columns
            if f"{t}.{c.name}" not in labels and c.name not in labels]


def untranslated(root: Path | str, language: str) -> list[str]:
    """Keys of the English catalog (messages and terms) that `language` does not translate, and
    the CDM columns it gives no label (`untranslated_labels`)."""
    if language != DEFAULT_LANGUAGE:
        return _untranslated_keys(root, language) + untranslated_labels(root, language)
    return _untranslated_keys(root, language)


def _untranslated_keys(root: Path | str, language: str) -> list[str]:
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

    def label(self, table: str, column: str, english: str) -> str:
        """A CDM column's label in this language: `terms.labels` of the center's language by
        `table.column`, then by the bare column name; else `english` (the CDM's own label, from
        schemas/tables/). The English catalog may reword a label the same way."""
        for c in self._cats:
            labels = c["terms"].get(LABELS)
            if isinstance(labels, dict):
                for k in (f"{table}.{column}", column):
                    if isinstance(labels.get(k), str) and labels[k].strip():
                        return labels[k]
        return english

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
