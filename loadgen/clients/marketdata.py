"""A market-data subscriber's connection: WS v2, public (no token), on the traders' gevent
transport.

One connection subscribes to the `book` of its symbols at one depth and keeps a LocalBook of
each (protocol/book.py), checking every message's checksum. Reads are stamped where the bytes
are (clients/net: the kernel's receive time), so a message's fan-out latency is that stamp less
the venue's `timestamp` in it. A checksum that does not hold is counted and the symbol is
subscribed again (its snapshot starts the book afresh), as python-kraken-sdk's order book does.
With `trade` among its channels it counts the trades and the gaps in each book's trade_id
sequence (trades the venue published but this connection never heard; the first update after a
(re)subscription sets where the sequence stands); with `ticker`, the ticker updates.
"""

from __future__ import annotations

import contextlib
import ssl
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from loadgen.clients.backoff import Backoff
from loadgen.clients.net import Stamp, recv_stamped
from loadgen.clients.tls import for_scheme
from loadgen.clients.ws import open_upgraded
from loadgen.flow.market import Market
from loadgen.protocol import ws, wsframe
from loadgen.protocol.book import BookError, BookStates, LocalBook
from loadgen.protocol.book import parse as parse_book
from loadgen.protocol.wsframe import FrameParser

UPDATE, SNAPSHOT, CHECKSUM_FAILED, RESUBSCRIBED = "updates", "snapshots", "checksum_failures", \
    "resubscribes"  # fmt: skip
TRADES, TICKERS, GAPS = "trades", "tickers", "sequence_gaps"
# One process's subscribers hear the same book messages: each is read once, and each book state
# a message leads to is computed once (protocol/book.BookStates); every subscriber still checks
# every message it hears against the book it holds.
STATES = BookStates()


class _Read:
    """Book messages read, by their bytes: (data element, snapshot, the venue's time in ns).
    Bounded by the bytes it keys (BYTES_KEPT): past it, it starts afresh."""

    BYTES_KEPT = 16 * 1024 * 1024

    def __init__(self) -> None:
        self.read: dict[bytes, tuple[dict, bool, int]] = {}
        self.bytes = 0

    def get(self, payload: bytes) -> tuple[dict, bool, int] | None:
        return self.read.get(payload)

    def keep(self, payload: bytes, known: tuple[dict, bool, int]) -> None:
        if self.bytes > self.BYTES_KEPT:
            self.read.clear()
            self.bytes = 0
        self.read[payload] = known
        self.bytes += len(payload)


_READ = _Read()


def _read_book(payload: bytes) -> tuple[dict, bool, int]:
    msg = parse_book(payload)  # numbers as their text: the checksum is over it
    entry = msg["data"][0]
    if not isinstance(entry, dict):
        raise TypeError("data[0] is not an object")
    stamp = entry.get("timestamp")
    return entry, msg.get("type") == "snapshot", _stamp_ns(stamp) if isinstance(stamp, str) else 0


@dataclass(slots=True)
class Heard:
    """What one read brought: (kind, fan-out latency in µs or None) per book message, and the
    trade and ticker figures counted (kind -> n)."""

    events: list[tuple[str, int | None]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def count(self, kind: str, n: int = 1) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + n


def _stamp_ns(text: str) -> int:
    """RFC 3339 with up to 9 fraction digits ('...T17:35:55.219022Z') -> epoch ns."""
    whole, _, frac = text.rstrip("Z").partition(".")
    seconds = datetime.fromisoformat(whole + "+00:00").timestamp()
    return int(seconds) * 1_000_000_000 + int((frac + "000000000")[:9])


class BookSubscriber:
    def __init__(self, url: str, markets: list[Market], depth: int, timeout: float = 10.0,
                 tls: ssl.SSLContext | None = None,
                 channels: tuple[str, ...] = ("book",)) -> None:  # fmt: skip
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("ws", "wss") or not parts.hostname:
            raise ValueError(f"WebSocket URL {url!r}: expected ws(s)://HOST[:PORT]/v2")
        self.tls = for_scheme(parts.scheme, tls)
        self.address = (parts.hostname, parts.port or (443 if self.tls else 80))
        self.path, self.host = parts.path or "/", parts.netloc
        self.markets = {m.symbol: m for m in markets}
        self.depth = depth
        self.timeout = timeout
        self.channels = channels
        self.books: dict[str, LocalBook] = {}
        self.trade_ids: dict[str, int] = {}  # symbol -> the last trade_id heard
        self.sock: Any = None
        self.frames = FrameParser(expect_masked=False)
        self.backoff = Backoff()
        self.stamp = Stamp()
        self.req_ids = 0
        self.pending = b""  # what followed the handshake's answer in its read

    def connect(self) -> None:
        """Connect and subscribe to every symbol (the snapshots follow as messages)."""
        sock, rest = open_upgraded(self.address, self.path, self.host, self.timeout, self.backoff,
                                   self.tls)  # fmt: skip
        self.sock, self.frames, self.books = sock, FrameParser(expect_masked=False), {}
        self.trade_ids = {}
        for channel in self.channels:
            self._subscribe("subscribe", list(self.markets), channel)
        self.pending = rest

    def _subscribe(self, method: str, symbols: list[str], channel: str = "book") -> None:
        self.req_ids += 1
        params: dict[str, Any] = {"channel": channel, "symbol": symbols}
        if channel == "book":
            params["depth"] = self.depth
        payload = ws.request(method, params, self.req_ids)
        self.sock.sendall(wsframe.encode_frame(wsframe.OP_TEXT, payload, mask=True))

    def read(self, on_error: Callable[[str], None]) -> Heard:
        """One socket read and what its book messages did; ConnectionError when it closed."""
        heard = Heard()
        if self.pending:
            data, self.pending = self.pending, b""
        else:
            data = recv_stamped(self.sock, self.stamp)
            if not data:
                raise ConnectionError("venue closed the connection")
        for opcode, payload in self.frames.feed(data):
            if opcode == wsframe.OP_TEXT:
                self._message(payload, heard, on_error)
            elif opcode == wsframe.OP_PING:
                self.sock.sendall(wsframe.encode_frame(wsframe.OP_PONG, payload, mask=True))
            elif opcode == wsframe.OP_CLOSE:
                code, reason = wsframe.parse_close(payload)
                raise ConnectionError(f"venue closed the WebSocket ({code} {reason})")
        return heard

    def _message(self, payload: bytes, heard: Heard, on_error: Callable[[str], None]) -> None:
        if payload.startswith(b'{"channel":"trade"'):
            try:
                self._trades(orjson.loads(payload), heard)
            except (ValueError, AttributeError, TypeError) as exc:
                on_error(f"a trade message that cannot be read ({exc}): {payload[:80]!r}")
            return
        if payload.startswith(b'{"channel":"ticker","type":"update"'):
            heard.count(TICKERS)
            return
        if not payload.startswith(b'{"channel":"book"'):
            if b'"success":false' in payload:
                on_error(str(ws.read_reply(orjson.loads(payload), "subscribe refused")[0]))
            return
        known = _READ.get(payload)
        if known is None:  # the first subscriber here to hear these bytes reads them
            try:
                known = _read_book(payload)
            except (ValueError, KeyError, IndexError, TypeError) as exc:
                on_error(f"a book message that cannot be read ({exc}): {payload[:80]!r}")
                return
            _READ.keep(payload, known)
        entry, snapshot, sent_ns = known
        symbol = entry.get("symbol", "")
        market = self.markets.get(symbol)
        book = self.books.get(symbol)
        if market is None or (book is None and not snapshot):
            return  # not ours, or an update still in flight after a resubscribe: no book to check
        shape = (self.depth, market.price_decimals, market.lot_decimals)
        try:
            book, held = STATES.step(book, payload, entry, snapshot, shape)
            self.books[symbol] = book
        except BookError as exc:
            on_error(str(exc))
            held = False
        latency = None  # fan-out latency: updates only (a snapshot is the subscription's)
        if not snapshot and self.stamp.ns and sent_ns:
            latency = max(0, (self.stamp.ns - sent_ns) // 1000)
        heard.events.append((SNAPSHOT if snapshot else UPDATE, latency))
        if not held:
            heard.events.append((CHECKSUM_FAILED, None))
            self.books.pop(symbol, None)  # wrong from here on: start again from a snapshot
            self._subscribe("unsubscribe", [symbol])
            self._subscribe("subscribe", [symbol])
            heard.events.append((RESUBSCRIBED, None))

    def _trades(self, msg: dict[str, Any], heard: Heard) -> None:
        """A trade message: each trade counted, and the trade_ids skipped since the last heard
        of its book (an update only: a snapshot is history, not the stream)."""
        if msg.get("type") != "update":
            return
        last = self.trade_ids
        for trade in msg.get("data", ()):
            symbol, trade_id = trade.get("symbol"), trade.get("trade_id")
            if not isinstance(trade_id, int):
                continue
            before = last.get(symbol)
            if before is not None and trade_id <= before:
                continue  # heard already (or out of order): not a new trade
            if before is not None and trade_id > before + 1:
                heard.count(GAPS, trade_id - before - 1)
            last[symbol] = trade_id
            heard.count(TRADES)

    def close(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.sendall(wsframe.encode_close(wsframe.CLOSE_NORMAL, mask=True))
            self.sock.close()
            self.sock = None
