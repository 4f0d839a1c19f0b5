"""What the three clients share below their protocols: connecting, waiting, stamping, nonces
(pipelining and the open loop's readers: dispatch.py).

Timestamps come from where the bytes are (DESIGN, measurement rules). A reply's time is the
kernel's: every client socket asks Linux for software receive timestamps (SO_TIMESTAMPNS), and
each read with recvmsg() carries the time its data reached the socket, so a greenlet scheduled
late does not make the venue look slow. A send's time is the kernel's transmit stamp
(SO_TIMESTAMPING), read off the error queue just after the send, or where none came the time
taken just before the send call (on loopback the packet is on the wire inside that call, some
10-20 us later, measured against tcpdump). Both are wall-clock nanoseconds
(CLOCK_REALTIME, the clock the kernel stamps in). Replies parsed from one read share its stamp.
Where the kernel gives no stamp (another platform, or the first packets after the first socket
in the system asked: Linux turns stamping on a moment later), the read is stamped in user space
and counted as such (`Stamp.source` USER), and the report says how many were.
"""

from __future__ import annotations

import socket as _socket
import ssl
import struct
import sys
import time
from typing import Any, ClassVar

from gevent import socket

from loadgen.clients.backoff import Backoff
from loadgen.clients.tls import TlsStream, wrap

MICROSECONDS = 1_000_000  # REST nonces (any increasing integer; Kraken's clients use time)
MILLISECONDS = 1_000  # FIX Logon 5025: milliseconds since the epoch (facts 5)


# Linux's SO_TIMESTAMPNS (include/uapi/asm-generic/socket.h: SO_TIMESTAMPNS_OLD, 35, whose
# struct timespec is 64-bit on 64-bit platforms); Python's socket module does not name it.
# The cmsg level and type it answers with are SOL_SOCKET and the same number.
SO_TIMESTAMPNS = 35
_TIMESPEC = struct.Struct("qq")
_ANCILLARY = _socket.CMSG_SPACE(_TIMESPEC.size) if hasattr(_socket, "CMSG_SPACE") else 0
KERNEL_STAMPS = sys.platform == "linux" and sys.maxsize > 2**32 and _ANCILLARY > 0
READ_SIZE = 65536
_time_ns = time.time_ns
# A send's stamp from the kernel too: SO_TIMESTAMPING (include/uapi/asm-generic/socket.h, 37)
# with software transmit stamps, taken as the packet is handed to the device (on loopback, the
# moment a capture sees it), reported on the socket's error queue (Documentation/networking/
# timestamping.rst): SOF_TIMESTAMPING_TX_SOFTWARE | SOFTWARE | OPT_ID | OPT_TSONLY.
SO_TIMESTAMPING = 37
_TX_FLAGS = (1 << 1) | (1 << 4) | (1 << 7) | (1 << 11)
_STAMPS3 = struct.Struct("qqqqqq")  # struct scm_timestamping: software, legacy, hardware
_TX_ANCILLARY = _socket.CMSG_SPACE(_STAMPS3.size) + _socket.CMSG_SPACE(64) if _ANCILLARY else 0
_MSG_ERRQUEUE = getattr(_socket, "MSG_ERRQUEUE", 0)
TX_STAMPS = KERNEL_STAMPS and _MSG_ERRQUEUE > 0


def connect(
    address: tuple[str, int], timeout: float, backoff: Backoff, tls: ssl.SSLContext | None = None
) -> Any:
    """A TCP connection (Nagle off) that stamps what it receives, after any backoff is over;
    with `tls`, a TlsStream over it after the handshake (the functions below take either)."""
    backoff.before_connect()
    sock = socket.create_connection(address, timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if KERNEL_STAMPS:
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    if TX_STAMPS:
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPING, _TX_FLAGS)
    if tls is not None:
        return wrap(sock, tls, *address)
    return sock


KERNEL = "kernel"  # Stamp.source: the kernel stamped the read as its data reached the socket
USER = "user"  # stamped in this process when the read returned (later than it arrived)


class Stamp:
    """When the bytes of a read reached the socket: `ns` (wall-clock nanoseconds), and who
    said so (`source`: KERNEL, USER, or "" while nothing was read)."""

    __slots__ = ("ns", "source")

    def __init__(self, ns: int = 0) -> None:
        self.ns = ns  # Stamp(time.time_ns()): now, for what got no answer
        self.source = ""


def recv_stamped(sock: socket.socket, stamp: Stamp) -> bytes:
    """One read (after waiting for data), stamping `stamp` with when its data arrived.

    The read is the system call itself on the socket gevent wraps (`_sock`, non-blocking):
    after the wait it has data, and gevent's wrapper would only add its own retry loop. A
    wake-up with no data (EAGAIN: a send's stamp arrived on the error queue) empties the
    error queue and waits again.
    """
    if sock.__class__ is TlsStream:
        return sock.read_plain(lambda: recv_stamped(sock.raw, stamp))
    if KERNEL_STAMPS:
        raw = getattr(sock, "_sock", sock)
        while True:
            wait_readable(sock)
            try:
                data, ancillary, _, _ = raw.recvmsg(READ_SIZE, _ANCILLARY)
                break
            except BlockingIOError:  # woken by a send's stamp on the error queue, not data
                tx_stamp(raw, 0)
        for level, kind, payload in ancillary:
            if kind == SO_TIMESTAMPNS and level == _socket.SOL_SOCKET:
                sec, nsec = _TIMESPEC.unpack_from(payload)
                stamp.ns = sec * 1_000_000_000 + nsec
                stamp.source = KERNEL
                return data
    else:
        wait_readable(sock)
        data = sock.recv(READ_SIZE)
    stamp.ns = _time_ns()
    stamp.source = USER
    return data


def send_all(sock: socket.socket, data: bytes) -> None:
    """Write all of `data`: one send() system call on the wrapped socket when it takes it all
    (the usual case: a request is far smaller than the socket's buffer), else gevent's
    sendall() for the rest, which waits for room cooperatively. A TlsStream's records go the
    same way."""
    if sock.__class__ is TlsStream:
        sock, data = sock.raw, sock.encrypt(data)
    try:
        sent = sock._sock.send(data)
    except (BlockingIOError, AttributeError):
        sent = 0
    if sent < len(data):
        sock.sendall(memoryview(data)[sent:])


def send_stamped(sock: socket.socket, data: bytes) -> int:
    """Send all of `data`; returns when it went (wall-clock ns): the kernel's transmit stamp
    where it has one, else the time taken just before the call."""
    at = _time_ns()
    send_all(sock, data)
    return sent_at(sock, at)


def sent_at(sock: socket.socket, before: int) -> int:
    """When the send just made went: the kernel's transmit stamp, else `before` (the time taken
    just before it)."""
    if TX_STAMPS:
        raw = sock.raw if sock.__class__ is TlsStream else sock
        return tx_stamp(getattr(raw, "_sock", raw), before) or before
    return before


def tx_stamp(raw: Any, since: int) -> int:
    """The kernel's transmit stamp of the latest send, read off (and emptying) the socket's
    error queue; 0 when it holds none taken at or after `since` (not sent yet, or a stale
    stamp of an earlier send, which a wake-up for it also clears)."""
    latest = 0
    while True:
        try:
            _, ancillary, _, _ = raw.recvmsg(0, _TX_ANCILLARY, _MSG_ERRQUEUE)
        except OSError:  # BlockingIOError: the queue is empty
            return latest if latest >= since else 0
        for level, kind, payload in ancillary:
            if level == _socket.SOL_SOCKET and kind == SO_TIMESTAMPING:
                sec, nsec = _STAMPS3.unpack_from(payload)[:2]
                latest = max(latest, sec * 1_000_000_000 + nsec)


def latency_us(sent_ns: int, answered_ns: int) -> int:
    """Microseconds from a send to its answer; never negative (the wall clock may be stepped
    between them, and a user-space stamp may fall before a kernel one)."""
    return max(0, (answered_ns - sent_ns) // 1000)


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
