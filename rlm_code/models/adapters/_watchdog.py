"""`WATCHDOG`: one daemon thread that runs callbacks at deadlines. The blocking transport
uses it to shut a socket down when a call's deadline passes while a read is blocked (a
blocked `recv` cannot be interrupted otherwise)."""

from __future__ import annotations

import contextlib
import heapq
import itertools
import threading
import time
from collections.abc import Callable
from typing import Any


class Watchdog:
    """One daemon thread that runs callbacks at deadlines (shutting a blocked socket down).

    A thread per call would cost more than the call; entries are cancelled lazily."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[list[Any]] = []
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None
        self._cancelled = 0

    def arm(self, when: float, action: Callable[[], None]) -> list[Any]:
        entry = [when, next(self._ids), action]
        with self._cond:
            heapq.heappush(self._heap, entry)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="rlm-watchdog", daemon=True)
                self._thread.start()
            if self._heap[0] is entry:
                self._cond.notify()
        return entry

    def cancel(self, entry: list[Any]) -> None:
        with self._cond:
            if entry[2] is None:
                return
            entry[2] = None
            self._cancelled += 1
            if self._cancelled > 256 and self._cancelled * 2 > len(self._heap):
                self._heap = [e for e in self._heap if e[2] is not None]
                heapq.heapify(self._heap)
                self._cancelled = 0

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    wait = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._cond.wait(wait)
                entry = heapq.heappop(self._heap)
                action, entry[2] = entry[2], None
                if action is None:
                    self._cancelled = max(0, self._cancelled - 1)
            if action is not None:
                with contextlib.suppress(Exception):
                    action()


WATCHDOG = Watchdog()
