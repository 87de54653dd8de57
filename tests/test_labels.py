"""Issue 19: "Messages come from a catalog that can be translated; ship the catalog in English plus
one other language of a demo center (Chinese or Dutch), chosen per mapping (`language:`)" and
"the message speaks the center's codes where the mapping knows them ... and addresses the person
who fixes the cell".

A message that names another column (`{col.X}`) uses the center's header of X; when the mapping
does not map X, it used the CDM's English label inside the translated sentence. Now it is X's
label in the center's language (`terms.labels` of the language's catalog), and a label the
language lacks is shown in English by an explicit rule (`Speaker.label`), listed by
`untranslated()`. The center is the small Leiden-shaped one of test_issue_record.py: its
treatments file has no CAR target column, and patient LEI-001 had CAR-T (rule
treatments.car_target_required, whose message ends "Fill in {col.car_target}.").
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import polars as pl
import pytest
from test_issue_record import _center, _validate

from ptrharmonize.messages import Speaker, untranslated
from ptrharmonize.paths import builtin_schemas_dir
from ptrharmonize.validate.catalog import check_catalog

RULE = "treatments.car_target_required"


def _message(tmp: Path, language: str | None, mapping_edit=None) -> str:
    sub, m = _center(tmp, language=language)
    if mapping_edit is not None:
        m.write_text(mapping_edit(m.read_text(encoding="utf-8")), encoding="utf-8")
    result = _validate(sub, m)
    try:
        hits = result.issues.filter(pl.col("rule_id") == RULE).to_dicts()
        assert len(hits) == 1 and hits[0]["patient_id"] == "LEI-001", result.issues.to_dicts()
        return hits[0]["message"]
    finally:
        result.cleanup()


@pytest.mark.parametrize("language,expected", [
    # nl.yaml: "... Vul {col.car_target} in." with terms.labels.car_target "CAR-doelantigeen"
    ("nl", "Bij een CAR-T-patiënt hoort het doelantigeen van de CAR-T-cellen (CD19, CD22 of CD19/CD22). "
           "Vul CAR-doelantigeen in."),
    # zh.yaml: "... 请填写 {col.car_target}。" with terms.labels.car_target "CAR 靶点"
    ("zh", "CAR-T 患者需要填写 CAR 靶点（CD19、CD22 或 CD19/CD22）。请填写 CAR 靶点。"),
    # en.yaml has no labels: the CDM's own label of treatments.car_target, "CAR target"
    (None, "A CAR-T patient needs the CAR target (CD19, CD22 or CD19/CD22). Fill in CAR target."),
])
def test_an_unmapped_column_is_named_in_the_centers_language(tmp_path: Path, language, expected) -> None:
    msg = _message(tmp_path, language)
    assert msg == expected
    if language is not None:
        assert "CAR target" not in msg  # no English label inside a translated message


def test_the_centers_own_header_wins_over_any_label(tmp_path: Path) -> None:
    def add_target(text: str) -> str:  # the mapping names a column Doel (all empty: still required)
        return text.replace("      index_date: Datum\n", "      index_date: Datum\n      car_target: Doel\n")

    sub, m = _center(tmp_path, language="nl")
    m.write_text(add_target(m.read_text(encoding="utf-8")), encoding="utf-8")
    beh = sub / "behandeling.csv"
    lines = beh.read_bytes().decode("latin-1").splitlines()
    beh.write_bytes(("\n".join([lines[0] + ";Doel", *(ln + ";" for ln in lines[1:])]) + "\n").encode("latin-1"))
    result = _validate(sub, m)
    try:
        msg = result.issues.filter(pl.col("rule_id") == RULE).to_dicts()[0]["message"]
        assert msg.endswith("Vul Doel in.")
    finally:
        result.cleanup()


def test_a_label_a_language_lacks_is_english_and_listed(tmp_path: Path, monkeypatch) -> None:
    """The fallback rule: a column the language does not label (by table.column or by column)
    is shown with the CDM's English label, and `untranslated` lists it."""
    root = tmp_path / "schemas"
    shutil.copytree(builtin_schemas_dir(), root, ignore=shutil.ignore_patterns("__pycache__", "__init__.py"))
    nl = root / "messages" / "nl.yaml"
    text = nl.read_text(encoding="utf-8")
    cut = re.sub(r"\n    car_target: [^\n]*", "", text)
    assert cut != text
    nl.write_text(cut, encoding="utf-8")
    assert untranslated(root, "nl") == ["terms.labels.treatments.car_target"]
    speaker = Speaker(root, "nl")
    assert speaker.label("treatments", "car_target", "CAR target") == "CAR target"
    # a table's own key wins over the bare column name; both over English
    assert speaker.label("infections", "onset_on", "Infection onset date") == "Begindatum van de infectie"
    assert speaker.label("bleeding_events", "onset_on", "Bleeding onset date") == "Begindatum van de bloeding"
    assert speaker.label("patients", "sex", "Sex") == "Geslacht"
    assert Speaker(root, "en").label("patients", "sex", "Sex") == "Sex"
    monkeypatch.setenv("PTRH_SCHEMAS", str(root))
    msg = _message(tmp_path / "c", "nl")
    assert msg.endswith("Vul CAR target in.")


def test_a_label_key_that_names_no_cdm_column_is_refused_at_load(tmp_path: Path) -> None:
    root = tmp_path / "schemas"
    shutil.copytree(builtin_schemas_dir(), root, ignore=shutil.ignore_patterns("__pycache__", "__init__.py"))
    zh = root / "messages" / "zh.yaml"
    zh.write_text(zh.read_text(encoding="utf-8").replace("    car_target: ", "    car_targte: ", 1), encoding="utf-8")
    problems = [str(p) for p in check_catalog(root)]
    assert any("zh.yaml" in p and "car_targte" in p and "not a CDM column" in p for p in problems), problems
    assert check_catalog(builtin_schemas_dir()) == []
