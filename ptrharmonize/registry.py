"""A registry folder of its own: `ptrh init DIR`, and using it from every command.

A registry edits its copy of the model (tables, rules, units, definitions), keeps its centers'
mappings and its tolerances next to it, and names its store once in `ptrh.toml`, instead of
editing the installed package. `ptrharmonize.paths` finds the folder; this module writes one
and makes the commands use it (the store and thresholds become the defaults of their options).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from .paths import (
    CONFIG_NAME,
    Registry,
    RegistryError,
    builtin_mappings_dir,
    builtin_schemas_dir,
    find_registry,
    model_files,
    set_registry,
)

CONFIG_TEMPLATE = """\
# A ptrharmonize registry folder (written by `ptrh init`). Commands run inside this folder, or
# with `ptrh --registry {root}`, read the model in schemas/, the mappings in mappings/, the
# tolerances in the thresholds file, and use the store below unless --store is given.
# Relative paths are relative to this folder.

[registry]
name = "{name}"
store = "registry.duckdb"
thresholds = "thresholds.yaml"
# analyses = "analyses"   # a folder of the registry's own analyses, beside the study's
"""

THRESHOLDS_TEMPLATE = """\
# Tolerances per rule: the share of rows a rule may fail before it blocks (0 = none).
# Either `rule_id: share` for every center, or a list of {rule_id, center_id, threshold}.
# Rule ids: `ptrh schema`. Empty: every rule at its catalog default.
{}
"""

# Options that take their default from the registry folder, by option name.
_FROM_REGISTRY = ("store", "thresholds")


def init_registry(root: Path, name: str | None = None) -> Registry:
    """Write a registry folder: a copy of the built-in model and mappings, a thresholds file and
    ptrh.toml. Refuses a folder that exists and is not empty (nothing is overwritten)."""
    root = Path(root)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise RegistryError(f"{root}: exists and is not an empty folder; nothing was written "
                            "(choose a new folder)")
    root.mkdir(parents=True, exist_ok=True)
    for src, dst in ((builtin_schemas_dir(), root / "schemas"), (builtin_mappings_dir(), root / "mappings")):
        for f in model_files(src):
            target = dst / f.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, target)
    (root / "thresholds.yaml").write_text(THRESHOLDS_TEMPLATE, encoding="utf-8")
    label = (name or root.resolve().name).replace("\\", "").replace('"', "")
    (root / CONFIG_NAME).write_text(CONFIG_TEMPLATE.format(root=root.resolve(), name=label), encoding="utf-8")
    from .paths import load_registry

    return load_registry(root)


def activate(ctx: Any, explicit: Path | None) -> int:
    """Use the registry folder for this command: set it, check its model before any data is
    read (a broken file is exit 2 naming the file and line), and make its store and thresholds
    the defaults of the commands' options."""
    set_registry(explicit)
    if ctx.resilient_parsing or ctx.invoked_subcommand in (None, "init"):
        return 0
    reg = find_registry()
    if reg is None:
        return 0
    check_model(reg)
    defaults = {"store": reg.store,
                "thresholds": reg.thresholds if reg.thresholds and reg.thresholds.is_file() else None}
    ctx.default_map = _default_map(ctx.command, {k: str(v) for k, v in defaults.items() if v is not None})
    return 0


def check_model(reg: Registry) -> None:
    """Load the registry's catalog and units now, so that a broken file stops the command before
    any data is read."""
    if not reg.schemas.is_dir():
        raise RegistryError(f"{reg.root}: the registry folder has no schemas/ folder")
    from .cdm import load_catalog
    from .units import registry as units_registry

    load_catalog(reg.schemas)
    units_registry(reg.schemas / "units.yaml")


def _default_map(command: Any, values: dict[str, str]) -> dict[str, Any]:
    """click's default_map for every sub-command with a required option of these names (an
    optional --store, as qa-report's, keeps its own meaning)."""
    out: dict[str, Any] = {}
    for name, sub in getattr(command, "commands", {}).items():
        if getattr(sub, "commands", None):
            nested = _default_map(sub, values)
            if nested:
                out[name] = nested
            continue
        own = {}
        for p in sub.params:
            if p.name in values and p.name in _FROM_REGISTRY and (p.name != "store" or p.required):
                own[p.name] = values[p.name]
        if own:
            out[name] = own
    return out
