"""A validation kept for the ingest that follows it: `ptrh validate --stage DIR`, then
`ptrh ingest --stage DIR` stores what was checked without parsing the files a second time.

A kept validation is the engine's typed Parquet stage, its issue table and its rule counts, in
`DIR/<key>/`. The key is a checksum of the submission's files and mapping, of every file under
`schemas/` and of the ptrh version: the ingest recomputes it from the files as they are now, so a
file edited after `validate`, another mapping or other rules find no kept validation and are
validated afresh. The staged files' own checksums are verified before use (a damaged stage is
never stored), and the manifest that lists them is sealed with a key kept outside the stage
(ptrharmonize/stage_seal.py), so an edit that rewrote a checksum too is caught. Tolerances are not part of the key: the ingest re-applies its own thresholds to
the kept counts, exactly as the engine would.

A submission in which an identifier was found is not kept: identifiers are never copied.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import polars as pl

from .. import __version__
from ..checksums import rules_checksum, sha256_file, submission_checksums
from ..errors import UserError
from ..stage_seal import seal, sealed
from ..submission import Submission
from .engine import Engine
from .result import ValidationResult

FORMAT = 1
LEFTOVER_AFTER_S = 6 * 3600
MANIFEST = "manifest.json"

@dataclass
class Kept:
    """What a lookup found: the validation (None when there is none to use) and why not."""

    result: ValidationResult | None
    submission: Submission
    checksums: tuple[dict[str, str], str | None, str]  # as checksums.submission_checksums gives them
    created_at: str | None = None
    reason: str | None = None


def submission_files(path: Path, mapping: Path | None) -> list[Path]:
    """The files a submission consists of, found without reading them."""
    if mapping is not None:
        from ..mapping import mapped_files

        return mapped_files(mapping, path)
    from ..read.canonical import canonical_files

    return list(canonical_files(Path(path)).values())


def stage_key(content_checksum: str, rules_sum: str) -> str:
    import hashlib

    return hashlib.sha256(f"{FORMAT}|{__version__}|{rules_sum}|{content_checksum}".encode()).hexdigest()[:32]


def _prepare(stage_dir: Path) -> Path:
    stage_dir = Path(stage_dir)
    if stage_dir.exists() and not stage_dir.is_dir():
        raise UserError(f"{stage_dir}: --stage must name a folder")
    try:
        stage_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{stage_dir}: cannot create the stage folder ({exc.strerror})") from None
    # A validate that was killed leaves its half-written folder behind: remove those old enough
    # that no running validate can still be writing them.
    now = time.time()
    for leftover in [*stage_dir.glob(".partial-*"), *stage_dir.glob(".old-*")]:
        try:
            if leftover.is_dir() and now - leftover.stat().st_mtime > LEFTOVER_AFTER_S:
                shutil.rmtree(leftover, ignore_errors=True)
        except OSError:
            pass
    return stage_dir


def validate_and_keep(engine: Engine, sub: Submission, stage_dir: Path) -> tuple[ValidationResult, Path | None]:
    """Validate `sub` with its stage written under `stage_dir`; keep it there when it may be kept.

    Returns the result and the folder it was kept in (None when it was not: an identifier was
    found). The caller's `result.cleanup()` removes a stage that was not kept."""
    stage_dir = _prepare(stage_dir)
    files, mapping_sum, content = submission_checksums(sub.files, sub.source_path, sub.mapping_file)
    rules_sum = rules_checksum()
    key = stage_key(content, rules_sum)
    tmp = stage_dir / f".partial-{uuid.uuid4().hex}"
    try:
        result = engine.validate(sub, workdir=tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    phi_ids = [r.id for r in engine.rules if r.engine == "phi"]
    phi_found = bool(result.rules.filter(pl.col("rule_id").is_in(phi_ids) & (pl.col("failed") > 0)).height)
    if phi_found:
        result._owns_workdir = True  # noqa: SLF001 - the caller's cleanup removes it
        return result, None
    try:
        result.issues.write_parquet(tmp / "issues.parquet")
        result.rules.write_parquet(tmp / "rules.parquet")
        if result.collection is not None:
            result.collection.write_parquet(tmp / "collection.parquet")
        manifest = {
            "format": FORMAT,
            "ptrh_version": __version__,
            "key": key,
            "created_at": datetime.now().isoformat(timespec="seconds"),
            "submission": str(sub.source_path),
            "mapping": str(sub.mapping_file) if sub.mapping_file else None,
            "content_checksum": content,
            "files": files,
            "mapping_checksum": mapping_sum,
            "rules_checksum": rules_sum,
            "center_id": result.center_id,
            "rows": result.rows,
            "staged": {t: {"file": p.name, "sha256": sha256_file(p)} for t, p in result.staged.items()},
            "kept": {name: sha256_file(tmp / name) for name in ("issues.parquet", "rules.parquet",
                                                                "collection.parquet")
                     if (tmp / name).is_file()},
        }
        (tmp / MANIFEST).write_text(json.dumps(seal(manifest), indent=1), encoding="utf-8")
        final = stage_dir / key
        old = None
        if final.exists():
            old = stage_dir / f".old-{uuid.uuid4().hex}"
            os.replace(final, old)
        try:
            os.replace(tmp, final)
        except OSError:
            if not final.exists():
                raise
            # Another `validate` of the same files kept the same thing meanwhile: keep theirs.
            shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    result.workdir = final
    result.staged = {t: final / p.name for t, p in result.staged.items()}
    return result, final


def find_kept(engine: Engine, path: Path, mapping: Path | None, stage_dir: Path) -> Kept:
    """The kept validation of this submission as its files are now, with this engine's thresholds."""
    files = submission_files(path, mapping)
    checks = submission_checksums(files, Path(path), mapping)
    content = checks[2]
    light = Submission(tables={}, source_path=Path(path), files=files, mapping_file=mapping)
    folder = Path(stage_dir) / stage_key(content, rules_checksum())
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        return Kept(None, light, checks, reason="no validation of these files (as they are now, under these rules) "
                                                 "is kept there")
    try:
        m = json.loads(manifest_path.read_text(encoding="utf-8"))
        names = [*m["kept"], *(s["file"] for s in m["staged"].values())]
        if any(not isinstance(n, str) or Path(n).name != n or n in ("", ".", "..") for n in names):
            # The kept files sit in the folder itself; a manifest naming anything else was not
            # written by validate and is not followed.
            raise ValueError("manifest names a file outside its folder")
        kept = {name: folder / name for name in m["kept"]}
        staged = {t: folder / s["file"] for t, s in m["staged"].items()}
        expected = {**{folder / n: s for n, s in m["kept"].items()},
                    **{folder / s["file"]: s["sha256"] for s in m["staged"].values()}}
        damaged = [p.name for p, s in expected.items() if not p.is_file() or sha256_file(p) != s]
        if damaged or m.get("content_checksum") != content:
            return Kept(None, light, checks, reason=f"the kept validation is damaged ({', '.join(damaged) or 'manifest'} "
                                                    "changed since it was written)")
        if not sealed(m):
            # Checksums in the folder prove nothing against an edit that rewrote them too.
            return Kept(None, light, checks, reason="the kept validation's seal does not match (its manifest was "
                                                    "edited, or it was kept by another user or machine)")
        issues = pl.read_parquet(kept["issues.parquet"], glob=False)
        rules = engine.rules_from_counts(pl.read_parquet(kept["rules.parquet"], glob=False), m["center_id"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError, pl.exceptions.PolarsError) as exc:
        return Kept(None, light, checks, reason=f"the kept validation cannot be read ({type(exc).__name__})")
    if rules is None:
        return Kept(None, light, checks, reason="the kept validation was made under other rules")
    light.center_id = m["center_id"]
    result = ValidationResult(issues=issues, rules=rules, rows={k: int(v) for k, v in m["rows"].items()},
                              staged=staged, center_id=m["center_id"], workdir=folder, _owns_workdir=False,
                              collection=(pl.read_parquet(kept["collection.parquet"], glob=False)
                                          if "collection.parquet" in kept else None))
    return Kept(result, light, checks, created_at=m.get("created_at"))
