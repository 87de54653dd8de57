"""Issue 23: the hostile cases an adversarial review found, each a test (docs/robustness.md,
"The issue-23 battery"). Exit 0 must mean the store holds exactly the submission.

Each case states the sentence of the issue it tests. The store is checked by content
(`store_snapshot.snapshot`) wherever a case must leave it as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import unicodedata
from pathlib import Path

import duckdb
import pytest
import yaml
from store_snapshot import snapshot
from typer.testing import CliRunner

from extract_factory import HEADERS, clean_rows, outcomes_workbook, write_extract
from ptrharmonize.cli import app

runner = CliRunner()


def run(*args: str, env: dict[str, str] | None = None):
    res = runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "200", **(env or {})})
    assert "Traceback" not in res.output, res.output[-3000:]
    return res


def mapping_for(folder: Path, center: object, name: str = "mapping.yaml",
                tables: dict[str, dict] | None = None, raw_center: str | None = None) -> Path:
    """A mapping reading each canonical CSV of `folder` as the center's own file."""
    spec = {t: {"file": f"{t}.csv", "columns": {c: c for c in cols if c != "center_id"}} for t, cols in HEADERS.items()}
    spec.update(tables or {})
    path = folder.parent / name
    text = yaml.safe_dump({"center_id": "PLACEHOLDER", "tables": spec}, sort_keys=False, allow_unicode=True)
    line = raw_center if raw_center is not None else f'"{center}"'
    path.write_text(text.replace("center_id: PLACEHOLDER", f"center_id: {line}"), encoding="utf-8")
    return path


def counts(store: Path, center: str) -> dict[str, int]:
    con = duckdb.connect(str(store), read_only=True)
    try:
        return {t: con.execute(f'SELECT count(*) FROM "{t}" WHERE center_id = ?', [center]).fetchall()[0][0]
                for t in HEADERS}
    finally:
        con.close()


@pytest.fixture
def stored(tmp_path: Path) -> tuple[Path, Path]:
    """A store holding center T01 (84 lab rows), ingested through a mapping; and that mapping."""
    sub = write_extract(tmp_path / "t01", clean_rows())
    m = mapping_for(sub, "T01")
    store = tmp_path / "reg.duckdb"
    res = run("ingest", sub, "--mapping", m, "--store", store, "--quiet")
    assert res.exit_code == 0, res.output
    return store, m


# --------------------------------------------------------------------------- the shrink guard
# "A submission that would remove more than a configurable share of a center's stored rows
# (default: any table going from rows to none, or losing over 50%) is refused unless
# --allow-shrink is given, with the counts in the message."


def header_only_files(tmp: Path) -> Path:
    rows = {t: [] for t in HEADERS}
    return write_extract(tmp / "empty", rows)


def spss_zero_cases(tmp: Path) -> Path:
    """Every table header-only, and the patients a 0-case SPSS file (issue: '0-case (SPSS)')."""
    import pandas as pd
    import pyreadstat

    sub = header_only_files(tmp)
    (sub / "patients.csv").unlink()
    df = pd.DataFrame({c: pd.Series([], dtype="object") for c in HEADERS["patients"] if c != "center_id"})
    pyreadstat.write_sav(df, str(sub / "patients.sav"))
    return sub


def labs_cut(n: int):
    def build(tmp: Path) -> Path:
        rows = clean_rows()
        rows["labs"] = rows["labs"][:n]
        return write_extract(tmp / f"labs{n}", rows)
    return build


SHRINK_CASES = [
    # (id, build, extra mapping tables, expected exit, message fragments, env)
    ("csv_header_only_center", header_only_files, None, 2,
     ("would remove stored rows", "patients 6 -> 0", "labs 84 -> 0", "--allow-shrink"), {}),
    ("spss_zero_cases_center", spss_zero_cases,
     {"patients": {"file": "patients.sav", "format": "spss",
                   "columns": {c: c for c in HEADERS["patients"] if c != "center_id"}}}, 2,
     ("patients 6 -> 0", "labs 84 -> 0"), {}),
    ("labs_lose_over_half", labs_cut(40), None, 2, ("labs 84 -> 40", "more than 50%"), {}),
    # 42 of 84 gone: not over 50%, so stored; but the guide: "a shrinking center is an issue the
    # user sees" -- the output names the table and its counts
    ("labs_lose_half_exactly", labs_cut(42), None, 0, ("fewer rows than the submission it replaces", "labs 84 -> 42"), {}),
    ("share_is_configurable", labs_cut(40), None, 0, ("labs 84 -> 40",), {"PTRH_MAX_SHRINK_SHARE": "0.6"}),
    ("share_configurable_stricter", labs_cut(60), None, 2, ("labs 84 -> 60", "more than 20%"),
     {"PTRH_MAX_SHRINK_SHARE": "0.2"}),
]


@pytest.mark.parametrize("case", SHRINK_CASES, ids=[c[0] for c in SHRINK_CASES])
def test_shrink_guard(case, stored: tuple[Path, Path], tmp_path: Path) -> None:
    _, build, tables, exit_code, says, env = case
    store, m = stored
    sub = build(tmp_path)
    # The same mapping file, so that only the shrink guard is at work.
    if tables:
        spec = yaml.safe_load(m.read_text(encoding="utf-8"))
        spec["tables"].update(tables)
        m.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    before = snapshot(store)
    res = run("ingest", sub, "--mapping", m, "--store", store, "--quiet", env=env)
    assert res.exit_code == exit_code, res.output
    for s in says:
        assert s in res.output, (s, res.output)
    if exit_code == 2:
        assert snapshot(store) == before
        res = run("ingest", sub, "--mapping", m, "--store", store, "--quiet", "--allow-shrink", env=env)
        assert res.exit_code == 0, res.output
        assert "fewer rows than the submission it replaces" in " ".join(res.output.split())
    assert counts(store, "T01")["labs"] == sum(1 for _ in open(sub / "labs.csv")) - 1


# --------------------------------------------------------------------------- paths
# "A folder path is a path, never a pattern."


def test_folder_named_like_a_glob_is_read_as_itself(tmp_path: Path) -> None:
    g1 = clean_rows()
    write_extract(tmp_path / "G1", g1)
    mine = clean_rows()
    mine["labs"] = mine["labs"][:30]
    sub = write_extract(tmp_path / "G[1]", mine)
    store = tmp_path / "reg.duckdb"
    res = run("ingest", sub, "--store", store, "--quiet")
    assert res.exit_code == 0, res.output
    assert counts(store, "T01")["labs"] == 30  # G1 has 84
    # Mapped, and a Parquet file, too.
    m = mapping_for(sub, "T01", name="g.yaml")
    out = run("validate", sub, "--mapping", m, "--format", "json")
    assert json.loads(out.stdout)["summary"]["rows"]["labs"] == 30
    import polars as pl

    for folder, n in ((tmp_path / "G1", 84), (sub, 30)):
        pl.read_csv((folder / "labs.csv").read_bytes(), infer_schema=False).write_parquet(folder / "labs.parquet")
        (folder / "labs.csv").unlink()
        assert pl.read_parquet(folder / "labs.parquet", glob=False).height == n
    out = run("validate", sub, "--format", "json")
    assert json.loads(out.stdout)["summary"]["rows"]["labs"] == 30
    con = duckdb.connect(str(store), read_only=True)
    sums = json.loads(con.execute("SELECT file_checksums FROM submissions").fetchall()[0][0])
    con.close()
    import hashlib

    assert sums["patients.csv"] == hashlib.sha256((sub / "patients.csv").read_bytes()).hexdigest()


# --------------------------------------------------------------------------- center ids
# "A center id is text (quoted in YAML, checked against a pattern, normalised to NFC); a mapping
# whose center id is already stored from another mapping file is refused unless confirmed."

CENTER_CASES = [
    # (id, YAML text after `center_id: `, exit, message or stored id)
    ("yaml_octal_0123", "0123", 2, "must be text: write it in quotes"),
    ("yaml_number_42", "42", 2, "must be text"),
    ("quoted_0123_kept", '"0123"', 0, "0123"),
    ("brackets_and_slash", '"MK[/]1"', 2, "must be a code"),
    ("sql_text", "\"T09'); DROP TABLE patients; --\"", 2, "must be a code"),
    ("nfd_normalised", '"Zu\u0308rich-1"', 0, "Z\u00fcrich-1"),
    ("empty_text", '""', 2, "must be a code"),
]


@pytest.mark.parametrize("case", CENTER_CASES, ids=[c[0] for c in CENTER_CASES])
def test_center_id_is_a_text_code(case, tmp_path: Path) -> None:
    _, raw, exit_code, expect = case
    sub = write_extract(tmp_path / "sub", clean_rows())
    m = mapping_for(sub, None, raw_center=raw)
    store = tmp_path / "reg.duckdb"
    res = run("ingest", sub, "--mapping", m, "--store", store, "--quiet")
    assert res.exit_code == exit_code, res.output
    if exit_code == 2:
        assert "mapping.yaml" in res.output and expect in res.output
        assert not store.exists()
    else:
        con = duckdb.connect(str(store), read_only=True)
        got = {r[0] for r in con.execute("SELECT DISTINCT center_id FROM patients").fetchall()}
        con.close()
        assert got == {expect}


def test_same_center_in_two_unicode_forms_is_one_center(tmp_path: Path) -> None:
    store = tmp_path / "reg.duckdb"
    nfc, nfd = "Z\u00fcrich-1", unicodedata.normalize("NFD", "Z\u00fcrich-1")
    assert nfc != nfd
    sub = write_extract(tmp_path / "a", clean_rows())
    m = mapping_for(sub, nfc)
    assert run("ingest", sub, "--mapping", m, "--store", store, "--quiet").exit_code == 0
    m.write_text(m.read_text(encoding="utf-8").replace(nfc, nfd), encoding="utf-8")  # the same file, retyped
    rows = clean_rows()
    rows["labs"] = rows["labs"][:60]
    sub2 = write_extract(tmp_path / "b", rows)
    res = run("ingest", sub2, "--mapping", m, "--store", store, "--quiet")
    assert res.exit_code == 0, res.output
    con = duckdb.connect(str(store), read_only=True)
    got = con.execute("SELECT center_id, count(*) FROM labs GROUP BY 1").fetchall()
    con.close()
    assert got == [(nfc, 60)]
    # A canonical extract whose center id is written decomposed is refused (its rows would not
    # match the center's stored ones).
    rows = clean_rows(nfd)
    res = run("validate", write_extract(tmp_path / "c", rows), "--format", "json")
    assert res.exit_code == 2 and "NFC" in res.output


def test_center_stored_from_another_mapping_is_refused_unless_confirmed(stored: tuple[Path, Path],
                                                                        tmp_path: Path) -> None:
    store, _ = stored
    rows = clean_rows()
    for r in rows["labs"]:
        r["value"] = "99"  # another center's data
    other = write_extract(tmp_path / "leiden-copy", rows)
    m2 = mapping_for(other, "T01", name="copied_mapping.yaml")  # another center's file, id not changed
    before = snapshot(store)
    res = run("ingest", other, "--mapping", m2, "--store", store, "--quiet")
    assert res.exit_code == 2
    assert "copied_mapping.yaml" in res.output and "stored from another mapping file" in res.output
    assert snapshot(store) == before
    res = run("ingest", other, "--mapping", m2, "--store", store, "--quiet", "--confirm-center")
    assert res.exit_code == 0, res.output


def test_hostile_center_id_in_a_canonical_extract_is_refused(tmp_path: Path) -> None:
    rows = clean_rows("MK[/]1")
    sub = write_extract(tmp_path / "mk", rows)
    store = tmp_path / "reg.duckdb"
    for cmd in (["validate", sub], ["ingest", sub, "--store", store]):
        res = run(*cmd)
        assert res.exit_code == 2 and "center_id" in res.output and "must be a code" in res.output
    assert not store.exists()


def test_status_prints_a_stored_odd_center_id_literally(tmp_path: Path) -> None:
    """A store written before center ids were checked may hold `MK[/]1`: status shows it as text."""
    sub = write_extract(tmp_path / "s", clean_rows())
    store = tmp_path / "reg.duckdb"
    assert run("ingest", sub, "--store", store, "--quiet").exit_code == 0
    con = duckdb.connect(str(store))
    for t in [*HEADERS, "submissions", "issues", "rule_results"]:
        con.execute(f'UPDATE "{t}" SET center_id = ?', ["MK[/]1"])
    con.close()
    res = run("status", "--store", store)
    assert res.exit_code == 0, res.output
    assert "MK[/]1" in res.output


# --------------------------------------------------------------------------- outputs and the store
# "An output path equal to the store, or to an input, is refused. `:memory:` is refused. The lock
# is created without following links."


def test_output_over_the_store_or_an_input_is_refused(stored: tuple[Path, Path], tmp_path: Path) -> None:
    store, m = stored
    sub = tmp_path / "t01"
    before = snapshot(store)
    raw_store = store.read_bytes()
    th = tmp_path / "th.csv"
    th.write_text("rule_id,center_id,threshold\n", encoding="utf-8")
    csv_store = tmp_path / "reg.csv"  # DuckDB opens a store of any name
    shutil.copy(store, csv_store)
    cases = [
        (["ingest", sub, "--mapping", m, "--store", store, "-o", store], "is the store"),
        (["ingest", sub, "--mapping", m, "--store", csv_store, "-o", csv_store], "is the store"),
        (["ingest", sub, "--mapping", m, "--store", store, "-o", th, "--thresholds", th], "is the thresholds file"),
        (["ingest", sub, "--mapping", m, "--store", store, "-o", m], "is a mapping file"),
        (["ingest", sub, "--mapping", m, "--store", store, "-o", sub / "labs.csv"], "inside a submission folder"),
        (["validate", sub, "--mapping", m, "-o", m], "is a mapping file"),
        (["validate", sub, "-o", sub / "issues.csv"], "inside a submission folder"),
        (["qa-report", "--store", store, "--out", store], "is the store"),
        (["qa-report", sub, "--mapping", m, "--out", m], "is the mapping file"),
        (["qa-report", "--store", csv_store, "--out", csv_store], "is the store"),
    ]
    for args, says in cases:
        res = run(*args)
        assert res.exit_code == 2, (args, res.output)
        assert says in res.output, (args, res.output)
    assert store.read_bytes() == raw_store and snapshot(store) == before
    assert csv_store.read_bytes() == raw_store and th.read_text(encoding="utf-8") == "rule_id,center_id,threshold\n"
    assert not (sub / "issues.csv").exists()
    assert yaml.safe_load(m.read_text(encoding="utf-8"))["center_id"] == "T01"


def test_in_memory_store_is_refused(tmp_path: Path) -> None:
    sub = write_extract(tmp_path / "s", clean_rows())
    for name in (":memory:", ":memory:reg"):
        res = run("ingest", sub, "--store", name, "--quiet")
        assert res.exit_code == 2 and "in-memory store keeps nothing" in res.output, res.output


def test_symlinked_lock_is_refused_and_its_target_untouched(tmp_path: Path) -> None:
    sub = write_extract(tmp_path / "s", clean_rows())
    store = tmp_path / "reg.duckdb"
    target = tmp_path / "precious.txt"
    target.write_text("keep me\n" * 100, encoding="utf-8")
    os.symlink(target, str(store) + ".lock")
    res = run("ingest", sub, "--store", store, "--quiet")
    assert res.exit_code == 2 and "symbolic link" in res.output, res.output
    assert target.read_text(encoding="utf-8") == "keep me\n" * 100
    assert not store.exists()
    # A hard link would have its content overwritten too.
    os.unlink(str(store) + ".lock")
    os.link(target, str(store) + ".lock")
    res = run("ingest", sub, "--store", store, "--quiet")
    assert res.exit_code == 2 and "hard link" in res.output
    assert target.read_text(encoding="utf-8") == "keep me\n" * 100


# --------------------------------------------------------------------------- limits before work
# "YAML aliases capped ... a limit hit is exit 2 naming the file."


def billion_laughs(levels: int = 9) -> str:
    lines = ['center_id: "T01"', 'a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    lines.append("tables: {}")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("levels,cap", [(9, "values"), (3, "values")])
def test_yaml_aliases_are_capped(levels: int, cap: str, tmp_path: Path) -> None:
    sub = write_extract(tmp_path / "s", clean_rows())
    m = tmp_path / "laughs.yaml"
    m.write_text(billion_laughs(levels), encoding="utf-8")
    assert m.stat().st_size < 7_000
    t0 = time.perf_counter()
    res = run("validate", sub, "--mapping", m, "--format", "json")
    took = time.perf_counter() - t0
    if levels == 9:
        assert res.exit_code == 2 and "laughs.yaml" in res.output and "aliases expanded" in res.output, res.output
        assert took < 20
    else:  # 1,000 values: a legitimate use of anchors still loads (and then fails for its empty tables)
        assert "aliases expanded" not in res.output


def test_alias_count_cap(tmp_path: Path) -> None:
    sub = write_extract(tmp_path / "s", clean_rows())
    m = tmp_path / "many.yaml"
    m.write_text('center_id: "T01"\nx: &x 1\nl: [' + ", ".join(["*x"] * 500) + "]\ntables: {}\n", encoding="utf-8")
    res = run("validate", sub, "--mapping", m)
    assert res.exit_code == 2 and "many.yaml" in res.output and "more than 200 YAML aliases" in res.output


# --------------------------------------------------------------------------- the guard
# "No exception escapes the guard, whatever library raised it (polars panics included)."


# The polars panic is provoked for real (a damaged Parquet file): tests/test_reader_bounds.py.


def test_console_formatting_error_does_not_escape_the_guard() -> None:
    import io

    from rich.console import Console

    from ptrharmonize.errors import run_guarded

    class Broken(io.StringIO):
        def write(self, s: str) -> int:
            if "[" in s or "\x1b" in s or "error" in s and not s.startswith("error: "):
                raise UnicodeEncodeError("ascii", s, 0, 1, "cannot encode")
            return super().write(s)

    def body() -> int:
        raise ValueError("bad")

    buf = Broken()
    assert run_guarded(body, Console(file=buf)) == 2
    assert buf.getvalue().startswith("error: ValueError: bad")


# --------------------------------------------------------------------------- identifiers
# "Identifier rules for the registries' countries: names in free text, national ids of at least
# CN, US, NL, IT, DE, FR, UK with their check digits, international phone and e-mail anywhere,
# dates of birth in words; redaction before truncation; no output ever repeats a detected value."
# Valid national ids are the examples of python-stdnum's documentation for each number (the
# library implements the published check-digit algorithms); the US SSN is the one printed on the
# Woolworth wallet card (078-05-1120), the phone numbers follow each country's numbering plan.

ID_CASES = [
    # (id, table, data index, column, planted value, rule, secret that must never be output)
    ("name_in_free_text", "outcomes", 0, "death_cause", "Maria Rossi", "phi.value_name_in_text", "Maria Rossi"),
    ("title_and_name", "outcomes", 1, "death_cause", "seen by Dr. Jansen", "phi.value_name_in_text", "Jansen"),
    ("it_codice_fiscale_patient_id", "patients", 1, "patient_id", "RCCMNL83S18D969H", "phi.value_national_id",
     "RCCMNL83S18D969H"),
    ("nl_bsn_patient_id", "patients", 2, "patient_id", "111222333", "phi.value_national_id", "111222333"),
    ("de_steuer_id", "outcomes", 2, "death_cause", "Steuer-ID 36 574 261 809", "phi.value_national_id",
     "36 574 261 809"),
    ("fr_nir", "outcomes", 3, "death_cause", "NIR 2 95 10 99 126 111 93", "phi.value_national_id", "126 111 93"),
    ("uk_nhs_number", "treatments", 0, "regimen", "NHS 943 476 5870", "phi.value_national_id", "943 476 5870"),
    ("cn_resident_id", "patients", 3, "patient_id", "360426199101010071", "phi.value_national_id",
     "360426199101010071"),
    ("us_ssn", "outcomes", 4, "death_cause", "SSN 078-05-1120", "phi.value_national_id", "078-05-1120"),
    ("phone_nl_local", "outcomes", 0, "death_cause", "bel 06 12345678", "phi.value_phone", "12345678"),
    ("phone_it_international", "outcomes", 1, "death_cause", "tel. +39 02 1234 5678", "phi.value_phone",
     "1234 5678"),
    ("phone_de_0049", "outcomes", 2, "death_cause", "Tel 0049 30 12345678", "phi.value_phone", "12345678"),
    ("phone_fr_mobile", "treatments", 1, "regimen", "+33 6 12 34 56 78", "phi.value_phone", "12 34 56 78"),
    ("phone_uk_landline", "outcomes", 3, "death_cause", "ring 020 7946 0958", "phi.value_phone", "7946 0958"),
    ("email_in_code_column", "outcomes", 0, "response", "maria.rossi@ospedale.it", "phi.value_email",
     "maria.rossi@ospedale.it"),
    ("email_in_number_column", "labs", 3, "value", "jan@example.nl", "phi.value_email", "jan@example.nl"),
    ("birth_date_in_words_en", "treatments", 2, "regimen", "born 7 March 1990", "phi.value_birth_date",
     "7 March 1990"),
    ("birth_date_in_words_it", "outcomes", 1, "death_cause", "nata il 7 marzo 1990", "phi.value_birth_date",
     "marzo 1990"),
    ("birth_date_in_words_de", "outcomes", 2, "death_cause", "geb. 7. März 1990", "phi.value_birth_date",
     "März 1990"),
    ("identifier_in_a_long_value", "outcomes", 0, "response", "Maria Rossi " + "x" * 300,
     "phi.value_name_in_text", "Maria Rossi"),
]


def planted(tmp: Path, edits: list[tuple[str, int, str, str]]) -> Path:
    rows = clean_rows()
    for table, idx, col, value in edits:
        rows[table][idx][col] = value
    return write_extract(tmp / "sub", rows)


@pytest.mark.parametrize("case", ID_CASES, ids=[c[0] for c in ID_CASES])
def test_identifier_detected_and_never_repeated(case, tmp_path: Path) -> None:
    _, table, idx, col, value, rule, secret = case
    sub = planted(tmp_path, [(table, idx, col, value)])
    out_csv = tmp_path / "issues.csv"
    res = run("validate", sub, "--format", "json", "-o", out_csv)
    assert res.exit_code == 1, res.output[-2000:]
    doc = json.loads(res.stdout)
    hits = {(i["rule_id"], i["table"], i["row"], i["column"]) for i in doc["issues"]}
    assert (rule, table, idx + 2, col) in hits, sorted(h for h in hits if h[0].startswith("phi."))
    for text in (res.output, out_csv.read_text(encoding="utf-8")):
        assert secret not in text


CLINICAL_TEXT = ["Intracranial hemorrhage", "Sepsis (Klebsiella pneumoniae)", "Ann Arbor stage IV",
                 "Progressive disease", "CD19 CAR-T", "FLAG-Ida", "GvHD grade 3 after allo-HSCT",
                 "died in March 2019", "relapse 2019", "CRS grade 2, IL-6 1500 pg/mL"]


def test_clinical_text_and_codes_are_not_identifiers(tmp_path: Path) -> None:
    edits = [("outcomes", i % 6, "death_cause", t) for i, t in enumerate(CLINICAL_TEXT[:6])]
    edits += [("treatments", i, "regimen", t) for i, t in enumerate(CLINICAL_TEXT[6:])]
    sub = planted(tmp_path, edits)
    res = run("validate", sub, "--format", "json")
    doc = json.loads(res.stdout)
    assert [i for i in doc["issues"] if i["rule_id"].startswith("phi.")] == []
    assert res.exit_code == 0, res.output[-2000:]


def test_no_output_repeats_a_detected_value(tmp_path: Path) -> None:
    """Every identifier at once, through every output: terminal, JSON, CSV, XLSX, HTML, store."""
    import openpyxl

    edits = [(t, i, c, v) for _, t, i, c, v, _, _ in ID_CASES if not (t == "patients" and c == "patient_id")]
    # one value per cell: keep the last edit of each cell
    cells = {(t, i, c): v for t, i, c, v in edits}
    sub = planted(tmp_path, [(t, i, c, v) for (t, i, c), v in cells.items()])
    secrets = [s for _, t, i, c, v, _, s in ID_CASES if cells.get((t, i, c)) == v]
    assert len(secrets) >= 9
    texts: dict[str, str] = {}
    res = run("validate", sub, "--max-issues", "1000")
    texts["terminal"] = res.output
    res = run("validate", sub, "--format", "json", "-o", tmp_path / "i.csv")
    texts["json"], texts["csv"] = res.stdout, (tmp_path / "i.csv").read_text(encoding="utf-8")
    store = tmp_path / "reg.duckdb"
    th = tmp_path / "th.csv"
    th.write_text("rule_id,center_id,threshold\n" + "".join(f"{r},,1000\n" for r in
                  {c[5] for c in ID_CASES}), encoding="utf-8")
    res = run("ingest", sub, "--store", store, "--thresholds", th, "-o", tmp_path / "i.xlsx")
    assert res.exit_code == 1  # a thresholds file cannot tolerate identifiers
    texts["ingest terminal"] = res.output
    wb = openpyxl.load_workbook(tmp_path / "i.xlsx")
    texts["xlsx"] = "\n".join(str(c.value) for ws in wb for row in ws.iter_rows() for c in row)
    res = run("qa-report", sub, "--out", tmp_path / "qa.html", "--issues-dir", tmp_path / "qi", "--quiet")
    assert res.exit_code == 0, res.output[-2000:]
    texts["html"] = (tmp_path / "qa.html").read_text(encoding="utf-8")
    for f in sorted((tmp_path / "qi").iterdir()):
        if f.suffix == ".csv":
            texts[f.name] = f.read_text(encoding="utf-8")
    if store.exists():
        con = duckdb.connect(str(store), read_only=True)
        texts["store"] = repr([con.execute(f'SELECT * FROM "{t}"').fetchall() for (t,) in
                               con.execute("SELECT table_name FROM information_schema.tables").fetchall()])
        con.close()
    for where, text in texts.items():
        for s in secrets:
            assert s not in text, (where, s)
    assert "[redacted]" in texts["json"] and "[redacted]" in texts["html"]


# --------------------------------------------------------------------------- formula text
# "Every text output neutralises formula text in every field."


def test_formula_text_neutralised_in_every_field(tmp_path: Path) -> None:
    import csv as pycsv

    import openpyxl

    rows = clean_rows()
    rows["outcomes"][0]["response"] = "=SUM(A1:A3)"
    sub = write_extract(tmp_path / "sub", rows)
    f = sub / "outcomes.csv"
    f.write_text(f.read_text(encoding="utf-8").replace("response", "=SUM(B1:B9)", 1), encoding="utf-8")
    tables = {"outcomes": {"file": "outcomes.csv", "columns": {
        **{c: c for c in HEADERS["outcomes"] if c not in ("center_id", "response")}, "response": "=SUM(B1:B9)"}}}
    m = mapping_for(sub, "T01", tables=tables)
    for out in ("i.csv", "i.xlsx"):
        res = run("validate", sub, "--mapping", m, "-o", tmp_path / out)
        assert res.exit_code == 1, res.output[-2000:]
    cells = [c for r in pycsv.reader(open(tmp_path / "i.csv", encoding="utf-8")) for c in r]
    assert "'=SUM(B1:B9)" in cells and "'=SUM(A1:A3)" in cells
    assert not [c for c in cells if c[:1] in ("=", "+", "@")]
    wb = openpyxl.load_workbook(tmp_path / "i.xlsx")
    values = [c for ws in wb for row in ws.iter_rows() for c in row]
    assert not [c.value for c in values if c.data_type == "f"]
    assert {"'=SUM(B1:B9)", "'=SUM(A1:A3)"} <= {c.value for c in values}


# --------------------------------------------------------------------------- sheet dimensions
# "Resource limits before work: sheet dimensions read from the workbook's own metadata and capped
# (configurable) ... a limit hit is exit 2 naming the file." The issue's cases aborted the process
# (exit 134, a Rust backtrace) or hung past 90 s.


def workbook(tmp: Path, far_cell: str | None, formula: bool = False, rewrite: tuple[bytes, bytes] | None = None) -> Path:
    import zipfile

    rows = clean_rows()
    sub = write_extract(tmp / "sub", rows)
    (sub / "outcomes.csv").unlink()
    wb = outcomes_workbook(rows)
    ws = wb.active
    if far_cell:
        ws[far_cell] = 1
    if formula:
        ws["H2"] = "=1+1"
    path = sub / "outcomes.xlsx"
    wb.save(path)
    if rewrite:
        src = path.read_bytes()
        tmpzip = tmp / "rewritten.xlsx"
        with zipfile.ZipFile(path) as zin, zipfile.ZipFile(tmpzip, "w", zipfile.ZIP_DEFLATED) as zout:
            for info in zin.infolist():
                data = zin.read(info.filename)
                if info.filename.startswith("xl/worksheets/"):
                    data = data.replace(*rewrite)
                zout.writestr(info, data)
        assert tmpzip.read_bytes() != src
        tmpzip.replace(path)
    return sub


SHEET_CASES = [
    # (id, far cell, formula, XML rewrite, exit, message fragment, env)
    ("cell_at_XFD1048576", "XFD1048576", False, None, 2, "reaches cell XFD1048576", {}),
    ("cell_at_XFD1048576_with_a_formula", "XFD1048576", True, None, 2, "reaches cell XFD1048576", {}),
    ("cell_ref_ZZZZZZ4", "J4", False, (b'r="J4"', b'r="ZZZZZZ4"'), 2, "321,272,406 columns", {}),
    ("dimension_element_only", None, False, (b'<dimension ref="A1:F7"', b'<dimension ref="A1:XFD1048576"'), 2,
     "reaches cell XFD1048576", {}),
    ("under_a_lowered_cap", "Z5000", False, None, 2, "reaches cell Z5000", {"PTRH_MAX_SHEET_CELLS": "100000"}),
    ("within_the_cap", "Z5000", False, None, 1, "", {}),  # read; the stray cell is an unknown column
]


@pytest.mark.parametrize("case", SHEET_CASES, ids=[c[0] for c in SHEET_CASES])
def test_sheet_dimensions_capped_before_reading(case, tmp_path: Path) -> None:
    import subprocess
    import sys

    _, far, formula, rewrite, exit_code, says, env = case
    sub = workbook(tmp_path, far, formula, rewrite)
    cols = {c: c for c in HEADERS["outcomes"] if c != "center_id"}
    m = mapping_for(sub, "T01", tables={"outcomes": {"file": "outcomes.xlsx", "format": "excel", "columns": cols}})
    assert (sub / "outcomes.xlsx").stat().st_size < 200_000
    # Its own process: an abort (exit 134) or a hang must show as such, not take pytest down.
    ptrh = Path(sys.executable).parent / "ptrh"
    t0 = time.perf_counter()
    proc = subprocess.run([str(ptrh), "validate", str(sub), "--mapping", str(m), "--quiet"], capture_output=True,
                          text=True, timeout=120, env={**os.environ, **env, "COLUMNS": "200"})
    took = time.perf_counter() - t0
    both = proc.stdout + proc.stderr
    assert "Traceback" not in both and "panicked" not in both, both[-2000:]
    assert proc.returncode == exit_code, both[-2000:]
    assert took < 60
    if exit_code == 2:
        assert "outcomes.xlsx [Sheet]" in proc.stderr and says in proc.stderr, proc.stderr


# --------------------------------------------------------------------------- typed sources
# "Parquet and SPSS columns are checked against the CDM type like text cells: a lossy cast
# (fraction to integer, day-number to date, zone conversion) is an issue, not a silent change."


def typed_sources(tmp: Path, mapped: bool) -> tuple[Path, list[str]]:
    import pandas as pd
    import polars as pl
    import pyreadstat

    sub = write_extract(tmp / "sub", clean_rows())

    def frame(table: str) -> pl.DataFrame:
        df = pl.read_csv((sub / f"{table}.csv").read_bytes(), infer_schema=False)
        (sub / f"{table}.csv").unlink()
        return df.drop("center_id") if mapped else df

    ages = [21.0, 19.7, 23.0, 24.0, 25.0, 26.0]  # 19.7 on data row 2: spreadsheet row 3
    patients = frame("patients").with_columns(pl.Series("age_years", ages))
    outcomes = frame("outcomes").with_columns(pl.lit(42511).alias("last_followup_on"))  # a day number
    tr = frame("transfusions").with_columns(
        pl.col("transfused_at").str.to_datetime().dt.replace_time_zone("Asia/Shanghai"))
    outcomes.write_parquet(sub / "outcomes.parquet")
    tr.write_parquet(sub / "transfusions.parquet")
    if not mapped:
        patients.write_parquet(sub / "patients.parquet")
        return sub, []
    pdf = pd.DataFrame({c: patients[c].to_list() for c in patients.columns})
    pyreadstat.write_sav(pdf, str(sub / "patients.sav"))
    tables = {
        "patients": {"file": "patients.sav", "format": "spss",
                     "columns": {c: c for c in HEADERS["patients"] if c != "center_id"}},
        "outcomes": {"file": "outcomes.parquet", "columns": {c: c for c in HEADERS["outcomes"] if c != "center_id"}},
        "transfusions": {"file": "transfusions.parquet",
                         "columns": {c: c for c in HEADERS["transfusions"] if c != "center_id"}},
    }
    return sub, ["--mapping", str(mapping_for(sub, "T01", tables=tables))]


@pytest.mark.parametrize("mapped", [False, True], ids=["canonical_parquet", "mapped_spss_and_parquet"])
def test_lossy_casts_of_typed_columns_are_issues(mapped: bool, tmp_path: Path) -> None:
    sub, extra = typed_sources(tmp_path, mapped)
    res = run("validate", sub, *extra, "--format", "json")
    assert res.exit_code == 1, res.output[-2000:]
    issues = {(i["rule_id"], i["file"], i["row"], i["value"]) for i in json.loads(res.stdout)["issues"]}
    pfile = "patients.sav" if mapped else "patients.parquet"
    assert ("patients.age_years.type", pfile, 3, "19.7") in issues  # not stored as 19
    assert ("outcomes.last_followup_on.type", "outcomes.parquet", 2, "42511") in issues  # not 2086-05-22
    if not mapped:
        # canonical: a zone-aware time is not the CDM's wall-clock time: reported with its offset
        assert ("transfusions.transfused_at.type", "transfusions.parquet", 2, "2019-03-05T10:00:00+08:00") in issues
    else:
        # mapped: the mapping reads the wall-clock time as written in its zone (10:00, not 02:00 UTC)
        from ptrharmonize.mapping import apply_mapping

        t = apply_mapping(Path(extra[1]), sub).tables["transfusions"]
        got = t.lazy().select("transfused_at").collect().to_series().to_list()[0]
        assert str(got).startswith("2019-03-05") and "10:00" in str(got)


# "Thousands separators are declared in the mapping and checked."

THOUSANDS_CASES = [
    # (id, decimal, thousands, cell, expected: number stored or None for a .type issue)
    ("dot_in_decimal_comma_file_undeclared", ",", None, "1.234", None),
    ("dot_declared_as_thousands", ",", ".", "1.234", 1234.0),
    ("declared_and_grouped_with_decimals", ",", ".", "1.234,5", 1234.5),
    ("declared_but_not_grouped_by_three", ",", ".", "1.5", None),
    ("comma_thousands_in_decimal_point_file", ".", ",", "1,234.5", 1234.5),
    ("comma_not_grouped", ".", ",", "1,5", None),
    ("plain_decimal_comma", ",", None, "12,5", 12.5),
]


@pytest.mark.parametrize("case", THOUSANDS_CASES, ids=[c[0] for c in THOUSANDS_CASES])
def test_thousands_separators_declared_and_checked(case, tmp_path: Path) -> None:
    _, decimal, thousands, cell, expected = case
    rows = clean_rows()
    if decimal == ",":  # the center's other values are written its way too
        for r in rows["labs"]:
            r["value"] = r["value"].replace(".", ",")
    rows["labs"][4]["value"] = cell  # data row 5: spreadsheet row 6
    sub = write_extract(tmp_path / "sub", rows)
    value = {"column": "value", "decimal": decimal}
    if thousands:
        value["thousands"] = thousands
    cols = {c: c for c in HEADERS["labs"] if c != "center_id"}
    cols["value"] = value
    m = mapping_for(sub, "T01", tables={"labs": {"file": "labs.csv", "columns": cols}})
    store = tmp_path / "reg.duckdb"
    res = run("ingest", sub, "--mapping", m, "--store", store, "--quiet")
    if expected is None:
        assert res.exit_code == 1, res.output[-2000:]
        doc = json.loads(run("validate", sub, "--mapping", m, "--format", "json").stdout)
        assert ("labs.value.type", 6) in {(i["rule_id"], i["row"]) for i in doc["issues"]}
    else:
        assert res.exit_code == 0, res.output[-2000:]
        con = duckdb.connect(str(store), read_only=True)
        got = con.execute("SELECT value FROM labs WHERE source_row = 6").fetchall()
        con.close()
        assert got == [(expected,)]


# ".xls formula cells become empty values with no issue" -> refused, naming the first formula cell.


def test_xls_formula_cells_are_not_read_as_empty(tmp_path: Path) -> None:
    import xlwt

    rows = clean_rows()
    sub = write_extract(tmp_path / "sub", rows)
    (sub / "outcomes.csv").unlink()
    wb = xlwt.Workbook()
    ws = wb.add_sheet("Outcomes", cell_overwrite_ok=True)
    for j, h in enumerate(HEADERS["outcomes"]):
        ws.write(0, j, h)
    for i, r in enumerate(rows["outcomes"], start=1):
        for j, h in enumerate(HEADERS["outcomes"]):
            if r[h] and (i, j) != (3, 5):
                ws.write(i, j, r[h])
    ws.write(3, 5, xlwt.Formula('"2019-06-0"&"1"'))  # last_followup_on of sheet row 4 (column F)
    wb.save(str(sub / "outcomes.xls"))
    cols = {c: c for c in HEADERS["outcomes"] if c != "center_id"}
    m = mapping_for(sub, "T01", tables={"outcomes": {"file": "outcomes.xls", "format": "excel", "columns": cols}})
    res = run("validate", sub, "--mapping", m)
    assert res.exit_code == 2, res.output[-2000:]
    assert "outcomes.xls [Outcomes], row 4, column 'F'" in res.output and "formula cells" in res.output
    # Without the formula the same workbook is read.
    ws.write(3, 5, "2019-06-01")
    wb.save(str(sub / "outcomes.xls"))
    assert run("validate", sub, "--mapping", m).exit_code == 0


# --------------------------------------------------------------------------- kept stage
# "A kept stage is verified by its own checksums before it is trusted": a staged file edited with
# its checksum rewritten in the manifest too is caught by the manifest's seal (a key outside it).


def test_tampered_stage_with_rewritten_checksums_is_not_trusted(tmp_path: Path, monkeypatch) -> None:
    import hashlib

    import polars as pl

    monkeypatch.setenv("PTRH_STAGE_KEY", str(tmp_path / "key" / "stage.key"))
    sub = write_extract(tmp_path / "sub", clean_rows())
    stage = tmp_path / "stage"
    assert run("validate", sub, "--stage", stage, "--quiet").exit_code == 0
    (kept,) = [p for p in stage.iterdir() if not p.name.startswith(".")]
    labs = kept / "labs.parquet"
    pl.read_parquet(labs, glob=False).with_columns(pl.lit(999.0).alias("value")).write_parquet(labs)
    manifest = json.loads((kept / "manifest.json").read_text(encoding="utf-8"))
    manifest["staged"]["labs"]["sha256"] = hashlib.sha256(labs.read_bytes()).hexdigest()
    (kept / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    store = tmp_path / "reg.duckdb"
    res = run("ingest", sub, "--store", store, "--stage", stage, "--quiet")
    assert res.exit_code == 0, res.output
    assert "seal does not match" in res.output
    con = duckdb.connect(str(store), read_only=True)
    assert con.execute("SELECT count(*) FROM labs WHERE value = 999").fetchall() == [(0,)]
    con.close()
    # Untampered, the kept validation is used.
    assert run("validate", sub, "--stage", stage, "--quiet").exit_code == 0
    res = run("ingest", sub, "--store", tmp_path / "reg2.duckdb", "--stage", stage, "--quiet")
    assert res.exit_code == 0 and "storing the validation kept" in res.output, res.output
