"""One writer at a time: an advisory lock file beside the store.

DuckDB refuses a second writing process with an error of its own; the lock turns that race
into a clear message ("another ingest is running") before any work is done, and it is
released by the kernel when the process dies, even on SIGKILL.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from .errors import UserError


class StoreLock:
    def __init__(self, store: Path, wait_s: float = 0.0) -> None:
        self.path = Path(str(store) + ".lock")
        self.wait_s = wait_s
        self._fd: int | None = None

    def __enter__(self) -> StoreLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise UserError(
                        f"{self.path.with_suffix('')}: another ptrh process is writing to this store; "
                        "try again when it has finished (or pass --wait SECONDS)"
                    ) from None
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
