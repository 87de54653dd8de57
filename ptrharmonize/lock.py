"""One writer at a time: an advisory lock file beside the store.

DuckDB refuses a second writing process with an error of its own; the lock turns that race
into a clear message ("another ingest is running") before any work is done, and it is
released by the kernel when the process dies, even on SIGKILL.
"""

from __future__ import annotations

import fcntl
import os
import stat
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
        fd = self._open()
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

    def _open(self) -> int:
        """The lock file, opened without following a symbolic link (a link planted at
        `<store>.lock` would have its target truncated) and only when it is a regular file."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), 0o644)
        except OSError as exc:
            if self.path.is_symlink():
                raise UserError(f"{self.path}: the store's lock file is a symbolic link; remove it "
                                "(ptrh creates the lock file itself)") from None
            raise UserError(f"{self.path}: cannot create the store's lock file ({exc.strerror})") from None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink > 1:
            # A hard link is another file's content too: writing the pid would overwrite it.
            os.close(fd)
            raise UserError(f"{self.path}: the store's lock file is not a plain file of its own "
                            "(a device, a pipe or a hard link); remove it")
        return fd

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
