"""Where the declarative files live.

The schemas and mappings are top-level folders of the repository (the design card), not
package data, so that a registry can edit them without touching code. PTRH_SCHEMAS and
PTRH_MAPPINGS point elsewhere when a registry keeps its own copies.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def schemas_dir() -> Path:
    return Path(os.environ.get("PTRH_SCHEMAS", REPO_ROOT / "schemas"))


def mappings_dir() -> Path:
    return Path(os.environ.get("PTRH_MAPPINGS", REPO_ROOT / "mappings"))
