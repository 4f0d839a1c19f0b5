"""Pipelining and the open loop, as the three clients share them: Pipelined queues operations
for one write; Dispatcher sends and returns at once, a reader greenlet per connection matching
the answers as they come, and a watchdog times out what is owed.

Compiled with the clients (native.COMPILED), whose base classes these are; net.py, below it,
stays Python (the tests stand in for its waits and stamps).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import gevent
from gevent import socket

from loadgen.outcome import Outcome


class Pipelined:
    """What the three clients share of pipelining: after begin(), operations queue; flush()
    (each client's own) sends the queue in one write and reads every answer. Without begin(),
    an operation is a queue of one, flushed at once."""

    _queued: list[Any] | None = None

    def begin(self) -> None:
        """Queue the operations called from now on; flush() sends them all in one write."""
        self._queued = []

    def _submit(self, entry: Any) -> Outcome | None:
        """Queue one operation (None), or, outside begin(), do it now (its Outcome)."""
        if self._queued is not None:
            self._queued.append(entry)
            return None
        self._queued = [entry]
        return self.flush()[0]

    def _take(self) -> list[Any]:
        """The queued operations, ending the queue."""
        queued, self._queued = self._queued or [], None
        return queued

    def flush(self) -> list[Outcome]:
        raise NotImplementedError


Done = Callable[[Outcome], None]  # where an open-loop operation's Outcome goes


class Dispatcher(Pipelined):
    """Open loop, the way algorithmic traders run: dispatch() sends the queued operations in one
    write and returns at once; a reader greenlet per connection matches the answers as they
    arrive (each client by its own key: HTTP order, req_id, ClOrdID) and hands each Outcome to
    the callback given with its operation (one for all of them, or a list, one each). A failed
    or silent connection (nothing for the client's timeout while answers are owed) ends; what
    it still owed gets that failure.

    Each client supplies dispatch(), _pump(sock) (one read, completing what it answers),
    in_flight() and _oldest() (the operations owed an answer, and when the oldest went) and
    _broken(failure, kind) (end the connection, fail them). Timeouts are the watchdog's.
    """

    _reader: gevent.Greenlet | None = None
    _reading: socket.socket | None = None  # the socket the reader serves
    timeout: float
    failures: tuple[type[BaseException], ...] = (OSError,)  # what ends a connection

    def dispatch(self, done: Done | list[Done]) -> None:
        raise NotImplementedError

    def _take_each(self, done: Done | list[Done]) -> tuple[list[Any], list[Done]]:
        """The queued operations, ending the queue, each with where its Outcome goes: `done`
        for all, or one each, in order, from a list. A list of the wrong length raises and
        leaves the queue as it was."""
        n = len(self._queued or ())
        if not isinstance(done, list):
            return self._take(), [done] * n
        if len(done) != n:
            raise ValueError(f"{len(done)} callbacks for {n} queued operations")
        return self._take(), done

    def in_flight(self) -> int:
        """Operations sent and not answered yet."""
        raise NotImplementedError

    def _pump(self, sock: socket.socket) -> None:
        raise NotImplementedError

    def _broken(self, failure: str, kind: str) -> None:
        raise NotImplementedError

    def _socket(self) -> socket.socket | None:
        return getattr(self, "sock", None)

    def _oldest(self) -> int:
        """When the oldest request still owed an answer went (wall-clock ns; 0: none)."""
        raise NotImplementedError

    def _start_reader(self) -> None:
        """The connection's reader, once per connection. Its socket waits without a timeout
        of its own (gevent would arm a timer per read): the watchdog times out what is owed."""
        sock = self._socket()
        if sock is not None and self._reading is not sock:  # (cheaper than Greenlet.dead)
            self._stop_reader()
            sock.settimeout(None)
            self._reading = sock
            self._reader = gevent.spawn(self._read_loop, sock)
            _watch(self)

    def _read_loop(self, sock: socket.socket) -> None:
        try:
            self._read_until_closed(sock)
        finally:
            if self._reading is sock:
                self._reading = None

    def _read_until_closed(self, sock: socket.socket) -> None:
        while self._socket() is sock:
            try:
                self._pump(sock)
            except Exception as exc:  # the connection ends, and what it owed fails with this
                if self._socket() is sock:
                    self._broken(self._failure(exc), "error")
                return

    def _failure(self, exc: Exception) -> str:
        """What ended a connection: the socket's or the protocol's failure (`failures`), or a
        reply the client could not take (its reader would otherwise die, and what it owed wait
        for the watchdog)."""
        if isinstance(exc, self.failures):
            return f"transport: {exc or exc.__class__.__name__}"
        return f"reply: not as the venue's protocol has it ({exc.__class__.__name__}: {exc})"

    def _stop_reader(self) -> None:
        reader, self._reader, self._reading = self._reader, None, None
        if reader is not None and not reader.dead and reader is not gevent.getcurrent():
            reader.kill(block=False)


WATCH_S = 0.25  # how often the watchdog looks for answers owed longer than a client's timeout
# The clients with a reader running. A plain set, not a WeakSet (compiled classes take no weak
# references): a reader holds its client anyway, and the watchdog lets go of each client once
# its reader has ended or was stopped and nothing is owed.
_watched: set[Dispatcher] = set()
_watchdog: list[gevent.Greenlet] = []


def _watch(client: Dispatcher) -> None:
    _watched.add(client)
    if not _watchdog or _watchdog[0].dead:
        _watchdog[:] = [gevent.spawn(_watch_loop)]


def _watch_loop() -> None:
    """Every WATCH_S, end the connections whose oldest owed answer is past their timeout;
    the loop ends when no open-loop client is left to watch."""
    while _watched:
        gevent.sleep(WATCH_S)
        now = time.time_ns()
        for client in list(_watched):
            oldest = client._oldest()
            if client._reader is None or (client._reading is None and not oldest):
                _watched.discard(client)  # its reader is over, and nothing is owed
                continue
            if oldest and now - oldest > client.timeout * 1e9:
                client._broken(f"timeout: no reply within {client.timeout} s", "timeout")
