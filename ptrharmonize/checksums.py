"""Checksums that identify a submission: its files and its mapping, whatever the folder is called.

The store keeps them to tell "the same submission again" from a new one, and a kept validation
(`ptrh validate --stage`) is found again by them, so a file changed in between is never
mistaken for the one that was checked.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

from .paths import folder_checksum, schemas_dir


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def submission_checksums(files: Iterable[Path], source_path: Path,
                         mapping_file: Path | None) -> tuple[dict[str, str], str | None, str]:
    """(checksum of each file by its path inside the submission, of the mapping, of it all)."""
    sums = {}
    for f in sorted(files, key=lambda p: str(p)):
        try:
            rel = str(Path(f).relative_to(source_path))
        except ValueError:
            rel = Path(f).name
        sums[rel] = sha256_file(f)
    mapping = sha256_file(mapping_file) if mapping_file else None
    content = hashlib.sha256(json.dumps([sums, mapping], sort_keys=True).encode()).hexdigest()
    return sums, mapping, content


def rules_checksum() -> str:
    """One checksum over every declarative file under schemas/ (tables, rules, definitions,
    units...): a validation kept under other rules is not the validation of these rules."""
    return folder_checksum(schemas_dir())
