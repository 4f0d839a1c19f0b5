"""Closed windows encoded off the request path: a cell at a time, in a greenlet of their own.

Why: encoding a window's HDR histograms takes milliseconds (2.1 ms for the 27 cells of a
three-protocol run, measured on a quiet core), and done in one go by whichever user closed the
second, it held every reply reader of the process that long. Replies that come in meanwhile
are read together, and a read's kernel receive stamp is that of its newest data (TCP merges
the segments queued on a socket and the merge keeps the newest stamp: measured on a loopback
pair, three writes 5 ms apart read together give the third's stamp to a 1-byte MSG_PEEK and to
the read alike): a stall reads as venue latency. gevent's monitor thread, run beside
`loadgen run` at 5,000 open-loop requests/s, named this encode as a greenlet that blocked the
hub for over 4 ms (three times in a 30 s run); encoded here, no greenlet blocked over 3 ms after
start-up. (It is not the whole of the wire-truth miss at that rate: the generator's core is
80-100% busy there, and queueing alone delays the reads.)

The pause between cells is a timer of a microsecond, not sleep(0): gevent runs a sleep(0)'s
switch as a callback before it next polls for I/O, so greenlets waiting on sockets (the reply
readers) would still wait for every cell; a timer lets one poll in between (the test holds a
socket reader to that). Windows still leave in the order they closed, and `drain` encodes what
is left at once (a run's end, a worker's last report). A window that fails to encode is
dropped with its error logged, never left to hold back the ones after it.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import Any

import gevent

from loadgen.metrics.recorder import Window

PAUSE_S = 1e-6  # a timer: the loop polls for I/O before it fires
log = logging.getLogger("loadgen")


def _yield() -> None:
    gevent.sleep(PAUSE_S)


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
            record = _encoded(queue[0], _yield)
            queue.popleft()  # no yield from here to done(): a kill finds the window queued
            if record is not None:
                self.done(record)

    def drain(self) -> None:
        """Every queued window encoded and handed over now, in order."""
        greenlet, self._greenlet = self._greenlet, None
        if greenlet is not None and greenlet is not gevent.getcurrent():
            greenlet.kill()  # paused inside a window at most: that window is still queued
        while self.queue:
            record = _encoded(self.queue.popleft(), None)
            if record is not None:
                self.done(record)


def _encoded(window: Window, pause: Callable[[], None] | None) -> dict[str, Any] | None:
    try:
        return window.encode(pause=pause)
    except Exception:  # a bug in a window's encoding: named, and the windows after it go on
        log.exception("loadgen: the window of second %s could not be encoded; left out", window.t)
        return None
