"""Every reader runs bounded in time and memory, in a child process (issue 23).

The readers are Rust (polars, calamine) and C (pyreadstat, zlib) code: a Python thread cannot
interrupt them, and a hostile file can make them allocate without end, loop, or panic (a damaged
Parquet page makes polars panic, which Python sees as a `BaseException`). So the reader call
runs in a child process forked from a small server (multiprocessing's forkserver, with polars
and the readers already imported: a fork costs milliseconds, not an interpreter start) under

- a memory cap of `reader_max_memory_mb` (schemas/limits.yaml, `PTRH_READER_MAX_MEMORY_MB`):
  the parent reads the child's resident memory every 20 ms and kills it when it exceeds the
  server's own (~80 MB of interpreter, polars and readers that the fork shares) by the cap, with
  `RLIMIT_AS` at twice the cap + 4 GB as a backstop for an allocation faster than that, and
- a wall clock of `reader_max_seconds` (`PTRH_READER_MAX_SECONDS`): the parent kills the child.

The child writes what the reader returned to an Arrow IPC file in the readers' scratch folder
(streamed when the reader returned a LazyFrame, so memory stays bounded); the parent scans it
(`pl.scan_ipc` for a LazyFrame, kept until the process ends; a DataFrame is read whole and its
file deleted), so the rest of the pipeline is unchanged. A limit hit, a panic or any failure of the child is a `ReadError`
naming the file (exit 2); the Rust panic text goes to the child's stderr, which is discarded.

With both limits 0 the reader runs in the process itself (no bound; a panic is then caught only
by the command guard, without the file's name).

`bounded(display, fn, *args)` is a thin wrapper around one reader call; inside the child it
calls `fn` directly, so nested reader calls are not bounded twice.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from . import ReadError

_IN_CHILD = False
_CTX_LOCK = threading.Lock()
_CTX: Any = None
# The test-only checkpoint hook lives in ingest; the child needs no environment but the PTRH_*
# limits and options, which are copied at each call (the server's environment is its start's).
_ENV_PREFIX = "PTRH_"


# A Unix socket path holds at most 107 bytes (sun_path); multiprocessing puts the forkserver's
# socket at <TMPDIR>/pymp-XXXXXXXX/listener-XXXXXXXX (~36 bytes more).
_SOCKET_PATH_MAX = 107
_SOCKET_SUFFIX = len("/pymp-xxxxxxxx/listener-xxxxxxxx")


def _short_socket_folder() -> None:
    """Put multiprocessing's socket folder where its path fits a Unix socket. Python 3.11 makes
    it under TMPDIR and fails with "AF_UNIX path too long" when TMPDIR is long (a CI job's, a
    test's), which would make every read fail; 3.12 falls back to /tmp itself. Only the socket
    folder moves: the readers' scratch files stay under TMPDIR."""
    import shutil
    import tempfile
    from multiprocessing import util

    config = mp.current_process()._config  # noqa: SLF001 - where get_temp_dir() keeps its folder
    if config.get("tempdir") or len(tempfile.gettempdir()) + _SOCKET_SUFFIX <= _SOCKET_PATH_MAX:
        return
    for base in ("/tmp", "/var/tmp", "/dev/shm"):
        if os.path.isdir(base) and os.access(base, os.W_OK | os.X_OK):
            folder = tempfile.mkdtemp(prefix="pymp-", dir=base)
            config["tempdir"] = folder
            util.Finalize(None, shutil.rmtree, args=(folder,), kwargs={"ignore_errors": True},
                          exitpriority=-100)
            return


def _context() -> Any:
    global _CTX
    with _CTX_LOCK:
        if _CTX is None:
            _short_socket_folder()
            ctx = mp.get_context("forkserver")
            # Imported once in the server, before any polars thread exists, so every fork is cheap
            # and safe (polars' thread pools start lazily, in the child).
            ctx.set_forkserver_preload(["ptrharmonize.read.bounded", "ptrharmonize.mapping.readers",
                                        "ptrharmonize.read.csv", "ptrharmonize.read.excel",
                                        "ptrharmonize.read.spss", "ptrharmonize.read.parquet",
                                        "ptrharmonize.read.redcap", "ptrharmonize.limits", "ptrharmonize.errors",
                                        "pyreadstat", "openpyxl", "olefile"])
            _CTX = ctx
        return _CTX


def warm() -> None:
    """Start the reader server now, in the background (~1 s of imports in its own process), so
    that the first file does not wait for it. Called when a command knows it will read files."""
    try:
        mem_mb, seconds = limits()
    except Exception:  # noqa: BLE001 - a bad limit is reported by the first reader call, in the guard
        return
    if _IN_CHILD or (mem_mb <= 0 and seconds <= 0) or "forkserver" not in mp.get_all_start_methods():
        return

    def start() -> None:
        from multiprocessing import forkserver

        _context()
        try:
            forkserver.ensure_running()
        except Exception:  # noqa: BLE001 - the first reader call starts it again and reports
            pass

    threading.Thread(target=start, name="ptrh-reader-server", daemon=True).start()


def _start(proc: Any) -> None:
    """Start `proc` without the main module: multiprocessing would re-run the program's
    `__main__` (the CLI, or pytest) in every child before the reader starts, ~1 s each. The
    reader functions live in modules the server has imported, so the child needs nothing else."""
    from multiprocessing import spawn

    with _CTX_LOCK:
        original = spawn.get_preparation_data

        def preparation(name: str) -> dict[str, Any]:
            data = original(name)
            data.pop("init_main_from_name", None)
            data.pop("init_main_from_path", None)
            return data

        spawn.get_preparation_data = preparation
        try:
            proc.start()
        finally:
            spawn.get_preparation_data = original


def limits() -> tuple[float, float]:
    """(memory in MB, seconds); 0 means no limit of that kind."""
    from ..limits import limit

    return float(limit("reader_max_memory_mb")), float(limit("reader_max_seconds"))


def _child(conn: Any, out: str, scratch: str, env: dict[str, str], where: tuple[Any, str], mem_mb: float,
           fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
           retry: dict[str, Any] | None) -> None:
    """In the child: limits, then the reader, then its result to `out` (Arrow IPC)."""
    global _IN_CHILD
    _IN_CHILD = True
    import resource
    import tempfile

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)  # a Rust panic prints its backtrace here; the parent reports it
    except OSError:
        pass
    for k in [k for k in os.environ if k.startswith(_ENV_PREFIX)]:
        del os.environ[k]
    os.environ.update(env)
    from .. import limits as limits_mod
    from .. import paths

    paths.set_registry(where[0])
    try:
        os.chdir(where[1])
    except OSError:
        pass
    limits_mod._file_limits.cache_clear()
    from . import encoding

    encoding._TMPDIR = tempfile.TemporaryDirectory(prefix="child-", dir=scratch)
    try:
        if mem_mb > 0:
            # A backstop only: the parent kills the child when its resident memory passes the cap
            # (address space is not memory: polars and its threads reserve ~1 GB before they read
            # a byte, so a tight RLIMIT_AS fails at random); this catches an allocation too fast
            # for the parent's polling.
            cap = int((mem_mb * 2 + 4096) * 1024 * 1024)
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        result = fn(*args, **kwargs)
        if isinstance(result, pl.LazyFrame):
            kind = "lazy"
            try:
                result.sink_ipc(out, compression=_SCRATCH_COMPRESSION)
            except pl.exceptions.PolarsError:
                if retry is None:
                    raise
                # A streamed file that fails (a ragged row, a cell too long): the eager reader
                # raises the ReadError that names the row and column.
                fn(*args, **{**kwargs, **retry}).write_ipc(out, compression=_SCRATCH_COMPRESSION)
        else:
            result.write_ipc(out, compression=_SCRATCH_COMPRESSION)
            kind = "frame"
        conn.send(("ok", kind))
    except ReadError as exc:
        conn.send(("read", exc.file, exc.row, exc.column, exc.message))
    except MemoryError:
        conn.send(("memory",))
    except BaseException as exc:  # noqa: BLE001 - a panic too: the parent decides what to say
        from ..errors import UserError, library_message

        if isinstance(exc, UserError):
            conn.send(("user", str(exc)))
        else:
            conn.send(("fail", type(exc).__name__, library_message(exc)))
    finally:
        encoding._TMPDIR.cleanup()


# The child's Arrow file, read back by `scan_ipc`: uncompressed, polars memory-maps it and every
# page read stays in the process's resident set until it ends (file-backed, but counted: a 4.5 M
# lab-row extract held ~760 MB of it while staged, issue 22); LZ4-compressed, each batch is
# decoded as it streams and its memory freed, and the file is several times smaller.
_SCRATCH_COMPRESSION = "lz4"

_MEMORY_HINTS = ("memory allocation", "could not spawn threads", "Cannot allocate memory", "out of memory",
                 "capacity overflow", "os error 12", "Resource temporarily unavailable")


def bounded(display: str, fn: Callable[..., Any], *args: Any, retry_eager: dict[str, Any] | None = None,
            **kwargs: Any) -> Any:
    """`fn(*args, **kwargs)` (a reader returning a polars DataFrame or LazyFrame) in a bounded
    child process; the same kind of frame back, read from the child's Arrow IPC file. When a
    returned LazyFrame fails while it streams, `fn` is called again with `retry_eager` merged
    into its keywords (e.g. `{"lazy": False}`), so that the reader's own error names the place."""
    if _IN_CHILD:
        return fn(*args, **kwargs)
    mem_mb, seconds = limits()
    if (mem_mb <= 0 and seconds <= 0) or "forkserver" not in mp.get_all_start_methods():
        # Both limits off, or a platform without fork (Windows): the reader runs here, unbounded.
        return fn(*args, **kwargs)
    from .encoding import temp_dir

    scratch = temp_dir()
    import tempfile

    fd, out = tempfile.mkstemp(suffix=".arrow", dir=scratch)
    os.close(fd)
    env = {k: v for k, v in os.environ.items() if k.startswith(_ENV_PREFIX)}
    from .. import paths

    # The registry in use (`--registry`, or the folder found from the working directory) decides
    # which limits.yaml the reader's own limits (sheet extent) come from: the child uses the same.
    where = (paths._explicit_registry, os.getcwd())
    ctx = _context()
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(send, out, str(scratch), env, where, mem_mb, fn, args, kwargs, retry_eager), daemon=True)
    started = time.monotonic()
    _start(proc)
    send.close()
    msg: tuple[Any, ...] | None = None
    over: str | None = None
    try:
        msg, over = _wait(proc, recv, started, seconds, mem_mb, _server_mb())
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join()
        recv.close()
    if over == "time":
        Path(out).unlink(missing_ok=True)
        raise ReadError(display, message=f"reading this file took longer than the limit of {seconds:g} s "
                        "(reader_max_seconds in schemas/limits.yaml, or PTRH_READER_MAX_SECONDS); "
                        "check that it is the file meant, or raise the limit")
    if over == "memory":
        msg = ("memory",)
    if msg is None or msg[0] != "ok":
        Path(out).unlink(missing_ok=True)
        raise _failure(display, msg, proc.exitcode, mem_mb)
    if msg[1] == "lazy":
        return pl.scan_ipc(out, glob=False)  # the scratch file stays until the process ends
    try:
        return pl.scan_ipc(out, glob=False).collect()
    finally:
        Path(out).unlink(missing_ok=True)


POLL_SECONDS = 0.02  # how often the parent looks at the child's resident memory


def _resident_mb(pid: int) -> float:
    """The child's resident memory (VmRSS) in MB; 0 when it has gone."""
    try:
        with open(f"/proc/{pid}/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0.0


def _server_mb() -> float:
    """The reader server's resident memory: a forked child starts with it (the interpreter, polars
    and the readers, ~80 MB, shared with the server), so the cap counts what the reader adds."""
    from multiprocessing import forkserver

    pid = getattr(getattr(forkserver, "_forkserver", None), "_forkserver_pid", None)
    return _resident_mb(pid) if pid else 0.0


def _wait(proc: Any, recv: Any, started: float, seconds: float, mem_mb: float,
          base_mb: float) -> tuple[Any, str | None]:
    """Wait for the child's message, killing it when it passes the wall clock or when its resident
    memory passes the server's (`base_mb`) by more than the cap.
    Returns (message or None, None | "time" | "memory")."""
    while True:
        wait = POLL_SECONDS if seconds <= 0 else max(0.0, min(POLL_SECONDS, started + seconds - time.monotonic()))
        if recv.poll(wait):
            try:
                msg = recv.recv()
            except (EOFError, OSError):
                return None, None  # the child died without a word (aborted, killed by the kernel)
            if seconds > 0 and time.monotonic() - started > seconds:
                return None, "time"  # it answered, but after the limit: the limit holds whatever the polling
            return msg, None
        if seconds > 0 and time.monotonic() - started >= seconds:
            proc.kill()
            return None, "time"
        if mem_mb > 0 and _resident_mb(proc.pid) - base_mb > mem_mb:
            proc.kill()
            return None, "memory"


def _failure(display: str, msg: tuple[Any, ...] | None, exitcode: int | None, mem_mb: float) -> Exception:
    from ..errors import UserError

    limit_text = (f"the limit of {mem_mb:g} MB (reader_max_memory_mb in schemas/limits.yaml, or "
                  "PTRH_READER_MAX_MEMORY_MB)")
    if msg is not None and msg[0] == "read":
        return ReadError(msg[1], msg[2], msg[3], msg[4])
    if msg is not None and msg[0] == "user":
        return UserError(msg[1])
    if msg is not None and msg[0] == "memory" or (
            msg is not None and msg[0] == "fail" and mem_mb > 0 and any(h in msg[2] for h in _MEMORY_HINTS)):
        return ReadError(display, message=f"reading this file needs more memory than {limit_text}; "
                         "check that it is the file meant, or raise the limit")
    if msg is not None and msg[0] == "fail":
        what = "the reader panicked" if msg[1] == "PanicException" else f"the reader failed ({msg[1]})"
        return ReadError(display, message=f"{what}: {msg[2]}; the file may be damaged: export it again")
    how = f"signal {-exitcode}" if exitcode is not None and exitcode < 0 else f"exit code {exitcode}"
    hint = f"; it may need more memory than {limit_text}" if mem_mb > 0 else ""
    return ReadError(display, message=f"the reader stopped ({how}) while reading this file{hint}; "
                     "the file may be damaged: export it again")
