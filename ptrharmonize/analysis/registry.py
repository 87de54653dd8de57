"""Which analyses `run-analysis` runs: found, not listed.

An analysis is a function `f(ctx) -> AnalysisResult` marked with `@analysis("<id>", order=N)`
in a module, with its population in `<id>.sql` in a `sql/` folder beside the module (or beside
the module itself). Three places are searched, and nothing else needs editing:

1. every module of the package folder `ptrharmonize/analysis/` (the study's analyses);
2. the `ptrharmonize.analyses` entry-point group, so an installed package can add its own
   (`[project.entry-points."ptrharmonize.analyses"] mine = "mypkg.myanalysis"`);
3. extra folders: a registry folder's own analyses (`analyses = "analyses"` in its ptrh.toml,
   `ptrh init`), or `run-analysis --analyses DIR`. Each `*.py` there is imported as a module.

Order: by `order`, then by id; an id defined twice is an error (a registry cannot silently
replace a study analysis: it names its own).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import inspect
import pkgutil
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENTRY_POINT_GROUP = "ptrharmonize.analyses"
_PACKAGE_SKIP = {"registry", "runner"}


@dataclass(frozen=True)
class Analysis:
    id: str
    func: Callable[[Any], Any]
    order: int
    sql_dir: Path
    source: str  # the module that defines it

    @property
    def population_sql(self) -> Path:
        return self.sql_dir / f"{self.id}.sql"


_FOUND: dict[str, Analysis] = {}


def analysis(analysis_id: str, order: int = 1000) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark `f(ctx) -> AnalysisResult` as the analysis `analysis_id` (its population is
    `sql/<analysis_id>.sql` beside the module). `order` places it in the run and in results.json
    (the study's analyses use 10-100; a registry's own default to 1000, after them)."""

    def mark(func: Callable[..., Any]) -> Callable[..., Any]:
        here = Path(inspect.getfile(func)).resolve().parent
        sql_dir = here / "sql" if (here / "sql" / f"{analysis_id}.sql").is_file() else here
        found = Analysis(analysis_id, func, order, sql_dir, func.__module__)
        prev = _FOUND.get(analysis_id)
        if prev is not None and prev.source != found.source:
            raise ValueError(f"analysis {analysis_id!r} is defined twice: in {prev.source} and "
                             f"{found.source}; give the new one its own id")
        _FOUND[analysis_id] = found
        func.analysis_id = analysis_id  # type: ignore[attr-defined]
        return func

    return mark


def _import_package() -> None:
    from . import __path__ as pkg_path

    for mod in pkgutil.iter_modules(pkg_path):
        if not mod.name.startswith("_") and mod.name not in _PACKAGE_SKIP:
            importlib.import_module(f"{__package__}.{mod.name}")


def _import_entry_points() -> None:
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        ep.load()


def _import_folder(folder: Path) -> None:
    folder = Path(folder).resolve()
    if not folder.is_dir():
        raise FileNotFoundError(f"analyses folder not found: {folder}")
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith("_"):
            continue
        name = f"ptrharmonize_local_analyses.{abs(hash(str(folder)))}.{path.stem}"
        # (re-)import: the module may have changed since an earlier run in this process
        for k in [k for k, a in _FOUND.items() if a.source == name]:
            del _FOUND[k]
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            continue
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise


def discover(extra_dirs: Iterable[Path | str] = ()) -> dict[str, Analysis]:
    """Every analysis found in the package, the entry points and `extra_dirs`, in run order."""
    _import_package()
    _import_entry_points()
    extra = [Path(d).resolve() for d in extra_dirs]
    for d in extra:
        _import_folder(d)
    chosen = {
        k: a for k, a in _FOUND.items()
        if not a.source.startswith("ptrharmonize_local_analyses.")
        or any(a.sql_dir == d or a.sql_dir.parent == d for d in extra)
    }
    return dict(sorted(chosen.items(), key=lambda kv: (kv[1].order, kv[0])))


def registry_analyses_dir() -> Path | None:
    """The `analyses` folder of the registry folder in use (ptrh.toml), if it has one."""
    try:
        from ..paths import find_registry

        reg = find_registry()
    except Exception:  # noqa: BLE001 - no registry folder: the package's analyses only
        return None
    folder = getattr(reg, "analyses", None) if reg is not None else None
    return folder if folder is not None and Path(folder).is_dir() else None
