"""The mapping language's vocabulary, its YAML loader, and the rules for file paths.

A mapping is data: its keys are listed here, its YAML is read with a loader that keeps `Y`,
`N`, `yes`, `no`, `on`, `off` as text (they are source values in value maps), and every `file`
must stay inside the submission folder.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import yaml

from ..read import ReadError, safe_yaml

TOP_KEYS = {"mapping_version", "center_id", "center_name", "description", "defaults", "conventions", "value_maps", "tables",
            "not_collected",  # not_collected: ptrharmonize/collection.py (issue 16)
            "language"}  # language: of the center's issue list (validate/messages.py, issue 19)
READER_KEYS = {
    "csv": {"delimiter", "encoding", "quote", "header_row", "skip_rows", "skip_rows_after_header", "comment"},
    "excel": {"sheet", "header_row", "skip_rows", "skip_rows_after_header"},
    "parquet": set(),
    "spss": {"value_labels", "encoding"},
    # A REDCap records export, one form (instrument) per block: docs/redcap.md.
    "redcap": {"form", "dictionary", "events", "encoding", "delimiter"},
}
ALL_READER_KEYS = set().union(*READER_KEYS.values()) | {"format"}
PARSE_KEYS = {"decimal", "thousands", "null_values", "date_format", "timestamp_format", "below_lod"}
SOURCE_KEYS = ALL_READER_KEYS | PARSE_KEYS | {"file", "columns", "unpivot", "rows", "units_by_analyte", "description", "note"}
COLUMN_KEYS = {"column", "constant", "values", "unit", "format", "decimal", "thousands", "below_lod", "time_column", "unmapped", "description", "note"}
UNPIVOT_KEYS = {"column", "unit", "values", "decimal", "thousands", "below_lod", "description", "note"}
VALUE_MAP_KEYS = {"map", "patterns", "default", "description", "note"}
PATTERN_TARGET_KEYS = ("code", "value")  # a pattern's target: {match: REGEX, code: CODE} (or value:)
# The one column every CDM table has and a mapping fills from its top-level `center_id`.
CENTER_COLUMN = "center_id"


class MappingError(ReadError):
    """The mapping file is invalid, or does not fit the submission (the CLI exits 2)."""

    def __init__(self, file: str | Path | None, message: str, problems: list[dict[str, str]] | None = None) -> None:
        self.problems = problems or []
        super().__init__(file, None, None, message)


def problem(level: str, where: str, message: str) -> dict[str, str]:
    """One finding of the lint: {level: error|warning, where, message}."""
    return {"level": level, "where": where, "message": message}


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads only true/false as booleans (YAML 1.2), so `Y`, `N`, `yes`, `no`,
    `on`, `off` stay text: they are source values in value maps, not booleans."""


_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:bool"] for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def load_mapping(path: Path) -> dict[str, Any]:
    """Parse a mapping file (safe YAML; yes/no/on/off stay text)."""
    path = Path(path)
    if not path.is_file():
        raise MappingError(str(path), "mapping file not found")
    try:
        with path.open(encoding="utf-8-sig") as fh:
            doc = safe_yaml.load(fh, path.name, _Loader)  # aliases and size capped (issue 23)
    except yaml.YAMLError as exc:
        raise MappingError(path.name, f"not valid YAML: {exc}") from None
    except UnicodeDecodeError:
        raise MappingError(path.name, "a mapping file must be UTF-8 text") from None
    if not isinstance(doc, dict):
        raise MappingError(path.name, "a mapping file is a YAML mapping with `center_id` and `tables`")
    return doc


def text_of(v: Any) -> str | None:
    """A YAML scalar as the text it stands for in data (true -> 'true', 3 -> '3')."""
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def formats_of(v: Any) -> list[str] | None:
    """One format or a list of them, as a list (None when absent)."""
    if v is None:
        return None
    if isinstance(v, str):
        return [v]
    return [str(x) for x in v]


def check_relative_path(file: Any) -> str | None:
    """Why `file` is not an acceptable path inside a submission folder (None when it is)."""
    if not isinstance(file, str) or not file.strip():
        return "`file` must be a file name inside the submission folder"
    if "\x00" in file:
        return f"file '{file}' contains a NUL character"
    for flavour in (PurePosixPath(file), PureWindowsPath(file)):
        if flavour.is_absolute() or flavour.anchor or flavour.drive:
            return f"file '{file}' is an absolute path; give a path relative to the submission folder"
        if ".." in flavour.parts:
            return f"file '{file}' leaves the submission folder ('..'); give a path inside it"
    if file.startswith("~"):
        return f"file '{file}' must be relative to the submission folder"
    return None


def resolve_in(root: Path, file: str) -> Path:
    """The path of `file` inside `root`, refusing anything that escapes it (also via symlinks)."""
    why = check_relative_path(file)
    if why:
        raise MappingError(file, why)
    root_r = Path(root).resolve()
    p = (root_r / file.replace("\\", "/")).resolve()
    try:
        p.relative_to(root_r)
    except ValueError:
        raise MappingError(file, f"file '{file}' resolves outside the submission folder") from None
    return p
