"""The flow runs one way (issue 24): a module never imports one of a higher layer.

The layers, lowest first, are the order in docs/architecture.md. The test reads every import
of the package (module level and inside functions alike: a lazy import is still a dependency)
and fails on a climb, naming the importing file and line. Within a layer, modules may import
each other. A new top-level module must be given a layer here.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "ptrharmonize"

LAYERS: list[tuple[str, set[str]]] = [
    # plumbing every step may use: paths, the error type, DuckDB idioms, checksums, the lock,
    # limits, output-path checks, the packaged model folder
    ("plumbing", {"", "paths", "errors", "db", "spreadsheet", "checksums", "lock", "submission", "limits",
                  "center_id", "outputs", "model", "identifiers", "stage_seal", "pause_points"}),
    # the declarative model: the CDM, units, what a center collects, a registry folder, and the
    # clinical definitions as typed SQL macros with the CRS grade (validation grades CRS with it)
    ("model", {"cdm", "units", "collection", "registry", "phi_scan", "definition_sql", "messages"}),
    ("read", {"read", "scan"}),  # scan: profiling a center's files (scan.render is a report)
    ("mapping", {"mapping"}),
    ("validate", {"validate"}),
    ("store", {"store"}),
    # the derived views over the store (views/*.sql): after the store, never imported by validate
    ("derive", {"derive", "store_views"}),
    ("ingest", {"ingest"}),
    ("stats", {"stats"}),
    ("analysis", {"analysis", "synth"}),
    ("federated", {"federated"}),
    ("report", {"report", "scan.render"}),
    ("orchestration", {"reproduce", "demo", "batch"}),
    ("commands", {"commands"}),
    ("cli", {"cli", "cli_help", "__main__"}),
]
RANK = {name: i for i, (_, names) in enumerate(LAYERS) for name in names}


def _module(path: Path, package: Path = PACKAGE) -> tuple[str, str]:
    """(dotted package of the file, its layer name: the top-level module under ptrharmonize, or
    `top.sub` where LAYERS names that submodule on its own; '' for the package itself)."""
    rel = path.relative_to(package).with_suffix("").parts
    pkg = ".".join(("ptrharmonize", *rel[:-1]))
    return pkg, _named(rel)


def _named(parts: tuple[str, ...] | list[str]) -> str:
    if not parts or parts[0] == "__init__":
        return ""
    if len(parts) > 1 and f"{parts[0]}.{parts[1]}" in RANK:
        return f"{parts[0]}.{parts[1]}"
    return parts[0]


def _imports(path: Path, package: Path = PACKAGE) -> list[tuple[int, str]]:
    """(line, top-level ptrharmonize module) of every import in the file."""
    pkg, _ = _module(path, package)
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            targets = [mod] if node.module else [f"{mod}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        for t in targets:
            parts = t.split(".")
            if parts[0] == "ptrharmonize":
                out.append((node.lineno, _named([p for p in parts[1:] if p != "__version__"])))
    return out


def climbs(package: Path = PACKAGE) -> list[str]:
    found = []
    for path in sorted(package.rglob("*.py")):
        _, top = _module(path, package)
        for line, target in _imports(path, package):
            if RANK[target] > RANK[top]:
                found.append(f"{path.relative_to(package.parent)}:{line}: {top or 'ptrharmonize'} "
                             f"({LAYERS[RANK[top]][0]}) imports {target} ({LAYERS[RANK[target]][0]})")
    return found


def test_every_module_has_a_layer() -> None:
    tops = {_module(p)[1] for p in PACKAGE.rglob("*.py")} | {p.name for p in PACKAGE.iterdir() if p.is_dir()
                                                             and (p / "__init__.py").exists()}
    assert tops - set(RANK) == set(), "give the new module a layer in tests/test_layers.py and docs/architecture.md"


def test_no_lower_layer_imports_a_higher_one() -> None:
    assert climbs() == []


def test_a_climb_inside_a_function_is_found(tmp_path: Path) -> None:
    """The check can fail: the climbs issue 24 named (validate -> store, errors -> read), one of
    them lazy inside a function, in a package laid out like ours."""
    pkg = tmp_path / "ptrharmonize"
    (pkg / "validate").mkdir(parents=True)
    (pkg / "validate" / "engine.py").write_text("from ..store import qi\nfrom ..cdm import FILE_COL\n"
                                               "from ..definition_sql import install_crs_graded\n")
    (pkg / "validate" / "catalog.py").write_text("def grade():\n    from ..derive import install_crs_graded\n")
    (pkg / "errors.py").write_text("def run():\n    from .read import ReadError\n    return ReadError\n")
    assert climbs(pkg) == [
        "ptrharmonize/errors.py:2: errors (plumbing) imports read (read)",
        "ptrharmonize/validate/catalog.py:2: validate (validate) imports derive (derive)",
        "ptrharmonize/validate/engine.py:1: validate (validate) imports store (store)",
    ]


def test_validate_reads_the_definitions_below_it_not_the_derived_views() -> None:
    """Issue 24: validate -> derive was a climb the layer order allowed; derive now comes after
    the store, and the engine and the catalog check reach the CRS grade through definition_sql."""
    assert RANK["derive"] > RANK["store"] > RANK["validate"] > RANK["definition_sql"]
    validate = [t for p in (PACKAGE / "validate").rglob("*.py") for _, t in _imports(p)]
    assert "derive" not in validate and "definition_sql" in validate
