"""Rounds: many sequential algorithms, one network round for all their pending requests.

A federated fit is a chain of requests (a Newton step needs the previous one's answer), but
the study runs many independent chains: every candidate model of a forward-selection step,
each profile-likelihood limit of Firth's fit. Each chain runs as ordinary sequential code in
its own thread and calls `Rounds.call(request)`; the coordinator's loop waits until every
running chain is blocked on a request, sends all of them to the nodes as one round, and hands
each chain its answer. The number of rounds is then the length of the longest chain, not the
sum, and each chain computes exactly what it would alone (the answers do not depend on the
batching), so the results are deterministic.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Rounds:
    def __init__(self, evaluate: Callable[[list[Any]], Sequence[Any]]) -> None:
        """`evaluate(requests) -> answers` is one network round (answers in request order; an
        answer that is an exception is raised in the chain that asked)."""
        self.evaluate = evaluate
        self.rounds = 0
        self._cv = threading.Condition()
        self._running = 0
        self._pending: list[tuple[list[Any], Any]] = []
        self._done = True

    def call(self, request: Any) -> Any:
        """From inside `run`/`map`: send a request with the next round, return its answer."""
        slot: list[Any] = []
        with self._cv:
            self._pending.append((slot, request))
            self._running -= 1
            self._cv.notify_all()
            while not slot:
                self._cv.wait()
        if isinstance(slot[0], BaseException):
            raise slot[0]
        return slot[0]

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """fn over items, each in its own chain; returns in order (the first error re-raised)."""
        items = list(items)
        if len(items) <= 1:
            return [fn(x) for x in items]
        out: list[Any] = [None] * len(items)
        errors: list[BaseException] = []

        def work(i: int, x: T) -> None:
            try:
                out[i] = fn(x)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
                errors.append(exc)
            finally:
                with self._cv:
                    self._running -= 1
                    self._cv.notify_all()

        with self._cv:
            self._running += len(items) - 1  # the children run, this chain waits for them
        threads = [threading.Thread(target=work, args=(i, x), daemon=True)
                   for i, x in enumerate(items)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        with self._cv:
            self._running += 1
        if errors:
            raise errors[0]
        return out

    def run(self, fn: Callable[[], R]) -> R:
        """Run `fn` (which may call `call` and `map`) to the end, serving its rounds."""
        result: list[Any] = []

        def root() -> None:
            try:
                result.append(fn())
            except BaseException as exc:  # noqa: BLE001 - re-raised below
                result.append(exc)
            finally:
                with self._cv:
                    self._running -= 1
                    self._done = True
                    self._cv.notify_all()

        self._running, self._done = 1, False
        t = threading.Thread(target=root, daemon=True)
        t.start()
        while True:
            with self._cv:
                while not (self._done or (self._running == 0 and self._pending)):
                    self._cv.wait()
                if self._done and not self._pending:
                    break
                batch, self._pending = self._pending, []
            try:
                answers: Sequence[Any] = self.evaluate([r for _, r in batch])
                self.rounds += 1
            except BaseException as exc:  # noqa: BLE001 - handed to every waiting chain
                answers = [exc] * len(batch)
            with self._cv:
                for (slot, _), answer in zip(batch, answers, strict=True):
                    slot.append(answer)
                self._running += len(batch)
                self._cv.notify_all()
        t.join()
        if isinstance(result[0], BaseException):
            raise result[0]
        return result[0]
