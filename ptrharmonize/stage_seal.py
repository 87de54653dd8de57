"""A kept validation's seal: an HMAC of its manifest with a key that is not in the stage folder.

The manifest lists the SHA-256 of every kept file, so a damaged file is caught; but someone who
edits a staged file could rewrite its checksum in the manifest too (issue 23: "a tampered
`--stage` folder is trusted"). The manifest is therefore sealed with HMAC-SHA256 under a key kept
outside the stage, in `$PTRH_STAGE_KEY` or `~/.config/ptrharmonize/stage.key` (created 0600 on
first use, without following links). A kept validation whose seal does not match (edited, or
kept by another user or machine) is validated afresh, never stored as is.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path
from typing import Any

SEAL_FIELD = "seal"


def key_path() -> Path:
    env = os.environ.get("PTRH_STAGE_KEY")
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "ptrharmonize" / "stage.key"


def _key(create: bool) -> bytes | None:
    path = key_path()
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        if not create:
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            os.write(fd, secrets.token_hex(32).encode())
            os.close(fd)
        except FileExistsError:
            pass  # another process created it meanwhile
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        key = os.read(fd, 4096).strip()
    finally:
        os.close(fd)
    return key or None


def _digest(key: bytes, manifest: dict[str, Any]) -> str:
    body = {k: v for k, v in manifest.items() if k != SEAL_FIELD}
    return hmac.new(key, json.dumps(body, sort_keys=True).encode(), hashlib.sha256).hexdigest()


def seal(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest with its seal (unchanged, unsealed, when no key can be kept: then it is
    never trusted later, only validated again)."""
    key = _key(create=True)
    return {**manifest, SEAL_FIELD: _digest(key, manifest)} if key else dict(manifest)


def sealed(manifest: dict[str, Any]) -> bool:
    key = _key(create=False)
    got = manifest.get(SEAL_FIELD)
    return bool(key) and isinstance(got, str) and hmac.compare_digest(got, _digest(key, manifest))
