"""Installing as users install, and the CLI conventions they expect (issue: a wheel that works
anywhere, a registry folder of its own).

The wheel itself is installed into a fresh virtual environment and `ptrh demo` run from it by
`.ci/run` (minutes, so not here); here: the wheel's contents, the registry folder, and the CLI
conventions, through the real `ptrh` executable.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from importlib.metadata import version
from pathlib import Path

import pytest

from extract_factory import clean_rows, write_extract

ROOT = Path(__file__).resolve().parent.parent


def ptrh(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "ptrh"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-c", "from ptrharmonize.cli import main; main()"]
    full_env = {**os.environ, "COLUMNS": "250", **(env or {})}
    full_env.pop("PTRH_REGISTRY", None)
    return subprocess.run([*cmd, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=300)


# --- the wheel -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "-w", str(out), "--no-deps", "-q"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (whl,) = out.glob("ptrharmonize-*.whl")
    return whl


def _tracked(folder: str) -> set[str]:
    out = subprocess.run(["git", "ls-files", folder], cwd=ROOT, capture_output=True, text=True, check=True)
    return {line for line in out.stdout.splitlines() if line}


def test_wheel_carries_the_model_and_every_data_file(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    # schemas/ and mappings/ travel as ptrharmonize/model/{schemas,mappings}/...
    for folder in ("schemas", "mappings"):
        tracked = _tracked(folder)
        assert tracked, folder
        for f in tracked:
            assert f"ptrharmonize/model/{f}" in names, f"{f} is not in the wheel"
    # every non-Python file kept beside the code (SQL views, YAML, templates ...)
    for f in _tracked("ptrharmonize"):
        if not f.endswith(".py"):
            assert f in names, f"{f} is not in the wheel"


def test_code_finds_the_model_as_package_resources_not_relative_to_the_source() -> None:
    src = (ROOT / "ptrharmonize" / "paths.py").read_text(encoding="utf-8")
    assert "__file__" not in src
    from ptrharmonize.paths import builtin_mappings_dir, builtin_schemas_dir

    assert (builtin_schemas_dir() / "tables" / "patients.yaml").is_file()
    assert sorted(p.name for p in builtin_mappings_dir().glob("*.yaml")) == sorted(
        p.name for p in (ROOT / "mappings").glob("*.yaml"))


# --- CLI conventions --------------------------------------------------------------------------


def test_version() -> None:
    r = ptrh("--version")
    assert r.returncode == 0
    assert r.stdout.strip() == f"ptrh {version('ptrharmonize')}"


def test_closed_pipe_ends_quietly_with_exit_0(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "ptrh"
    for args in ("schema", "--help", "status --format json"):
        script = f"set -o pipefail; '{exe}' {args} | head -c 10 > /dev/null"
        r = subprocess.run(["bash", "-c", script], capture_output=True, text=True, cwd=tmp_path)
        assert r.returncode == 0, (args, r.stderr)
        assert "Traceback" not in r.stderr and "BrokenPipe" not in r.stderr, r.stderr


def test_help_shows_types_as_words_and_whole_paragraphs() -> None:
    r = ptrh("validate", "--help")
    assert r.returncode == 0
    assert "<list[Path]>" not in r.stdout and "<path>" not in r.stdout and "<str>" not in r.stdout
    assert "PATH..." in r.stdout
    # A docstring paragraph is one paragraph, not the source's line breaks (COLUMNS=250).
    assert "Exit 0 when no error rule exceeds its threshold (warnings allowed)" in r.stdout


def test_completion_is_offered() -> None:
    r = ptrh("--show-completion", "bash")
    assert r.returncode == 0
    assert "_ptrh_completion" in r.stdout


def test_status_json_without_a_store_names_the_built_in_model(tmp_path: Path) -> None:
    r = ptrh("status", "--format", "json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["model"]["source"] == "built-in"
    assert doc["store"] is None
    assert re.fullmatch(r"[0-9a-f]{64}", doc["model"]["schemas_sha256"])


# --- a registry folder ------------------------------------------------------------------------


def test_init_writes_a_registry_folder_and_refuses_a_non_empty_one(tmp_path: Path) -> None:
    reg = tmp_path / "reg"
    r = ptrh("init", str(reg))
    assert r.returncode == 0, r.stderr
    assert (reg / "ptrh.toml").is_file() and (reg / "thresholds.yaml").is_file()
    assert (reg / "schemas" / "tables" / "patients.yaml").is_file()
    assert not (reg / "schemas" / "__init__.py").exists()  # packaging, not model
    assert sorted(p.name for p in (reg / "mappings").glob("*.yaml")) == sorted(
        p.name for p in (ROOT / "mappings").glob("*.yaml"))

    other = tmp_path / "busy"
    other.mkdir()
    (other / "notes.txt").write_text("keep me", encoding="utf-8")
    r = ptrh("init", str(other))
    assert r.returncode == 2
    assert "not an empty folder" in r.stderr
    assert (other / "notes.txt").read_text(encoding="utf-8") == "keep me"
    assert sorted(p.name for p in other.iterdir()) == ["notes.txt"]


def test_status_in_a_registry_folder_says_which_model(tmp_path: Path) -> None:
    reg = tmp_path / "reg"
    assert ptrh("init", str(reg)).returncode == 0
    builtin = json.loads(ptrh("status", "--format", "json", cwd=tmp_path).stdout)["model"]
    inside = json.loads(ptrh("status", "--format", "json", cwd=reg / "mappings").stdout)["model"]
    assert inside["source"] == "registry" and inside["registry"] == str(reg.resolve())
    # an unedited copy is the same model
    assert inside["schemas_sha256"] == builtin["schemas_sha256"]
    rules = reg / "schemas" / "rules.yaml"
    rules.write_text(rules.read_text(encoding="utf-8") + "\n# edited by the registry\n", encoding="utf-8")
    edited = json.loads(ptrh("--registry", str(reg), "status", "--format", "json", cwd=tmp_path).stdout)["model"]
    assert edited["schemas_sha256"] != builtin["schemas_sha256"]


def test_registry_model_is_the_one_used(tmp_path: Path) -> None:
    """A rule's message edited in the registry's copy is what `ptrh schema` prints there; the
    built-in model outside is unchanged."""
    reg = tmp_path / "reg"
    assert ptrh("init", str(reg)).returncode == 0
    rules = reg / "schemas" / "rules.yaml"
    text = rules.read_text(encoding="utf-8")
    m = re.search(r"message: \"?([A-Z][^\"\n]{20,})", text)
    assert m, "no rule message found to edit"
    rules.write_text(text.replace(m.group(1), "REGISTRY-EDITED message", 1), encoding="utf-8")
    inside = ptrh("schema", cwd=reg)
    outside = ptrh("schema", cwd=tmp_path)
    assert inside.returncode == 0 and outside.returncode == 0
    assert "REGISTRY-EDITED" in inside.stdout
    assert "REGISTRY-EDITED" not in outside.stdout


def test_registry_store_is_the_default_store(tmp_path: Path) -> None:
    reg = tmp_path / "reg"
    assert ptrh("init", str(reg)).returncode == 0
    sub = write_extract(tmp_path / "sub", clean_rows())
    r = ptrh("ingest", str(sub), "--quiet", cwd=reg)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (reg / "registry.duckdb").is_file()
    st = json.loads(ptrh("status", "--format", "json", cwd=reg).stdout)
    assert st["store"] == str(reg.resolve() / "registry.duckdb")
    assert len(st["submissions"]) == 1


@pytest.mark.parametrize("breakage, where", [
    ("yaml", "rules.yaml, line"),
    ("missing", "units.yaml"),
])
def test_broken_registry_model_stops_before_any_data_is_read(tmp_path: Path, breakage: str, where: str) -> None:
    reg = tmp_path / "reg"
    assert ptrh("init", str(reg)).returncode == 0
    if breakage == "yaml":
        with (reg / "schemas" / "rules.yaml").open("a", encoding="utf-8") as fh:
            fh.write("- id: broken\n  message: [unclosed\n")
    else:
        (reg / "schemas" / "units.yaml").unlink()
    sub = write_extract(tmp_path / "sub", clean_rows())
    r = ptrh("ingest", str(sub), "--quiet", cwd=reg)
    assert r.returncode == 2
    assert where in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert not (reg / "registry.duckdb").exists()  # nothing read, nothing written


def test_env_schemas_still_wins(tmp_path: Path) -> None:
    copy = tmp_path / "schemas"
    shutil.copytree(ROOT / "schemas", copy, ignore=shutil.ignore_patterns("__pycache__", "__init__.py"))
    doc = json.loads(ptrh("status", "--format", "json", cwd=tmp_path, env={"PTRH_SCHEMAS": str(copy)}).stdout)
    assert doc["model"]["source"] == "PTRH_SCHEMAS" and doc["model"]["schemas"] == str(copy)


# --- the README stands on its own -------------------------------------------------------------

_REPO_PREFIXES = ("schemas/", "mappings/", "ptrharmonize/", "docs/", "benchmarks/", "tests/", ".ci/")


def test_every_path_the_readme_names_exists() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "shared/" not in text, "the README points at a file outside the repository"
    tokens = re.findall(r"`([^`\s<>]+)`", text)
    checked = 0
    for tok in tokens:
        if tok.startswith(_REPO_PREFIXES):
            assert list(ROOT.glob(tok.rstrip("/"))), f"README names {tok}, which does not exist"
            checked += 1
    # the code row names modules relative to ptrharmonize/
    row = next(line for line in text.splitlines() if line.startswith("| `ptrharmonize/`"))
    for tok in re.findall(r"`([^`\s<>]+)`", row.split("|")[2]):
        assert list((ROOT / "ptrharmonize").glob(tok.rstrip("/"))), f"README names ptrharmonize/{tok}"
        checked += 1
    assert checked >= 15
