"""Issue 19: "`ptrh mapping check --data` lists every TODO and every source value a value map does
not cover" (before, "`mapping check --data` passes a mapping that does not cover values present
in the data; validation then fails").

A hand-built file: Geschlecht holds männlich, weiblich, divers, U and an e-mail address; the
value map names männlich and weiblich only.
"""

from __future__ import annotations

from pathlib import Path

from ptrharmonize.mapping import lint_mapping

DATA = ("Patient;Geschlecht;Diagnose\nP1;männlich;B-ALL\nP2;weiblich;B-ALL\nP3;divers;B-ALL\nP4;divers;B-ALL\n"
        "P5;U;B-ALL\nP6;jan.jansen@example.org;B-ALL\n")
MAPPING = """\
mapping_version: 1
center_id: DE-TST
defaults: {{format: csv, delimiter: ";"}}
tables:
  patients:
    file: patienten.csv
    columns:
      patient_id: Patient
      sex: {{column: Geschlecht, values: {values}}}
      diagnosis: Diagnose
"""


def _lint(tmp_path: Path, values: str) -> list[dict[str, str]]:
    (tmp_path / "sub").mkdir(exist_ok=True)
    (tmp_path / "sub" / "patienten.csv").write_text(DATA, encoding="utf-8")
    (tmp_path / "m.yaml").write_text(MAPPING.format(values=values), encoding="utf-8")
    # (the parse's own warning that the required treatments table is not mapped is not the subject)
    return [p for p in lint_mapping(tmp_path / "m.yaml", tmp_path / "sub") if p["where"] != "tables"]


def test_values_the_map_does_not_cover_are_listed(tmp_path: Path) -> None:
    problems = _lint(tmp_path, "{männlich: M, weiblich: F}")
    assert [(p["level"], p["where"]) for p in problems] == [("error", "tables.patients.columns.sex.values")]
    msg = problems[0]["message"]
    # divers (twice) is not in the map and not a code of sex; U is not in the map but is a CDM code
    # of sex, stored as written: not listed
    assert "Geschlecht in patienten.csv holds 2 value(s)" in msg and "'divers'" in msg and "'U'" not in msg
    assert "validation reports every row" in msg
    # an identifier is never repeated, only counted
    assert "jan.jansen" not in msg and "1 value(s) not shown (identifiers)" in msg


def test_a_map_that_covers_the_data_or_has_a_default_passes(tmp_path: Path) -> None:
    assert _lint(tmp_path, '{männlich: M, weiblich: F, divers: U, "jan.jansen@example.org": U}') == []
    assert _lint(tmp_path, "{map: {männlich: M}, default: U}") == []
