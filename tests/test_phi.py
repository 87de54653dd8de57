"""Direct identifiers are reported (rule ids under phi.) and never copied to the store or a report."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import polars as pl
import pytest
from typer.testing import CliRunner

from extract_factory import clean_rows, write_extract
from ptrharmonize.cli import app

runner = CliRunner()
NATIONAL_ID = "110105199003071234"
PHONE = "13812345678"
NAME = "Anna Schmidt"


@pytest.fixture
def phi_extract(tmp_path: Path) -> Path:
    rows = clean_rows()
    rows["patients"][1]["patient_id"] = NATIONAL_ID
    rows["outcomes"][0]["death_cause"] = f"call {PHONE}"
    rows["treatments"][0]["regimen"] = "born 1990-03-07"
    d = write_extract(tmp_path / "phi", rows)
    p = pl.read_csv(d / "patients.csv", infer_schema=False).with_columns(patient_name=pl.lit(NAME))
    p.write_csv(d / "patients.csv")
    return d


def test_identifiers_reported_without_their_values(phi_extract: Path, tmp_path: Path) -> None:
    out_csv = tmp_path / "issues.csv"
    res = runner.invoke(app, ["validate", str(phi_extract), "--format", "json", "--output", str(out_csv)])
    assert res.exit_code == 1
    data = json.loads(res.stdout)
    hits = {(i["rule_id"], i["table"], i["row"], i["column"]) for i in data["issues"] if i["rule_id"].startswith("phi.")}
    assert ("phi.value_national_id", "patients", 3, "patient_id") in hits
    assert ("phi.value_phone", "outcomes", 2, "death_cause") in hits
    assert ("phi.value_birth_date", "treatments", 2, "regimen") in hits
    assert ("phi.identifier_column", "patients", 1, "patient_name") in hits
    for text in (res.stdout, out_csv.read_text()):
        assert NATIONAL_ID not in text
        assert PHONE not in text
        assert NAME not in text
        assert "1990-03-07" not in text
    term = runner.invoke(app, ["validate", str(phi_extract), "--max-issues", "500"])
    assert NATIONAL_ID not in term.output and PHONE not in term.output


def test_identifiers_never_reach_the_store(phi_extract: Path, tmp_path: Path) -> None:
    store = tmp_path / "reg.duckdb"
    th = tmp_path / "th.csv"
    th.write_text("rule_id,center_id,threshold\nphi.value_phone,,100\nphi.value_national_id,,100\n")
    res = runner.invoke(app, ["ingest", str(phi_extract), "--store", str(store), "--quiet", "--thresholds", str(th)])
    assert res.exit_code == 1  # a thresholds file cannot tolerate identifiers
    if store.exists():
        con = duckdb.connect(str(store), read_only=True)
        dump = repr([con.execute(f'SELECT * FROM "{t}"').fetchall()
                     for (t,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall()])
        con.close()
        assert NATIONAL_ID not in dump and PHONE not in dump and NAME not in dump


def test_plain_codes_and_clinical_text_are_not_flagged(clean_extract: Path) -> None:
    res = runner.invoke(app, ["validate", str(clean_extract), "--format", "json"])
    data = json.loads(res.stdout)
    assert not [i for i in data["issues"] if i["rule_id"].startswith("phi.")]
    phi = {r["rule_id"]: r for r in data["rules"] if r["rule_id"].startswith("phi.")}
    assert phi["phi.value_national_id"]["status"] == "passed"
    assert phi["phi.value_national_id"]["checked"] > 0


def test_a_misformatted_date_is_a_type_issue_not_an_identifier(tmp_path: Path) -> None:
    """"01-03-2019 06:00" in a timestamp column is a valid Dutch phone number to libphonenumber and
    its digit run (0103201906) passes the NHS number's check digit: a date the nurse must rewrite,
    never an identifier to redact (and never a blocking phi.* rule)."""
    import datetime as dt

    from ptrharmonize.identifiers import national_id, phone

    start = dt.datetime(2019, 1, 1, 6, 0)
    for i in range(500):
        t = start + dt.timedelta(days=i, minutes=37 * i)
        for fmt in ("%d-%m-%Y %H:%M", "%d/%m/%Y", "%Y.%m.%d %H:%M:%S", "%m/%d/%Y %I:%M"):
            text = t.strftime(fmt)
            assert not phone(text) and not national_id(text), text
    # real numbers are still found
    assert phone("+31 20 123 4567") and phone("06 12345678") and national_id("BSN 111222333")

    rows = clean_rows()
    rows["labs"][0]["measured_at"] = "01-03-2019 06:00"
    sub = write_extract(tmp_path / "sub", rows)
    res = runner.invoke(app, ["validate", str(sub), "--format", "json", "--quiet"])
    doc = json.loads(res.stdout)
    on_cell = [i for i in doc["issues"] if i["table"] == "labs" and i["row"] == 2]
    assert [i["rule_id"] for i in on_cell] == ["labs.measured_at.type"]
    assert on_cell[0]["value"] == "01-03-2019 06:00"


def _phone_per_region(text: str) -> bool:
    """The oracle: libphonenumber's own matcher, one walk per region (what phone() did before it
    walked once and parsed each candidate in every region)."""
    import phonenumbers

    from ptrharmonize.identifiers import _DATE_OR_TIME, PHONE_REGIONS

    text = _DATE_OR_TIME.sub(" ", text)
    return any(True for region in PHONE_REGIONS
               for _ in phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID))


_PHONE_CASES = [
    "+31 20 123 4567", "06 12345678", "0049 30 12345678", "+44 20 7946 0958", "07700 900123", "(650) 253-0000",
    "13912345678", "0039 06 6982 3456", "01 23 45 67 89", "tel 0612345678", "tel:+31612345678",
    "+1 425 882-8080 ext. 12", "call 020-1234567 today",
    # a code whose digits a Latin letter precedes ('T0612345678') is not a number to libphonenumber;
    # after a space, a slash or inside brackets it is
    "LEI-T00001-001", "T0612345678", "x0612345678", "12 x0612345678", "LEI-T00001 0612345678",
    "00001/0612345678", "(0612345678)", "abc8005001234", "8005001234def", "0612345678%", "$0612345678",
    "01-03-2019 06:00", "2019/03/01", "12345. 0612345678", "12345 - 0612345678",
]


def test_phone_one_walk_equals_the_matcher_per_region() -> None:
    """phone() walks a text once and parses each candidate in every region; the result must be
    libphonenumber's own per-region matcher's, on numbers, codes and the matcher's corner cases
    (a Latin letter or '%' next to the digits, inner matches after '/', ' - ', '.', brackets)."""
    import random

    from ptrharmonize.identifiers import phone

    rnd = random.Random(23)
    cases = list(_PHONE_CASES)
    for _ in range(300):  # random digit runs with the characters around them that the matcher looks at
        digits = "".join(rnd.choice("0123456789") for _ in range(rnd.randint(7, 13)))
        seps = "".join(rnd.choice(" -./") if rnd.random() < 0.2 else "" for _ in range(2))
        cut = rnd.randint(1, len(digits) - 1)
        cases.append(rnd.choice(["", " ", "T", "+", "(", "x", "-", "tel:", "/", "%"]) + digits[:cut] + seps
                     + digits[cut:] + rnd.choice(["", " ", "a", "-1", "/2", ")", "%"]))
    expected = [_phone_per_region(c) for c in cases]
    assert sum(expected) > 50 and not all(expected)  # both kinds are exercised
    assert [phone(c) for c in cases] == expected


def test_an_unmapped_column_named_like_an_identifier_is_a_warning_of_a_mapped_center(tmp_path: Path) -> None:
    """phi.yaml: "A submitted column whose NAME says it holds an identifier"; the rule's hint:
    blocked until removed "(or left unmapped)". A Dutch center's file carries Achternaam
    (surname) and Geboortedatum (birth date) that its mapping does not read: they reach neither
    the store nor the list's values, yet the center sent them, so each is one warning on the
    file's header telling it to stop; the submission is not blocked by them."""
    from test_issue_record import _center, _validate

    sub, m = _center(tmp_path)
    f = sub / "patienten.csv"
    lines = f.read_bytes().decode("latin-1").splitlines()
    lines = [lines[0] + ";Achternaam;Geboortedatum"] + [x + f";Jansen{i};0{i + 1}.03.1990" for i, x in enumerate(lines[1:])]
    f.write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    result = _validate(sub, m)
    try:
        hits = result.issues.filter(pl.col("rule_id") == "phi.identifier_column")
        assert sorted(hits["column"].to_list()) == ["Achternaam", "Geboortedatum"]
        assert set(hits["severity"]) == {"warning"} and set(hits["file"]) == {"patienten.csv"}
        assert hits["row"].is_null().all()
        rr = result.rules.filter(pl.col("rule_id") == "phi.identifier_column").row(0, named=True)
        assert rr["failed"] == 0 and rr["status"] == "passed"
        text = " ".join(str(v) for v in result.issues.to_dicts())
        assert "Jansen" not in text and "1990" not in text
    finally:
        result.cleanup()
