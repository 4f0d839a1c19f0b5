"""Closed windows encoded off the request path: a cell at a time, in a greenlet of their own.

Why: encoding a window's HDR histograms takes milliseconds (2.1 ms for the 27 cells of a
three-protocol run, measured on a quiet core), and done in one go by whichever user closed the
second, it held every reply reader of the process that long. Replies that come in meanwhile
are read together, and a read's kernel receive stamp is that of its newest data (TCP merges
the segments queued on a socket and the merge keeps the newest stamp, so not even a peek gets
the older ones back): a stall reads as venue latency. gevent's monitor thread, run beside
`loadgen run` at 5,000 open-loop requests/s, named this encode as a greenlet that blocked the
hub for over 4 ms (three times in a 30 s run); encoded here, no greenlet blocked over 3 ms after
start-up. (It is not the whole of the wire-truth miss at that rate: the generator's core is
80-100% busy there, and queueing alone delays the reads.)

Yielding between cells lets the readers in between. Windows still leave in the order they
closed, and `drain` encodes what is left at once (a run's end, a worker's last report).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import gevent

from loadgen.metrics.recorder import Window


def _yield() -> None:
    gevent.sleep(0)


class WindowEncoder:
    """Windows in, their encodings (Window.encode) out to `done`, in order."""

    def __init__(self, done: Callable[[dict[str, Any]], None]) -> None:
        self.done = done
        self.queue: deque[Window] = deque()
        self._greenlet: gevent.Greenlet | None = None

    def put(self, window: Window) -> None:
        self.queue.append(window)
        if self._greenlet is None or self._greenlet.dead:
            self._greenlet = gevent.spawn(self._run)

    def _run(self) -> None:
        queue = self.queue
        while queue:
            record = queue[0].encode(pause=_yield)
            queue.popleft()  # no yield from here to done(): a kill finds the window queued
            self.done(record)

    def drain(self) -> None:
        """Every queued window encoded and handed over now, in order."""
        if self._greenlet is not None:
            self._greenlet.kill()  # paused inside a window at most: that window is still queued
            self._greenlet = None
        while self.queue:
            self.done(self.queue.popleft().encode())
