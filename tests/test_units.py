"""The unit registry (schemas/units.yaml): spellings, dimensions, exact conversions, errors."""

from __future__ import annotations

import math
from pathlib import Path

import polars as pl
import pytest
import yaml

from ptrharmonize import units
from ptrharmonize.cdm import load_catalog
from ptrharmonize.paths import schemas_dir


@pytest.mark.parametrize(
    ("spelling", "name"),
    [
        ("/uL", "/uL"),
        ("/µL", "/uL"),
        ("/μL", "/uL"),
        ("/mm3", "/uL"),
        ("/mm³", "/uL"),
        ("cells/uL", "/uL"),
        ("x10^3/uL", "10^9/L"),
        ("10^9/L", "10^9/L"),
        ("×10⁹/L", "10^9/L"),
        ("x10^9/l", "10^9/L"),
        ("10*9/L", "10^9/L"),
        ("10E9/L", "10^9/L"),
        ("G/L", "10^9/L"),
        ("K/uL", "10^9/L"),
        ("g/L", "g/L"),
        ("g/dL", "g/dL"),
        ("mg/L", "mg/L"),
        ("mg/dL", "mg/dL"),
        ("pg/mL", "pg/mL"),
        ("pg/ml", "pg/mL"),
        ("ng/L", "ng/L"),
        ("ng/mL", "ng/mL"),
        ("µg/l", "ug/L"),
        ("cm", "cm"),
        ("m", "m"),
        ("in", "in"),
        ("inches", "in"),
        ("kg", "kg"),
        ("lb", "lb"),
        ("lbs", "lb"),
        ("degC", "degC"),
        ("°C", "degC"),
        ("℃", "degC"),
        ("degF", "degF"),
        ("°F", "degF"),
        ("h", "h"),
        ("hours", "h"),
        ("d", "d"),
        ("days", "d"),
        ("x10^11 platelets", "10^11"),
        ("ug/min", "ug/min"),
        ("mcg/min", "ug/min"),
    ],
)
def test_spellings(spelling: str, name: str) -> None:
    assert units.lookup(spelling).name == name


@pytest.mark.parametrize(
    ("value", "src", "dst", "expected"),
    [
        (15000, "/uL", "10^9/L", 15.0),
        (15000, "/mm3", "x10^9/L", 15.0),
        (15, "x10^3/uL", "10^9/L", 15.0),
        (1.5, "10^9/L", "/uL", 1500.0),
        (98.6, "degF", "degC", 37.0),
        (212, "degF", "degC", 100.0),
        (-40, "degF", "degC", -40.0),
        (37, "degC", "degF", 98.6),
        (310.15, "K", "degC", 37.0),
        (70, "in", "cm", 177.8),
        (1.75, "m", "cm", 175.0),
        (154, "lb", "kg", 69.85322498),
        (2, "ng/mL", "pg/mL", 2000.0),
        (12.5, "ng/L", "pg/mL", 12.5),
        (1, "mg/dL", "mg/L", 10.0),
        (8.5, "g/dL", "g/L", 85.0),
        (3, "d", "h", 72.0),
        (90, "min", "h", 1.5),
        (0.35, "fraction", "%", 35.0),
        (250, "10^9", "10^11", 2.5),
    ],
)
def test_conversions(value: float, src: str, dst: str, expected: float) -> None:
    assert math.isclose(units.convert(value, src, dst), expected, rel_tol=1e-9)


def test_round_trip_is_exact_enough() -> None:
    for a, b in [("degF", "degC"), ("lb", "kg"), ("in", "cm"), ("/uL", "10^9/L"), ("mg/dL", "mg/L")]:
        for v in (0.1, 1.0, 37.3, 98.6, 12345.678):
            assert math.isclose(units.convert(units.convert(v, a, b), b, a), v, rel_tol=1e-12)


def test_expression_series_and_list_forms() -> None:
    df = pl.DataFrame({"plt": [15000, 20000, None]})
    out = df.select(units.convert(pl.col("plt"), "/uL", "10^9/L").alias("x"))
    assert out["x"].to_list() == [15.0, 20.0, None]
    assert df.select(units.convert("plt", "/uL", "10^9/L"))["plt"].to_list() == [15.0, 20.0, None]
    assert units.convert(pl.Series([212.0]), "degF", "degC").to_list() == [100.0]
    assert units.convert([212.0, None], "degF", "degC") == [100.0, None]


def test_errors() -> None:
    with pytest.raises(units.UnitError, match="unknown unit 'furlong'"):
        units.lookup("furlong")
    with pytest.raises(units.UnitError, match="different things"):
        units.convert(1.0, "kg", "cm")
    with pytest.raises(units.UnitError, match="different things"):
        units.convert(1.0, "pg/mL", "10^9/L")
    # "G/l" could be giga per litre or grams per litre: refuse to guess.
    with pytest.raises(units.UnitError, match="ambiguous"):
        units.lookup("G/l")
    with pytest.raises(units.UnitError):
        units.lookup("")
    assert units.is_known("G/L") and not units.is_known("furlong")


def test_registry_is_declared_with_sources() -> None:
    doc = yaml.safe_load((schemas_dir() / "units.yaml").read_text(encoding="utf-8"))
    reg = units.registry()
    for name, spec in doc["units"].items():
        assert spec.get("source"), f"unit {name} has no source"
        assert reg.lookup(name).name == name
    for dim, spec in doc["dimensions"].items():
        assert reg.units[spec["base"]].dimension == dim
        assert reg.units[spec["base"]].factor == 1 and reg.units[spec["base"]].offset == 0


def test_every_cdm_unit_is_known() -> None:
    cat = load_catalog()
    for table in cat.tables.values():
        for col in table.columns:
            if col.unit:
                assert units.is_known(col.unit), f"{table.name}.{col.name}: {col.unit}"
    for analyte, unit in cat.tables["labs"].extra["canonical_units"].items():
        assert units.is_known(unit), analyte


def test_conflicting_registry_is_rejected(tmp_path: Path) -> None:
    bad = tmp_path / "units.yaml"
    bad.write_text(
        "dimensions: {mass: {base: kg}, length: {base: cm}}\n"
        "units:\n"
        "  kg: {dimension: mass, factor: 1, aliases: [x], source: s}\n"
        "  cm: {dimension: length, factor: 1, aliases: [x], source: s}\n",
        encoding="utf-8",
    )
    with pytest.raises(units.UnitError, match="names both"):
        units.registry(bad)
