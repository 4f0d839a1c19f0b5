"""What the three clients share below their protocols: connecting, waiting, pipelining, nonces."""

from __future__ import annotations

import time
from typing import Any, ClassVar

from gevent import socket

from loadgen.clients.backoff import Backoff
from loadgen.outcome import Outcome

MICROSECONDS = 1_000_000  # REST nonces (any increasing integer; Kraken's clients use time)
MILLISECONDS = 1_000  # FIX Logon 5025: milliseconds since the epoch (facts 5)


def connect(address: tuple[str, int], timeout: float, backoff: Backoff) -> socket.socket:
    """A TCP connection for one request at a time (Nagle off), after any backoff is over."""
    backoff.before_connect()
    sock = socket.create_connection(address, timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def wait_readable(sock: socket.socket) -> None:
    """Block this greenlet until the socket has data, before recv().

    A reply never arrives within the send's system call, so gevent's recv() would first make a
    read that fails with EAGAIN, then wait, then read again: waiting first saves that system
    call on every request (measured in `loadgen bench traders`). `_wait` is gevent's own wait
    on the socket's read watcher, honouring the socket's timeout; where a gevent version lacks
    it, recv() simply does the wait itself.
    """
    wait = getattr(sock, "_wait", None)
    if wait is not None:
        wait(sock._read_event)


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


class NonceSource:
    """Strictly increasing nonces for one API key, from the clock in `unit` ticks per second,
    shared by every client of that key in this process."""

    _by_key: ClassVar[dict[tuple[str, int], NonceSource]] = {}

    def __init__(self, unit: int) -> None:
        self.unit = unit
        self.last = 0

    @classmethod
    def for_key(cls, api_key: str, unit: int = MICROSECONDS) -> NonceSource:
        source = cls._by_key.get((api_key, unit))
        if source is None:
            source = cls._by_key[api_key, unit] = cls(unit)
        return source

    def next(self) -> int:
        nonce = time.time_ns() * self.unit // 1_000_000_000
        if nonce <= self.last:
            nonce = self.last + 1
        self.last = nonce
        return nonce
