"""Issue 23: "every reader bounded in time and memory; a limit hit is exit 2 naming the file" and
"No exception escapes the guard, whatever library raised it (polars panics included)".

The readers run in a child process (`ptrharmonize.read.bounded`) under `RLIMIT_AS` and a wall
clock; the limits come from schemas/limits.yaml, overridden here by `PTRH_READER_MAX_*`. The
panic is real: `tests/data/polars_panic.parquet` is a 5.7 KB Parquet file with a few bytes
flipped (found by flipping random bytes of a valid file) on which polars 2.1 panics
("assertion failed: offset + length <= self.length"), a `PanicException` (a `BaseException`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from store_snapshot import snapshot
from typer.testing import CliRunner

from extract_factory import HEADERS, clean_rows, write_extract
from ptrharmonize.cli import app

runner = CliRunner()
PANIC_FILE = Path(__file__).parent / "data" / "polars_panic.parquet"


def run(*args: object, env: dict[str, str] | None = None):
    res = runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "200", **(env or {})})
    assert "Traceback" not in res.output, res.output[-3000:]
    return res


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A store holding center T01 (an older submission) that a failed read must leave alone."""
    sub = write_extract(tmp_path / "old", clean_rows())
    store = tmp_path / "reg.duckdb"
    res = run("ingest", sub, "--store", store, "--quiet")
    assert res.exit_code == 0, res.output
    return store


def _new_submission(tmp: Path) -> Path:
    rows = clean_rows()
    rows["labs"] = rows["labs"][:70]  # a new submission that would change the store if it got in
    return write_extract(tmp / "new", rows)


def test_reader_over_the_memory_cap_is_exit_2_naming_the_file(store: Path, tmp_path: Path) -> None:
    """A 500,000-row labs file (26 MB) needs ~150 MB resident to read beyond what the child shares
    with its server; the other files a few MB. Under a cap of 40 MB the labs file is refused by name, nothing stored; the
    files read before it (patients, treatments, transfusions) passed under the same cap."""
    sub = _new_submission(tmp_path)
    lab = clean_rows()["labs"][0]
    n = 500_000
    (pl.DataFrame({k: [lab[k]] * n for k in HEADERS["labs"]})
     .with_columns(value=(pl.int_range(n) % 90 + 10).cast(pl.Utf8)).write_csv(sub / "labs.csv"))
    before = snapshot(store)
    res = run("ingest", sub, "--store", store, "--quiet", env={"PTRH_READER_MAX_MEMORY_MB": "40"})
    assert res.exit_code == 2, res.output
    text = " ".join(res.output.split())
    assert ("error: labs.csv: reading this file needs more memory than the limit of 40 MB "
            "(reader_max_memory_mb in schemas/limits.yaml, or PTRH_READER_MAX_MEMORY_MB)") in text, res.output
    assert snapshot(store) == before


def test_reader_over_the_time_cap_is_exit_2_naming_the_file(store: Path, tmp_path: Path) -> None:
    """Under a wall clock of 1 ms no file can be read: exit 2 naming the first file read (one of
    the submission's files), nothing stored; under the default the same submission is stored."""
    sub = _new_submission(tmp_path)
    before = snapshot(store)
    res = run("ingest", sub, "--store", store, "--quiet", env={"PTRH_READER_MAX_SECONDS": "0.001"})
    assert res.exit_code == 2, res.output
    text = " ".join(res.output.split())
    import re

    said = re.search(r"error: (\w+)\.csv: reading this file took longer than the limit of 0\.001 s "
                     r"\(reader_max_seconds in schemas/limits\.yaml, or PTRH_READER_MAX_SECONDS\)", text)
    assert said and said.group(1) in HEADERS, res.output
    assert snapshot(store) == before
    res = run("ingest", sub, "--store", store, "--quiet")
    assert res.exit_code == 0, res.output
    assert snapshot(store) != before


def test_limits_are_configured_in_limits_yaml() -> None:
    import yaml

    from ptrharmonize.paths import schemas_dir

    doc = yaml.safe_load((schemas_dir() / "limits.yaml").read_text(encoding="utf-8"))
    assert doc["reader_max_memory_mb"] > 1024 and doc["reader_max_seconds"] > 0


def test_the_panic_file_really_panics_polars() -> None:
    """The fixture is a real panic of this polars, not a simulation: reading it unbounded raises
    pyo3's PanicException, which `except Exception` does not catch."""
    with pytest.raises(BaseException) as info:
        pl.read_parquet(PANIC_FILE)
    assert type(info.value).__name__ == "PanicException"
    assert not isinstance(info.value, Exception)


def test_real_polars_panic_does_not_escape_the_guard() -> None:
    """The last line of defence, on a real panic raised outside any reader wrapper."""
    import io

    from rich.console import Console

    from ptrharmonize.errors import run_guarded

    buf = io.StringIO()
    assert run_guarded(lambda: pl.read_parquet(PANIC_FILE).height, Console(file=buf)) == 2
    assert "library panicked" in buf.getvalue(), buf.getvalue()


def _panic_extract(tmp: Path) -> Path:
    sub = _new_submission(tmp)
    (sub / "labs.csv").unlink()
    shutil.copy(PANIC_FILE, sub / "labs.parquet")
    return sub


def test_polars_panic_on_a_damaged_parquet_is_exit_2_naming_the_file(store: Path, tmp_path: Path) -> None:
    """Canonical extract and mapped center alike: exit 2 naming labs.parquet, nothing stored."""
    sub = _panic_extract(tmp_path)
    before = snapshot(store)
    res = run("ingest", sub, "--store", store, "--quiet")
    assert res.exit_code == 2, res.output
    text = " ".join(res.output.split())
    assert "error: labs.parquet: the reader panicked" in text and "export it again" in text, res.output
    mapping = tmp_path / "mapping.yaml"
    spec = {t: {"file": f"{t}.csv", "columns": {c: c for c in cols if c != "center_id"}} for t, cols in HEADERS.items()}
    spec["labs"] = {"file": "labs.parquet", "format": "parquet", "columns": spec["labs"]["columns"]}
    import yaml

    mapping.write_text(yaml.safe_dump({"center_id": "T01", "tables": spec}), encoding="utf-8")
    res = run("validate", sub, "--mapping", mapping)
    assert res.exit_code == 2, res.output
    assert "labs.parquet: the reader panicked" in " ".join(res.output.split()), res.output
    assert snapshot(store) == before


def test_polars_panic_through_the_real_program(store: Path, tmp_path: Path) -> None:
    """The installed program: one line on stderr, no Python traceback, no Rust panic text."""
    sub = _panic_extract(tmp_path)
    before = snapshot(store)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PTRH_")}
    proc = subprocess.run([sys.executable, "-m", "ptrharmonize", "ingest", str(sub), "--store", str(store), "--quiet"],
                          capture_output=True, text=True, env={**env, "COLUMNS": "300"}, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "labs.parquet: the reader panicked" in out, out
    for noise in ("Traceback", "panicked at", "RUST_BACKTRACE", "stack backtrace"):
        assert noise not in out, out
    assert snapshot(store) == before


def test_long_text_cell_in_parquet_is_refused_before_the_identifier_scan(store: Path, tmp_path: Path) -> None:
    """"cells capped before regex matching": a Parquet text cell longer than a spreadsheet cell
    (32,767 characters) is refused with its file, row and column, as a CSV or Excel cell is, before
    any identifier pattern reads it; its content (an e-mail at its end) is never repeated."""
    sub = _new_submission(tmp_path)
    outcomes = pl.read_csv(sub / "outcomes.csv", infer_schema_length=0)
    (sub / "outcomes.csv").unlink()
    long = "x" * 40_000 + " maria.rossi@example.it"
    outcomes.with_columns(death_cause=pl.when(pl.int_range(pl.len()) == 2).then(pl.lit(long))
                          .otherwise(pl.col("death_cause"))).write_parquet(sub / "outcomes.parquet")
    before = snapshot(store)
    for args in (["validate", sub], ["ingest", sub, "--store", store, "--quiet"]):
        res = run(*args)
        assert res.exit_code == 2, res.output
        text = " ".join(res.output.split())
        assert ("outcomes.parquet, row 4, column 'death_cause': this cell holds 40,023 characters, more than a "
                "spreadsheet cell can (32,767)") in text, res.output
        assert "maria.rossi" not in res.output and len(res.output) < 2000
    assert snapshot(store) == before


def test_a_long_tmpdir_does_not_break_the_reader_server(tmp_path: Path) -> None:
    """A Unix socket path holds at most 107 bytes; multiprocessing (Python 3.11) puts the reader
    server's socket under TMPDIR, so a long TMPDIR made every read fail with "AF_UNIX path too
    long" (found when the kill test ran under pytest-xdist). The submission must validate as
    it does with a short TMPDIR: exit 0, no error."""
    sub = write_extract(tmp_path / "sub", clean_rows())
    long_tmp = tmp_path / ("t" * 60) / ("u" * 60)
    long_tmp.mkdir(parents=True)
    assert len(str(long_tmp)) > 107
    proc = subprocess.run([sys.executable, "-m", "ptrharmonize", "validate", str(sub), "--quiet"],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TMPDIR": str(long_tmp), "COLUMNS": "200"})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "AF_UNIX" not in proc.stdout + proc.stderr
