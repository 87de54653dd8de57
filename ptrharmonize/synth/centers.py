"""Multi-center demo data: one canonical truth per center, written in that center's own shape.

A center's shape is its mapping: for each mapping file (the shipped `mappings/*.yaml`, found by
listing the folder) the generator draws a canonical cohort of relapsed/refractory ALL patients
(CAR-T or salvage chemotherapy; platelet transfusions with pre/post counts, daily lab series,
CRS assessments, bleeding, medications, infections, outcomes), rounds it to what the center's
files can say (`invert.quantize`), writes it as a canonical extract (`truth/<center>/`), and
writes the same records the way the mapping reads them (`centers/<center>/`, by inverting the
mapping: `invert.py`, `render.py`, `writers.py`). Reading the center's files through its
mapping gives the truth back exactly (up to float rounding). A new demo center is one YAML file.

Everything is vectorised (numpy/polars); nothing loops over patients or lab rows in Python,
except writing Excel cells, which the writer requires.

`defects=True` plants one of each realistic defect (`defects.DEMO`, dealt over the centers) with
the one planter (`defects.py`), and lists each in `defects.json` with the file, sheet, source
row and column, the planted value, and the rule expected to catch it.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from ..cdm import load_catalog
from ..mapping import Mapping, load_mapping, parse_mapping
from ..paths import mappings_dir
from . import defects as planter
from .invert import Part, profile, quantize, source_of, split
from .render import Written, write_part
from .truth import generate_truth
from .writers import write_center

# =========================================================================================
# Driver
# =========================================================================================


def _write_truth(tables: dict[str, pl.DataFrame], folder: Path, fmt: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for table, df in tables.items():
        if fmt == "parquet":
            df.write_parquet(folder / f"{table}.parquet")
        else:
            df.write_csv(folder / f"{table}.csv", date_format="%Y-%m-%d", datetime_format="%Y-%m-%dT%H:%M:%S")


def _write_mapping(src: Path, key: str, center_id: str, original: str | None, out: Path) -> Path:
    text = src.read_text(encoding="utf-8")
    if center_id != original:
        text = re.sub(r"(?m)^center_id:.*$", f"center_id: {center_id}", text, count=1)
    dst = out / f"{key}.yaml"
    dst.write_text(text, encoding="utf-8")
    return dst


def demo_mappings(folder: Path | None = None) -> list[Path]:
    """The demo centers' shapes: every mapping file in the folder (the shipped `mappings/`)."""
    return sorted(Path(folder or mappings_dir()).glob("*.yaml"))


def _plant(parts: list[Part], names: list[str], key: str, center_id: str) -> list[dict[str, Any]]:
    """Plant each named defect in its table's first one-row-per-record part; list them."""
    listed = []
    for name in names:
        d = planter.CATALOG[name]
        part = next((p for p in parts if p.table == d.table and not p.wide and source_of(p, d.column)), None)
        if part is None or part.frame.height == 0:
            continue
        part.frame, hit = planter.plant_one(part.frame, d)
        if hit is None:
            continue
        listed.append({
            "center": key, "center_id": center_id, "file": part.block.file,
            "sheet": part.block.reader_options.get("sheet"), "row": part.first_row() + hit.index,
            "column": source_of(part, d.column), "table": d.table, "cdm_column": d.column,
            "rule_id": d.rule_id, "description": d.description,
            "value": None if hit.value is None else str(hit.value), "_at": (id(part), hit.index),
        })
    return listed


def _file_rows(listed: list[dict[str, Any]], written: list[Written]) -> list[dict[str, Any]]:
    """Each planted defect's row in the file as written (a REDCap records file interleaves its
    forms, so a part's row i is not the file's row first_row + i there)."""
    rows = {id(w.part): w.file_rows for w in written if w.file_rows is not None}
    for d in listed:
        part, index = d.pop("_at")
        if part in rows:
            d["row"] = rows[part][index]
    return listed


def split_patients(total: int, centers: int) -> list[int]:
    """`total` patients over `centers` centers, as evenly as possible (the first ones get the
    remainder): `ptrh synth centers --patients 50000 --centers 100` is 500 each."""
    if centers < 1 or total < centers:
        raise ValueError("at least one patient per center")
    return [total // centers + (1 if k < total % centers else 0) for k in range(centers)]


def _parsed(order: list[Path]) -> list[Mapping]:
    catalog = load_catalog()
    parsed = [parse_mapping(load_mapping(p), p, catalog) for p in order]
    for p, m in zip(order, parsed, strict=True):
        errors = [x for x in m.problems if x["level"] == "error"]
        if errors:
            raise ValueError(f"{p.name}: {errors[0]['where']}: {errors[0]['message']}")
    return parsed


def generate_centers(
    out: Path,
    patients_per_center: int | list[int] = 40,
    seed: int = 20240601,
    defects: bool = False,
    centers: int | None = None,
    truth_format: str = "csv",
    mappings: list[Path] | None = None,
    render_files: bool = True,
) -> dict[str, Any]:
    """Write `centers` demo centers (cycling through the mappings) under `out`.

    A center's shape is its mapping: the shipped `mappings/*.yaml` by default (a new demo center
    is one YAML file there). Layout: `centers/<key>/` the center's own files, `truth/<key>/` the
    canonical truth, `mappings/<key>.yaml` the mapping to read the center's files,
    `manifest.json`, and with `defects=True` also `defects.json` (one entry per planted defect).
    Returns the manifest. `render_files=False` writes only the truth (fast, for scale tests)."""
    order = [Path(p) for p in (mappings or demo_mappings())]
    centers = len(order) if centers is None else centers  # default: one center per mapping
    if centers < 1:
        raise ValueError("centers must be at least 1")
    sizes = [patients_per_center] * centers if isinstance(patients_per_center, int) else list(patients_per_center)
    if len(sizes) != centers or min(sizes) < 1:
        raise ValueError("patients_per_center must be at least 1 (one number, or one per center)")
    if truth_format not in ("csv", "parquet"):
        raise ValueError("truth_format is csv or parquet")
    if not order:
        raise ValueError("no mapping files to generate centers from")
    catalog = load_catalog()
    parsed = _parsed(order)
    out = Path(out)
    for sub in ("centers", "truth", "mappings"):
        if (out / sub).exists():
            shutil.rmtree(out / sub)
    (out / "mappings").mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {"seed": seed, "patients": sum(sizes), "patients_per_center": sizes, "centers": [],
                                "defects": []}
    for k in range(centers):
        src, mapping = order[k % len(order)], parsed[k % len(order)]
        base = profile(mapping, catalog)
        copy = k // len(order)
        key = src.stem if copy == 0 else f"{src.stem}_{copy + 1}"
        center_id = base.center_id if copy == 0 else f"{base.center_id}{copy + 1}"
        prefix = base.id_prefix if copy == 0 else f"{base.id_prefix}{copy + 1}"
        rng = np.random.default_rng([seed, k])
        truth = quantize(generate_truth(sizes[k], rng, base, center_id, prefix), mapping, catalog)
        _write_truth(truth, out / "truth" / key, truth_format)
        manifest["centers"].append({
            "key": key, "shape": src.stem, "center_id": center_id, "folder": f"centers/{key}", "truth": f"truth/{key}",
            "mapping": f"mappings/{key}.yaml", "rows": {t: df.height for t, df in truth.items()},
        })
        if not render_files:
            continue
        _write_mapping(src, key, center_id, base.center_id, out / "mappings")
        parts = split(truth, mapping, catalog)
        planted = []
        if defects and copy == 0:
            dealt = min(len(order), centers)
            planted = _plant(parts, [n for i, n in enumerate(planter.DEMO) if i % dealt == k], key, center_id)
        title = f"{mapping.center_id} registry export (de-identified)"
        written = [write_part(p, catalog) for p in parts]
        write_center(written, out / "centers" / key, title)
        manifest["defects"] += _file_rows(planted, written)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
    if defects:
        (out / "defects.json").write_text(json.dumps(manifest["defects"], indent=2, ensure_ascii=False), encoding="utf-8")
    return manifest
