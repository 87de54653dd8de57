"""Atomicity and concurrency of `ptrh ingest` (issue 9), with real processes and SIGKILL.

A store holds an older submission of center T01 (50 lab rows). A new submission of T01 with
500,000 lab rows is ingested by the installed `ptrh` program, which is killed (SIGKILL) at each
named point of its write path (before the lock, inside the transaction after each of several
tables, before and after the commit, after the checkpoint): the process writes a marker when it
reaches the point a test names in `PTRH_TEST_PAUSE_AT` and waits there (ptrharmonize/pause_points.py),
so the kill lands where it is meant to whatever the machine's load.
After every kill the store must open, pass the integrity check (every block of every table read,
checksums verified by DuckDB; a checkpoint written), and hold T01's rows of exactly the old or
exactly the new submission, never a mix, with exactly one active submission. Then two ingests
at once: with `--wait` they serialize; without it, the second is refused with a clear message
while the first holds the lock; neither corrupts the store.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import polars as pl
import pytest

from extract_factory import clean_rows, write_extract
from ptrharmonize.cdm import load_catalog

CDM_TABLES = load_catalog().table_names
NEW_LAB_ROWS = 500_000


def ptrh() -> list[str]:
    """The installed console script: exec'd into the Python process, so its pid is the one killed."""
    beside = Path(sys.executable).parent / "ptrh"
    if beside.exists():
        return [str(beside)]
    return [sys.executable, "-c", "from ptrharmonize.cli import app; app()"]


def big_extract(folder: Path, center: str, lab_rows: int) -> Path:
    """A clean extract of `center` whose labs file has `lab_rows` valid rows (written by polars)."""
    rows = clean_rows(center)
    rows["labs"] = []
    write_extract(folder, rows)
    i = pl.col("i")
    pl.DataFrame({"i": pl.int_range(0, lab_rows, eager=True)}).select(
        center_id=pl.lit(center),
        patient_id=pl.format("P00{}", (i % 6) + 1),
        measured_at=(pl.datetime(2019, 3, 1) + pl.duration(seconds=(i % 500_000) * 2)).dt.strftime("%Y-%m-%dT%H:%M:%S"),
        analyte=pl.when(i % 2 == 0).then(pl.lit("PLT")).otherwise(pl.lit("IL6")),
        value=((i % 50) + 10).cast(pl.Utf8),
        unit=pl.when(i % 2 == 0).then(pl.lit("10^9/L")).otherwise(pl.lit("pg/mL")),
        below_lod=pl.lit("false"),
    ).write_csv(folder / "labs.csv")
    return folder


def start_ingest(sub: Path, store: Path, tmp: Path, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    env = {**os.environ, "TMPDIR": str(tmp), **(env or {})}  # work files of a killed run are left here
    return subprocess.Popen([*ptrh(), "ingest", str(sub), "--store", str(store), "--quiet", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def holds_lock(store: Path, pid: int) -> bool:
    lock = Path(str(store) + ".lock")
    try:
        return lock.read_text().strip() == str(pid)
    except OSError:
        return False


def integrity(store: Path) -> dict[str, object]:
    """Open the store (replaying its WAL), read every block of every table (DuckDB verifies each
    block's checksum as it reads it), write a checkpoint, and return T01's state."""
    con = duckdb.connect(str(store))
    try:
        tables = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables ORDER BY 1").fetchall()]
        assert set(CDM_TABLES) | {"submissions", "issues", "rule_results"} <= set(tables)
        for t in tables:
            n, h = con.execute(f'SELECT count(*), sum(hash(x)) FROM "{t}" AS x').fetchall()[0]
            assert n == 0 or h is not None
        dupes = con.execute("SELECT count(*) - count(DISTINCT submission_id) FROM submissions").fetchall()[0][0]
        assert dupes == 0
        active = con.execute("SELECT submission_id FROM submissions WHERE center_id = 'T01' AND status = 'active'").fetchall()
        counts, sids = {}, set()
        for t in CDM_TABLES:
            counts[t] = con.execute(f'SELECT count(*) FROM "{t}" WHERE center_id = ?', ["T01"]).fetchall()[0][0]
            sids |= {r[0] for r in con.execute(f'SELECT DISTINCT submission_id FROM "{t}" WHERE center_id = ?',
                                               ["T01"]).fetchall()}
        issue_sids = {r[0] for r in con.execute("SELECT DISTINCT submission_id FROM issues WHERE center_id = 'T01'").fetchall()}
        n_subs = con.execute("SELECT count(*) FROM submissions WHERE center_id = 'T01'").fetchall()[0][0]
        con.execute("CHECKPOINT").fetchall()
    finally:
        con.close()
    return {"active": [a[0] for a in active], "counts": counts, "row_sids": sids, "issue_sids": issue_sids,
            "n_subs": n_subs}


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    d = tmp_path_factory.mktemp("atomic")
    old_rows = clean_rows()
    old_rows["labs"] = old_rows["labs"][:50]
    old = write_extract(d / "old", old_rows)
    new = big_extract(d / "new", "T01", NEW_LAB_ROWS)
    base = d / "base.duckdb"
    r = subprocess.run([*ptrh(), "ingest", str(old), "--store", str(base), "--quiet"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    old_state = integrity(base)
    # One uninterrupted run, timed: when it holds the lock (its write phase starts) and ends.
    full = d / "full.duckdb"
    shutil.copy(base, full)
    t0 = time.perf_counter()
    p = start_ingest(new, full, d)
    t_lock = None
    while p.poll() is None:
        if t_lock is None and holds_lock(full, p.pid):
            t_lock = time.perf_counter() - t0
        time.sleep(0.005)
    t_end = time.perf_counter() - t0
    assert p.returncode == 0, p.stderr.read()
    new_state = integrity(full)
    assert t_lock is not None
    assert new_state["counts"]["labs"] == NEW_LAB_ROWS and old_state["counts"]["labs"] == 50
    return {"dir": d, "old": old, "new": new, "base": base, "old_state": old_state, "new_state": new_state,
            "t_lock": t_lock, "t_end": t_end}


def which_state(state: dict[str, object], setup: dict[str, object]) -> str:
    """'old' or 'new' when T01's rows are exactly one submission's; fails on anything else."""
    assert len(state["active"]) == 1, state  # exactly one active submission of the center
    (sid,) = state["active"]
    assert state["row_sids"] == {sid}, state  # every row of the center from that submission
    assert state["issue_sids"] <= {sid}
    for name in ("old", "new"):
        ref = setup[f"{name}_state"]
        if state["counts"] == ref["counts"]:
            if name == "old":
                assert sid == ref["active"][0] and state["n_subs"] == 1
            else:
                assert state["n_subs"] == 2  # the old one superseded, the new one active
            return name
    raise AssertionError(f"T01 holds neither the old nor the new submission: {state['counts']}")


# Where each kill lands (ptrharmonize/pause_points.py: the process writes the point's name to a
# marker file and waits there), and the state the store must then hold: before the commit the
# transaction is discarded (old), after it the write-ahead log is replayed on open (new).
KILL_AT = [
    ("before_lock", "old"),          # validated, not yet holding the store
    ("locked", "old"),               # holding the lock and the connection, nothing written
    ("in_transaction", "old"),       # BEGIN, nothing replaced
    ("replaced:patients", "old"),    # the first table replaced, the others not: the mix moment
    ("replaced:labs", "old"),        # the 500,000 lab rows inserted, later tables not
    ("before_commit", "old"),        # every table, the submission and its issues written
    ("committed", "new"),            # COMMIT done, no checkpoint yet (only the WAL has it)
    ("checkpointed", "new"),         # checkpoint written, lock not yet released
]


def kill_at(point: str, sub: Path, store: Path, work: Path, timeout: float = 600.0) -> float:
    """Start an ingest that pauses at `point`, SIGKILL it there; the seconds it took to get there."""
    marker = work / "paused"
    env = {"PTRH_TEST_PAUSE_AT": point, "PTRH_TEST_PAUSE_MARKER": str(marker)}
    p = start_ingest(sub, store, work, env=env)
    t0 = time.perf_counter()
    try:
        while not marker.exists():
            assert p.poll() is None, f"the ingest ended (exit {p.returncode}) before reaching {point}: {p.stderr.read()}"
            assert time.perf_counter() - t0 < timeout, f"{point} not reached in {timeout} s"
            time.sleep(0.01)
        assert marker.read_text(encoding="utf-8") == point
    finally:
        if p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)  # never leave a paused ingest behind, even on a failure
    assert p.wait() == -signal.SIGKILL, p.stderr.read()
    return time.perf_counter() - t0


@pytest.mark.slow
def test_sigkill_leaves_old_or_new_never_a_mix(setup: dict[str, object], tmp_path: Path) -> None:
    """SIGKILL at each named point of the write path (deterministic: the process waits at the
    point until it is killed): the store opens, passes the integrity check, and holds T01's old
    or new submission whole, the one the point implies."""
    results = []
    for k, (point, expected) in enumerate(KILL_AT):
        store = tmp_path / f"kill{k}.duckdb"
        shutil.copy(setup["base"], store)
        work = tmp_path / f"tmp{k}"
        work.mkdir()
        took = kill_at(point, setup["new"], store, work)
        state = which_state(integrity(store), setup)
        results.append((point, round(took, 2), state))
        assert state == expected, (point, state)
        # The killed writer's lock died with it: the store takes the next ingest at once.
        if k == 0 or point == "replaced:labs":
            r = subprocess.run([*ptrh(), "ingest", str(setup["new"]), "--store", str(store), "--quiet"],
                               capture_output=True, text=True, env={**os.environ, "TMPDIR": str(work)})
            assert r.returncode == 0, r.stderr
            assert which_state(integrity(store), setup) == "new"
    for point, took, state in results:
        print(f"  killed at {point:18} ({took:5.2f} s after the start) -> {state} submission")
    assert [r[2] for r in results] == [e for _, e in KILL_AT]


def _wait_for_lock(store: Path, p: subprocess.Popen, timeout: float = 120.0) -> None:
    t0 = time.perf_counter()
    while not holds_lock(store, p.pid):
        assert p.poll() is None, p.stderr.read()
        assert time.perf_counter() - t0 < timeout
        time.sleep(0.002)


@pytest.mark.slow
def test_second_writer_refused_while_the_first_holds_the_lock(setup: dict[str, object], tmp_path: Path) -> None:
    """The first ingest is paused (SIGSTOP) while it holds the lock; a second one without --wait
    is refused with a clear message and changes nothing; the first then completes."""
    store = tmp_path / "reg.duckdb"
    shutil.copy(setup["base"], store)
    t02 = big_extract(tmp_path / "t02", "T02", 1_000)
    a = start_ingest(setup["new"], store, tmp_path)
    _wait_for_lock(store, a)
    os.kill(a.pid, signal.SIGSTOP)
    try:
        b = subprocess.run([*ptrh(), "ingest", str(t02), "--store", str(store), "--quiet"],
                           capture_output=True, text=True, timeout=120)
    finally:
        os.kill(a.pid, signal.SIGCONT)
    assert b.returncode == 2
    assert "another ptrh process is writing to this store" in b.stderr and "--wait" in b.stderr
    assert "Traceback" not in b.stdout + b.stderr
    assert a.wait(timeout=120) == 0, a.stderr.read()
    assert which_state(integrity(store), setup) == "new"
    con = duckdb.connect(str(store), read_only=True)
    assert con.execute("SELECT count(*) FROM patients WHERE center_id = 'T02'").fetchall()[0][0] == 0
    con.close()


@pytest.mark.slow
def test_two_ingests_at_once_serialize_with_wait(setup: dict[str, object], tmp_path: Path) -> None:
    """Two centers and then two submissions of the same center, started together with --wait:
    both succeed one after the other; each center ends with exactly one active submission."""
    store = tmp_path / "reg.duckdb"
    shutil.copy(setup["base"], store)
    t02 = big_extract(tmp_path / "t02", "T02", 200_000)
    a = start_ingest(setup["new"], store, tmp_path, "--wait", "120")
    b = start_ingest(t02, store, tmp_path, "--wait", "120")
    assert a.wait(timeout=300) == 0, a.stderr.read()
    assert b.wait(timeout=300) == 0, b.stderr.read()
    assert which_state(integrity(store), setup) == "new"
    con = duckdb.connect(str(store), read_only=True)
    got = dict(con.execute("SELECT center_id, count(*) FROM labs GROUP BY 1").fetchall())
    active = dict(con.execute("SELECT center_id, count(*) FROM submissions WHERE status = 'active' GROUP BY 1").fetchall())
    con.close()
    assert got == {"T01": NEW_LAB_ROWS, "T02": 200_000}
    assert active == {"T01": 1, "T02": 1}

    # The same center twice at once: the later writer's submission is the active one, whole.
    small = clean_rows()
    small["labs"] = small["labs"][:20]
    other = write_extract(tmp_path / "small", small)
    shutil.copy(setup["base"], store)
    a = start_ingest(setup["new"], store, tmp_path, "--wait", "120")
    # 20 lab rows after 500,000: a shrink, which this test means (issue 23's guard would refuse it).
    b = start_ingest(other, store, tmp_path, "--wait", "120", "--allow-shrink")
    assert a.wait(timeout=300) == 0, a.stderr.read()
    assert b.wait(timeout=300) == 0, b.stderr.read()
    state = integrity(store)
    assert len(state["active"]) == 1 and state["row_sids"] == set(state["active"]) and state["n_subs"] == 3
    con = duckdb.connect(str(store), read_only=True)
    last = con.execute("SELECT submission_id, row_counts FROM submissions WHERE center_id = 'T01' "
                       "ORDER BY submitted_at DESC LIMIT 1").fetchall()[0]
    con.close()
    assert last[0] == state["active"][0]
    assert state["counts"]["labs"] in (20, NEW_LAB_ROWS) and f'"labs": {state["counts"]["labs"]}' in last[1]
