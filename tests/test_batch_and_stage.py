"""Several submissions in one call, and a validation kept for the ingest that follows it
(`ptrh validate --stage DIR`, `ptrh ingest --stage DIR`): the store must be exactly what a plain
ingest gives, and a kept validation must never be used for files that changed since."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import polars as pl
import pytest
from store_snapshot import snapshot
from typer.testing import CliRunner

from extract_factory import clean_rows, dirty_rows, write_extract
from ptrharmonize.cdm import load_catalog
from ptrharmonize.cli import app, load_submission
from ptrharmonize.validate import Engine
from ptrharmonize.validate.stage import find_kept, validate_and_keep

runner = CliRunner()
CDM_TABLES = load_catalog().table_names


def center_rows(center: str, dirty: bool = False) -> dict[str, list[dict[str, str]]]:
    rows = dirty_rows() if dirty else clean_rows()
    for recs in rows.values():
        for r in recs:
            r["center_id"] = center
    return rows


def cli(*args: str) -> tuple[int, str]:
    res = runner.invoke(app, [str(a) for a in args])
    assert "Traceback" not in res.output
    return res.exit_code, res.output


def store_content(store: Path) -> dict[str, list[str]]:
    """Every CDM row, the issues and the rule results, without the (random) submission ids."""
    return snapshot(store, [*CDM_TABLES, "issues", "rule_results"], without=("submission_id",))


@pytest.fixture
def three(tmp_path: Path) -> list[Path]:
    return [write_extract(tmp_path / c, center_rows(c)) for c in ("A01", "B02", "C03")]


# -- several submissions in one call ---------------------------------------------------------
def test_ingest_several_stores_each_as_its_own_submission(three: list[Path], tmp_path: Path) -> None:
    store = tmp_path / "reg.duckdb"
    code, out = cli("ingest", *three, "--store", store, "--quiet")
    assert code == 0, out
    assert out.count("stored") == 3
    con = duckdb.connect(str(store), read_only=True)
    subs = con.execute("SELECT center_id, status FROM submissions ORDER BY 1").fetchall()
    per_center = dict(con.execute("SELECT center_id, count(*) FROM labs GROUP BY 1").fetchall())
    con.close()
    assert subs == [("A01", "active"), ("B02", "active"), ("C03", "active")]
    assert per_center == {"A01": 84, "B02": 84, "C03": 84}
    # the same as three separate calls
    single = tmp_path / "single.duckdb"
    for p in three:
        assert cli("ingest", p, "--store", single, "--quiet")[0] == 0
    assert store_content(store) == store_content(single)


def test_one_bad_submission_does_not_stop_the_others(three: list[Path], tmp_path: Path) -> None:
    dirty = write_extract(tmp_path / "D04", center_rows("D04", dirty=True))
    missing = tmp_path / "nowhere"
    store = tmp_path / "reg.duckdb"
    code, out = cli("ingest", three[0], dirty, three[1], "--store", store, "--quiet")
    assert code == 1  # the worst: D04 rejected
    assert "rejected" in out and str(dirty) in out
    code, out = cli("ingest", missing, three[2], "--store", store, "--quiet")
    assert code == 2 and "nowhere" in out  # could not run for one folder; the next one still stored
    con = duckdb.connect(str(store), read_only=True)
    centers = sorted(c for (c,) in con.execute("SELECT DISTINCT center_id FROM patients").fetchall())
    con.close()
    assert centers == ["A01", "B02", "C03"]


def test_validate_several_json_and_outputs(three: list[Path], tmp_path: Path) -> None:
    dirty = write_extract(tmp_path / "D04", center_rows("D04", dirty=True))
    out_csv = tmp_path / "issues.csv"
    res = runner.invoke(app, ["validate", str(three[0]), str(dirty), "--format", "json", "-o", str(out_csv)])
    assert res.exit_code == 1
    docs = json.loads(res.stdout)
    assert isinstance(docs, list) and len(docs) == 2
    assert docs[0]["summary"]["errors"] == 0 and docs[1]["summary"]["errors"] > 20
    assert pl.read_csv(tmp_path / "issues-A01.csv").height == 0
    assert pl.read_csv(tmp_path / "issues-D04.csv").height == docs[1]["summary"]["errors"] + docs[1]["summary"]["warnings"]
    # one folder keeps the single-object JSON
    one = json.loads(runner.invoke(app, ["validate", str(three[0]), "--format", "json"]).stdout)
    assert isinstance(one, dict) and one["summary"]["errors"] == 0


def test_several_folders_need_one_mapping_each(three: list[Path], tmp_path: Path) -> None:
    m = tmp_path / "m.yaml"
    m.write_text("center_id: A01\n", encoding="utf-8")
    code, out = cli("validate", *three, "--mapping", m)
    assert code == 2 and "one --mapping per folder" in out


def test_outputs_that_would_collide_are_refused(tmp_path: Path) -> None:
    a = write_extract(tmp_path / "x" / "SAME", center_rows("A01"))
    b = write_extract(tmp_path / "y" / "SAME", center_rows("B02"))
    code, out = cli("validate", a, b, "-o", tmp_path / "i.csv")
    assert code == 2 and "would both write" in out


# -- a kept validation -------------------------------------------------------------------------
def test_kept_validation_gives_the_same_store(three: list[Path], tmp_path: Path) -> None:
    dirty = write_extract(tmp_path / "D04", center_rows("D04", dirty=True))
    th = tmp_path / "th.csv"
    th.write_text("rule_id,center_id,threshold\n" + "".join(
        f"{r},,1000\n" for r in _error_rules_failing(dirty)), encoding="utf-8")
    subs = [*three, dirty]
    stage = tmp_path / "stage"
    code, out = cli("validate", *subs, "--thresholds", th, "--stage", stage, "--quiet")
    assert code == 0, out
    assert len([p for p in stage.iterdir() if not p.name.startswith(".")]) == 4
    staged_store, plain_store = tmp_path / "staged.duckdb", tmp_path / "plain.duckdb"
    res = runner.invoke(app, ["ingest", *map(str, subs), "--store", str(staged_store), "--thresholds", str(th),
                              "--stage", str(stage)])
    assert res.exit_code == 0, res.output
    assert res.output.count("storing the validation kept") == 4
    assert "validating (" not in res.output
    assert cli("ingest", *subs, "--store", plain_store, "--thresholds", th, "--quiet")[0] == 0
    assert store_content(staged_store) == store_content(plain_store)


def _error_rules_failing(folder: Path) -> list[str]:
    res = runner.invoke(app, ["validate", str(folder), "--format", "json"])
    doc = json.loads(res.stdout)
    return sorted({r["rule_id"] for r in doc["rules"] if r["status"] == "failed" and not r["rule_id"].startswith("phi.")})


def _ingest_with_stage(folder: Path, store: Path, stage: Path) -> str:
    res = runner.invoke(app, ["ingest", str(folder), "--store", str(store), "--stage", str(stage)])
    assert res.exit_code == 0 and "Traceback" not in res.output, res.output
    return res.output


def _scalar(store: Path, sql: str) -> object:
    con = duckdb.connect(str(store), read_only=True)
    try:
        return con.execute(sql).fetchall()[0][0]
    finally:
        con.close()


def test_changed_file_is_validated_again(three: list[Path], tmp_path: Path) -> None:
    stage = tmp_path / "stage"
    assert cli("validate", three[0], "--stage", stage, "--quiet")[0] == 0
    labs = three[0] / "labs.csv"
    labs.write_text(labs.read_text(encoding="utf-8").replace(",11,10^9/L,", ",123,10^9/L,", 1), encoding="utf-8")
    store = tmp_path / "reg.duckdb"
    assert "validating (no validation of these files" in _ingest_with_stage(three[0], store, stage)
    assert _scalar(store, "SELECT count(*) FROM labs WHERE value = 123") == 1


def test_damaged_stage_is_never_stored(three: list[Path], tmp_path: Path) -> None:
    stage = tmp_path / "stage"
    assert cli("validate", three[0], "--stage", stage, "--quiet")[0] == 0
    (kept,) = [p for p in stage.iterdir() if not p.name.startswith(".")]
    pl.read_parquet(kept / "labs.parquet").with_columns(pl.col("value") * 1000).write_parquet(kept / "labs.parquet")
    store = tmp_path / "reg.duckdb"
    assert "damaged (labs.parquet" in _ingest_with_stage(three[0], store, stage)
    assert _scalar(store, "SELECT max(value) FROM labs WHERE analyte = 'PLT'") == 17


def test_ingest_applies_its_own_thresholds_to_the_kept_counts(tmp_path: Path) -> None:
    dirty = write_extract(tmp_path / "D04", center_rows("D04", dirty=True))
    failing = _error_rules_failing(dirty)
    th = tmp_path / "th.csv"
    th.write_text("rule_id,center_id,threshold\n" + "".join(f"{r},,1000\n" for r in failing), encoding="utf-8")
    stage = tmp_path / "stage"
    assert cli("validate", dirty, "--thresholds", th, "--stage", stage, "--quiet")[0] == 0
    store = tmp_path / "reg.duckdb"
    res = runner.invoke(app, ["ingest", str(dirty), "--store", str(store), "--stage", str(stage)])
    assert res.exit_code == 1  # without the tolerances the kept counts block the submission
    assert "storing the validation kept" in res.output and "rejected" in res.output
    assert not store.exists() or store_content(store)["patients"] == []
    # and the rule results from the kept counts equal a fresh validation's, for both sets
    cat = load_catalog()
    for thresholds in (None, {(r, None): 1000.0 for r in failing}):
        eng = Engine(cat, thresholds=thresholds)
        kept = find_kept(eng, dirty, None, stage)
        assert kept.result is not None
        fresh = eng.validate(load_submission(dirty, None))
        try:
            assert kept.result.rules.equals(fresh.rules)
            assert kept.result.issues.equals(fresh.issues)
            assert kept.result.rows == fresh.rows
        finally:
            fresh.cleanup()


def test_identifiers_are_never_kept(tmp_path: Path) -> None:
    rows = center_rows("A01")
    rows["outcomes"][0]["death_cause"] = "call 13812345678"
    folder = write_extract(tmp_path / "A01", rows)
    stage = tmp_path / "stage"
    code, out = cli("validate", folder, "--stage", stage)
    assert code == 1 and "validation not kept" in out
    assert [p for p in stage.iterdir()] == []


def test_mapped_submission_kept_and_reused(tmp_path: Path) -> None:
    from ptrharmonize.mapping import apply_mapping, mapped_files
    from ptrharmonize.synth.centers import generate_centers

    out = tmp_path / "centers"
    manifest = generate_centers(out, patients_per_center=8, seed=5, centers=4)
    stage = tmp_path / "stage"
    folders = [out / c["folder"] for c in manifest["centers"]]
    mappings = [out / c["mapping"] for c in manifest["centers"]]
    for f, m in zip(folders, mappings, strict=True):
        assert mapped_files(m, f) == apply_mapping(m, f).files
    maps = [x for m in mappings for x in ("--mapping", str(m))]
    res = runner.invoke(app, ["validate", *map(str, folders), *maps, "--stage", str(stage), "--quiet"])
    assert res.exit_code in (0, 1), res.output
    staged_store, plain_store = tmp_path / "staged.duckdb", tmp_path / "plain.duckdb"
    res = runner.invoke(app, ["ingest", *map(str, folders), *maps, "--store", str(staged_store), "--stage", str(stage)])
    assert res.output.count("storing the validation kept") == 4, res.output
    code_plain = runner.invoke(app, ["ingest", *map(str, folders), *maps, "--store", str(plain_store), "--quiet"]).exit_code
    assert res.exit_code == code_plain
    assert store_content(staged_store) == store_content(plain_store)
    # the mapping is part of what was checked: another mapping finds nothing kept
    other = tmp_path / "other.yaml"
    other.write_text(mappings[0].read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    kept = find_kept(Engine(), folders[0], other, stage)
    assert kept.result is None and "no validation" in (kept.reason or "")


def test_validate_and_keep_replaces_an_older_copy(three: list[Path], tmp_path: Path) -> None:
    stage = tmp_path / "stage"
    eng = Engine()
    for _ in range(2):
        res, kept = validate_and_keep(eng, load_submission(three[0], None), stage)
        res.cleanup()
        assert kept is not None and (kept / "manifest.json").is_file()
    assert sorted(p.name for p in stage.iterdir()) == [kept.name]


def test_writer_keeps_going_after_a_failed_transaction(three: list[Path], tmp_path: Path) -> None:
    """One store writer for several submissions: a failure inside one center's transaction rolls
    back that center only (its previous data stay), and the writer still stores the next."""
    from ptrharmonize.ingest import StoreWriter

    store = tmp_path / "reg.duckdb"
    assert cli("ingest", three[1], "--store", store, "--quiet")[0] == 0
    before_b = store_content(store)["labs"]
    # B02 again, changed, with its staged labs removed under it: its INSERT fails mid-transaction.
    labs = three[1] / "labs.csv"
    labs.write_text(labs.read_text(encoding="utf-8").replace(",11,10^9/L,", ",12,10^9/L,", 1), encoding="utf-8")
    eng = Engine()
    results = [(p, eng.validate(load_submission(p, None))) for p in three]
    try:
        results[1][1].staged["labs"].unlink()
        outcomes = []
        with StoreWriter(store) as writer:
            for p, res in results:
                try:
                    outcomes.append(writer.ingest(load_submission(p, None), res).status)
                except duckdb.Error:
                    outcomes.append("failed")
    finally:
        for _, res in results:
            res.cleanup()
    assert outcomes == ["stored", "failed", "stored"]
    con = duckdb.connect(str(store), read_only=True)
    centers = sorted(c for (c,) in con.execute("SELECT DISTINCT center_id FROM labs").fetchall())
    active = con.execute("SELECT count(*) FROM submissions WHERE status = 'active'").fetchall()[0][0]
    con.close()
    assert centers == ["A01", "B02", "C03"] and active == 3
    assert [r for r in store_content(store)["labs"] if "'B02'" in r] == before_b


def test_manifest_pointing_outside_its_folder_is_not_followed(three: list[Path], tmp_path: Path) -> None:
    stage = tmp_path / "stage"
    assert cli("validate", three[0], "--stage", stage, "--quiet")[0] == 0
    (kept,) = [p for p in stage.iterdir() if not p.name.startswith(".")]
    outside = tmp_path / "labs.parquet"
    (kept / "labs.parquet").rename(outside)
    m = json.loads((kept / "manifest.json").read_text(encoding="utf-8"))
    m["staged"]["labs"]["file"] = "../labs.parquet"
    (kept / "manifest.json").write_text(json.dumps(m), encoding="utf-8")
    found = find_kept(Engine(), three[0], None, stage)
    assert found.result is None and "cannot be read" in (found.reason or "")


def test_leftovers_of_a_killed_validate_are_removed_when_old(three: list[Path], tmp_path: Path) -> None:
    import os
    import time

    stage = tmp_path / "stage"
    old, recent = stage / ".partial-old", stage / ".partial-recent"
    for d in (old, recent):
        d.mkdir(parents=True)
        (d / "labs.parquet").write_bytes(b"half")
    past = time.time() - 7 * 3600
    os.utime(old, (past, past))
    assert cli("validate", three[0], "--stage", stage, "--quiet")[0] == 0
    assert not old.exists() and recent.exists()


@pytest.mark.parametrize("manifest", ["{not json", "[]", '{"kept": {}, "staged": []}', '{"kept": 5, "staged": {}}'])
def test_unreadable_manifest_means_validating_again(three: list[Path], tmp_path: Path, manifest: str) -> None:
    stage = tmp_path / "stage"
    assert cli("validate", three[0], "--stage", stage, "--quiet")[0] == 0
    (kept,) = [p for p in stage.iterdir() if not p.name.startswith(".")]
    (kept / "manifest.json").write_text(manifest, encoding="utf-8")
    res = runner.invoke(app, ["ingest", str(three[0]), "--store", str(tmp_path / "reg.duckdb"), "--stage", str(stage)])
    assert res.exit_code == 0 and "Traceback" not in res.output, res.output
    assert "validating (the kept validation cannot be read" in res.output


def test_qa_report_of_a_kept_validation(tmp_path: Path) -> None:
    dirty = write_extract(tmp_path / "D04", center_rows("D04", dirty=True))
    stage = tmp_path / "stage"
    assert cli("validate", dirty, "--stage", stage, "--quiet")[0] == 1
    kept = runner.invoke(app, ["qa-report", str(dirty), "--stage", str(stage), "--out", str(tmp_path / "k.html"), "-q"])
    fresh = runner.invoke(app, ["qa-report", str(dirty), "--out", str(tmp_path / "f.html"), "-q"])
    assert kept.exit_code == fresh.exit_code == 0, kept.output
    assert "reporting the validation kept" in kept.output
    summary = [line.split(": ", 1)[1] for r in (kept, fresh) for line in r.stdout.splitlines() if "QA report written" in line]
    assert len(summary) == 2 and summary[0] == summary[1] and "errors" in summary[0]
    # other definitions: the kept validation (graded under schemas/) is not used
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("{}\n", encoding="utf-8")
    other = runner.invoke(app, ["qa-report", str(dirty), "--stage", str(stage), "--config", str(cfg),
                                "--out", str(tmp_path / "c.html"), "-q"])
    assert other.exit_code == 0 and "reporting the validation kept" not in other.output


def test_two_at_a_time_gives_the_same_results_in_the_same_order(three: list[Path], tmp_path: Path) -> None:
    dirty = write_extract(tmp_path / "D04", center_rows("D04", dirty=True))
    folders = [three[0], dirty, three[1], three[2]]
    outs = {}
    for jobs in ("1", "2"):
        res = runner.invoke(app, ["validate", *map(str, folders), "--format", "json", "--jobs", jobs])
        assert res.exit_code == 1
        outs[jobs] = json.loads(res.stdout)
    assert outs["1"] == outs["2"]
    assert [d["summary"]["errors"] > 0 for d in outs["2"]] == [False, True, False, False]


def test_results_nobody_asked_for_are_cleaned_up(three: list[Path], tmp_path: Path) -> None:
    """The caller stops early (an error before it asks for a result, or Ctrl-C): every result
    worked on ahead is cleaned up, none is left in a temp folder."""
    from ptrharmonize.batch import in_order

    made, cleaned = [], []

    def work(p: Path, inline: bool) -> Path:
        made.append(p)
        return p

    gen = in_order(three, work, cleaned.append, jobs=2, small=lambda p: True)
    first, get = next(gen)
    assert get() == first  # taken: the caller cleans it
    next(gen)              # the second is never asked for
    gen.close()
    assert set(cleaned) == set(made) - {first} and len(cleaned) == len(made) - 1 >= 1


def test_compressed_files_count_as_the_csv_they_would_be(tmp_path: Path) -> None:
    from ptrharmonize.batch import PARALLEL_MAX_BYTES, is_small, submission_bytes

    d = tmp_path / "sub"
    d.mkdir()
    (d / "labs.parquet").write_bytes(b"x" * 1000)
    (d / "patients.csv").write_bytes(b"x" * 100)
    assert submission_bytes(d) == 7 * 1000 + 100
    assert is_small((d, None))
    big = tmp_path / "big"
    big.mkdir()
    with (big / "labs.parquet").open("wb") as fh:
        fh.truncate(PARALLEL_MAX_BYTES // 7 + 1)  # sparse: no disk used
    assert not is_small((big, None)) and submission_bytes(tmp_path / "nowhere") is None
