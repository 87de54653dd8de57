"""Where the declarative files live: the built-in model, or a registry folder of its own.

The repository keeps `schemas/` and `mappings/` as top-level folders (the design card); the
wheel carries them as the packages `ptrharmonize.model.schemas` and
`ptrharmonize.model.mappings` (setup.py), found here with `importlib.resources`, so that a
wheel, a `pip install git+...` and an editable install all read the same files.

A registry keeps its own editable copy (`ptrh init DIR`): a folder with `ptrh.toml`,
`schemas/`, `mappings/` and a thresholds file. The folder in use is, in order: the one given
with `ptrh --registry DIR` (or PTRH_REGISTRY), else the nearest folder holding `ptrh.toml`
from the working directory up; else none, and the built-in model is used. PTRH_SCHEMAS and
PTRH_MAPPINGS still point at a single folder and win over both.
"""

from __future__ import annotations

import hashlib
import os
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

CONFIG_NAME = "ptrh.toml"
# Files of a model folder that are packaging, not model: never copied, never in a checksum.
_NOT_MODEL = ("__init__.py", "__pycache__")

_explicit_registry: Path | None = None


class RegistryError(Exception):
    """A registry folder or its ptrh.toml that cannot be used (shown as one line, exit 2)."""


@dataclass(frozen=True)
class Registry:
    """A registry folder: its root and what its ptrh.toml says."""

    root: Path
    name: str = ""
    store: Path | None = None
    thresholds: Path | None = None
    analyses: Path | None = None
    settings: dict = field(default_factory=dict)

    @property
    def schemas(self) -> Path:
        return self.root / "schemas"

    @property
    def mappings(self) -> Path:
        return self.root / "mappings"


def builtin_schemas_dir() -> Path:
    """The model shipped with the package."""
    return _resource_dir("schemas")


def builtin_mappings_dir() -> Path:
    """The demo centers' mappings shipped with the package."""
    return _resource_dir("mappings")


def _resource_dir(name: str) -> Path:
    try:
        found = resources.files(f"ptrharmonize.model.{name}")
    except ModuleNotFoundError as exc:  # an install made before the model became package data
        raise RegistryError(f"the built-in {name}/ is not installed with ptrharmonize "
                            "(reinstall the package: pip install .)") from exc
    return Path(str(found))


def set_registry(path: Path | None) -> None:
    """Use this registry folder for the rest of the process (`ptrh --registry DIR`)."""
    global _explicit_registry
    _explicit_registry = None if path is None else Path(path)


def find_registry(start: Path | None = None) -> Registry | None:
    """The registry folder in use, or None for the built-in model."""
    explicit = _explicit_registry or (Path(os.environ["PTRH_REGISTRY"])
                                      if os.environ.get("PTRH_REGISTRY") else None)
    if explicit is not None:
        if not (explicit / CONFIG_NAME).is_file():
            raise RegistryError(f"{explicit}: not a registry folder (no {CONFIG_NAME}; "
                                f"`ptrh init {explicit}` makes one)")
        return load_registry(explicit)
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_NAME).is_file():
            return load_registry(folder)
    return None


def load_registry(root: Path) -> Registry:
    """Read a registry folder's ptrh.toml; relative paths in it are relative to the folder."""
    root = Path(root).resolve()
    cfg = root / CONFIG_NAME
    try:
        data = tomllib.loads(cfg.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise RegistryError(f"{cfg}: not valid TOML ({exc})") from exc
    except (OSError, UnicodeError) as exc:
        raise RegistryError(f"{cfg}: cannot be read ({exc})") from exc
    reg = data.get("registry", {})
    if not isinstance(reg, dict):
        raise RegistryError(f"{cfg}: [registry] must be a table")
    unknown = sorted(set(reg) - {"name", "store", "thresholds", "analyses"})
    if unknown:
        raise RegistryError(f"{cfg}: unknown key(s) in [registry]: {', '.join(unknown)} "
                            "(known: name, store, thresholds, analyses)")

    def rel(key: str) -> Path | None:
        value = reg.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise RegistryError(f"{cfg}: [registry] {key} must be a path (text)")
        return (root / value) if not Path(value).is_absolute() else Path(value)

    return Registry(root=root, name=str(reg.get("name", root.name)), store=rel("store"),
                    thresholds=rel("thresholds"), analyses=rel("analyses"), settings=data)


def _model_dirs(reg: Registry | None) -> tuple[Path, Path]:
    """(schemas, mappings) in use: PTRH_SCHEMAS / PTRH_MAPPINGS, else the registry's, else built in."""
    schemas = os.environ.get("PTRH_SCHEMAS")
    mappings = os.environ.get("PTRH_MAPPINGS")
    return (Path(schemas) if schemas else reg.schemas if reg is not None else builtin_schemas_dir(),
            Path(mappings) if mappings else reg.mappings if reg is not None else builtin_mappings_dir())


def schemas_dir() -> Path:
    if os.environ.get("PTRH_SCHEMAS"):
        return Path(os.environ["PTRH_SCHEMAS"])
    return _model_dirs(find_registry())[0]


def mappings_dir() -> Path:
    if os.environ.get("PTRH_MAPPINGS"):
        return Path(os.environ["PTRH_MAPPINGS"])
    return _model_dirs(find_registry())[1]


def model_files(root: Path) -> list[Path]:
    """The model's files under a folder, sorted (packaging files left out)."""
    return sorted(p for p in Path(root).rglob("*")
                  if p.is_file() and not any(part in _NOT_MODEL for part in p.relative_to(root).parts)
                  and p.suffix != ".pyc")


def folder_checksum(root: Path) -> str:
    """One SHA-256 over the model files of a folder (their relative paths and contents)."""
    h = hashlib.sha256()
    for f in model_files(root):
        h.update(str(f.relative_to(root).as_posix()).encode())
        h.update(b"\0")
        h.update(hashlib.sha256(f.read_bytes()).hexdigest().encode())
    return h.hexdigest()


def model_in_use() -> dict:
    """Which model the commands read: for `ptrh status` and the reports."""
    env_schemas = os.environ.get("PTRH_SCHEMAS")
    reg = None if env_schemas and os.environ.get("PTRH_MAPPINGS") else find_registry()
    schemas, mappings = _model_dirs(reg)
    if env_schemas:
        source, reg = "PTRH_SCHEMAS", None
    else:
        source = "registry" if reg is not None else "built-in"
    return {"source": source, "registry": str(reg.root) if reg else None,
            "schemas": str(schemas), "mappings": str(mappings),
            "schemas_sha256": folder_checksum(schemas)}
