"""Shared fixtures: generated extracts written to temporary folders (never real patient data)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from extract_factory import clean_rows, dirty_rows, write_extract  # noqa: E402


@pytest.fixture
def clean_extract(tmp_path: Path) -> Path:
    return write_extract(tmp_path / "clean", clean_rows())


@pytest.fixture
def dirty_extract(tmp_path: Path) -> Path:
    return write_extract(tmp_path / "dirty", dirty_rows())
