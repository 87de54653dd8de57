"""User-facing failures: a clear message naming file, row and column, exit code 2, no traceback."""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console
from rich.markup import escape


class UserError(Exception):
    """Something the user can fix (a path, an option, a file): shown as one line, exit 2."""


def fail(console: Console, message: str) -> None:
    console.print(f"[bold red]error:[/bold red] {escape(message)}", soft_wrap=True)


def run_guarded(body: Callable[[], int], console: Console) -> int:
    """Run a command body; turn every expected failure into a message and exit code 2."""
    from .read import ReadError

    try:
        return body()
    except (UserError, ReadError) as exc:
        fail(console, str(exc))
        return 2
    except (OSError, UnicodeError, ValueError) as exc:
        fail(console, f"{type(exc).__name__}: {exc}")
        return 2
    except MemoryError:
        fail(console, "out of memory while processing the submission")
        return 2
    except Exception as exc:  # noqa: BLE001 - the last line of defence: never a traceback
        import os

        if os.environ.get("PTRH_DEBUG"):
            raise
        fail(console, f"unexpected {type(exc).__name__}: {exc} (set PTRH_DEBUG=1 for details)")
        return 2
