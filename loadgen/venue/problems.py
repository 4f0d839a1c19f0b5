"""The venue's log of its own failures, at a bounded rate: one line per class per interval.

A handler bug hit by every request of a load test must not write a traceback per request (a
RecursionError's is ~200 KB): the first of each class (where, exception type) gets one line
naming the exception and the frame it came from, later ones are counted and reported with the
next line of that class, at most one per INTERVAL_S. The classes are bounded by the code (a
handler name and an exception type), so the table is too.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable

INTERVAL_S = 10.0
MESSAGE_CHARS = 200  # of the exception's text: it may quote a peer's input


class Problems:
    def __init__(
        self,
        log: logging.Logger,
        interval: float = INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log = log
        self.interval = interval
        self.clock = clock
        self._next: dict[tuple[str, str], float] = {}
        self._suppressed: dict[tuple[str, str], int] = {}
        self.total = 0

    def report(self, where: str, exc: BaseException) -> None:
        """Count one failure; log it unless one of its class was logged within the interval."""
        self.total += 1
        key = (where, type(exc).__name__)
        now = self.clock()
        if now < self._next.get(key, 0.0):
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return
        self._next[key] = now + self.interval
        more = self._suppressed.pop(key, 0)
        frames = traceback.extract_tb(exc.__traceback__)
        at = f" at {frames[-1].filename}:{frames[-1].lineno} in {frames[-1].name}" if frames else ""
        since = f" (and {more} more since the last line of this kind)" if more else ""
        text = str(exc)[:MESSAGE_CHARS]
        self.log.error("%s failed: %s: %s%s%s", where, key[1], text, at, since)
