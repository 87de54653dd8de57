"""`ptrh synth centers`: --patients is the registry's total (the issue's `--patients 50000
--centers 100`), --patients-per-center the size of each center."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ptrharmonize.cli import app
from ptrharmonize.synth.centers import split_patients

runner = CliRunner()


def test_split_is_even_and_exact() -> None:
    assert split_patients(50_000, 100) == [500] * 100
    assert split_patients(10, 3) == [4, 3, 3]
    with pytest.raises(ValueError):
        split_patients(2, 3)


def test_patients_in_all_and_per_center(tmp_path: Path) -> None:
    res = runner.invoke(app, ["synth", "centers", "--out", str(tmp_path / "a"), "--patients", "10", "--centers", "3",
                              "--truth-only"])
    assert res.exit_code == 0, res.output
    m = json.loads((tmp_path / "a" / "manifest.json").read_text(encoding="utf-8"))
    assert [c["rows"]["patients"] for c in m["centers"]] == [4, 3, 3] and m["patients"] == 10
    res = runner.invoke(app, ["synth", "centers", "--out", str(tmp_path / "b"), "--patients-per-center", "5",
                              "--centers", "2", "--truth-only"])
    assert res.exit_code == 0, res.output
    m = json.loads((tmp_path / "b" / "manifest.json").read_text(encoding="utf-8"))
    assert [c["rows"]["patients"] for c in m["centers"]] == [5, 5]


@pytest.mark.parametrize("args, says", [
    (["--patients", "10", "--patients-per-center", "5"], "not both"),
    (["--patients", "2", "--centers", "3"], "fewer than one patient"),
    (["--patients-per-center", "0"], "at least 1"),
])
def test_bad_sizes_are_refused(tmp_path: Path, args: list[str], says: str) -> None:
    res = runner.invoke(app, ["synth", "centers", "--out", str(tmp_path / "x"), "--truth-only", *args])
    assert res.exit_code == 2 and says in res.output and "Traceback" not in res.output
