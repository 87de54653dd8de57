"""User-facing failures: a clear message naming file, row and column, exit code 2, no traceback."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import TypeVar

from rich.console import Console
from rich.markup import escape

T = TypeVar("T")


class UserError(Exception):
    """Something the user can fix (a path, an option, a file): shown as one line, exit 2."""


MAX_MESSAGE_CHARS = 2000  # a message is one line a person reads, whatever the input held
LIBRARY_MESSAGE_CHARS = 600

# Text a library quotes from the data in its error messages: `...`, "..." or '...' spans, and
# bracketed value lists (polars: `could not parse "..."`, `[-1, ...]`).
_UNQUOTED = re.compile(r"[0-9][0-9 ./-]{5,}[0-9Xx]|\S+@\S+")
_QUOTED = re.compile(r"`[^`]*(?:`|$)|\"[^\"]*(?:\"|$)|'[^']*'|\[[^\]]*(?:\]|$)")


def one_line(message: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """A message as one line of at most `limit` characters (control characters removed)."""
    text = " ".join(message.split())
    text = "".join(ch for ch in text if ch.isprintable())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def library_message(exc: BaseException) -> str:
    """A third-party error (polars, DuckDB, ...) for the screen: its first line, with the spans it
    quotes from the data removed, because they may be cell values (identifiers included)."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    # Unquoted values too: long digit runs (ids, phone numbers) and e-mail addresses.
    first = _UNQUOTED.sub("[…]", _QUOTED.sub("[…]", first))
    return one_line(first, LIBRARY_MESSAGE_CHARS)


def fail(console: Console, message: str) -> None:
    """Print `error: <message>`; a console that cannot print it (a closed pipe, a rich formatting
    error) must not turn the message into a traceback, so the plain stream is the fallback."""
    text = one_line(message)
    try:
        console.print(f"[bold red]error:[/bold red] {escape(text)}", soft_wrap=True)
    except Exception:  # noqa: BLE001 - the last resort of the last line of defence
        import sys

        try:
            stream = console.file if console.file is not None else sys.stderr
            stream.write("error: " + text.encode("ascii", "backslashreplace").decode() + "\n")
        except Exception:  # noqa: BLE001
            pass


def run_guarded(body: Callable[[], int], console: Console, catch_interrupt: bool = True) -> int:
    """Run a command body; turn every expected failure into a message and exit code 2.

    The message is one line. Our own errors (UserError, and read.ReadError which is one) name
    the file, row and column and never quote a cell; an unexpected error from a library is shown without the
    values it quotes (they may come from the data). PTRH_DEBUG=1 re-raises, for a developer."""
    import os
    import sys

    from .paths import RegistryError

    try:
        code = body()
        sys.stdout.flush()  # a closed pipe shows here, inside the guard, not at exit
        return code
    except BrokenPipeError:
        # `ptrh ... | head`: the reader has gone; that is the reader's choice, not an error.
        _quiet_broken_pipe()
        return 0
    except (UserError, RegistryError) as exc:  # read.ReadError, cdm.CatalogError are UserErrors
        fail(console, str(exc))
        return 2
    except (OSError, UnicodeError, ValueError) as exc:
        if os.environ.get("PTRH_DEBUG"):
            raise
        ours = type(exc).__module__.split(".")[0] in ("builtins", "ptrharmonize")
        fail(console, f"{type(exc).__name__}: {exc if ours else library_message(exc)}")
        return 2
    except MemoryError:
        fail(console, "out of memory while processing the submission")
        return 2
    except KeyboardInterrupt:
        if not catch_interrupt:
            raise
        # An ingest rolls its transaction back on the way out: the store is as it was, or (when
        # the interruption came after the commit) holds the new submission whole.
        fail(console, "interrupted")
        return 2
    except (SystemExit, GeneratorExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - the last line of defence: never a traceback
        # BaseException, not Exception: a Rust library's panic (polars, via pyo3) is a
        # PanicException, which derives from BaseException.
        if os.environ.get("PTRH_DEBUG"):
            raise
        kind = "internal error (a library panicked)" if type(exc).__name__ == "PanicException" else "unexpected"
        fail(console, f"{kind} {type(exc).__name__}: {library_message(exc)} (set PTRH_DEBUG=1 for details)")
        return 2


def _quiet_broken_pipe() -> None:
    """Point stdout at /dev/null so that Python's flush at exit does not raise again."""
    import os
    import sys

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def run_guarded_each(items: Iterable[T], body: Callable[[T], int], console: Console) -> int:
    """`body` on each item (a submission folder), as run_guarded: a failure of one is reported
    and the others still run; the exit code is the worst. Ctrl-C stops them all."""
    worst = 0
    for item in items:
        worst = max(worst, run_guarded(lambda item=item: body(item), console, catch_interrupt=False))
    return worst
