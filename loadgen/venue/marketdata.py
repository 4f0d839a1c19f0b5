"""The venue's public feeds (WS v2 `book`, and channels.py's), driven by the engine's changes.

A Feed is one (pair, depth) and its subscribers; it keeps what they were last told, the best
`depth` levels a side. The engine names the books that changed at each flush; they are
published together COALESCE_S later (a change in that window joins the same message): each
feed's levels are compared with what it last told, the levels whose visible quantity changed
or that came into range are sent, those that left the book are sent with qty 0, and one
pushed out of range by a better one is not (the subscriber truncates, facts 10.2). Every
message carries the checksum of the best 10 a side and the wall time of the first change it
reports, so a subscriber's fan-out latency includes the coalescing.

One message per feed and publish, framed once; each subscriber gets all its feeds' messages of a
publish in one transport write, the cost per subscriber. The window grows under load (ADAPT).
A subscriber with more than SLOW_BYTES unread is dropped: it gets no more updates, a close
frame (1008, named) behind what it has not read, and is cut off if it has not read that within
SLOW_GRACE_S. (Kraken does not document its handling of slow readers; the issue asks for a
named close.)
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from loadgen.protocol import book as bookmsg
from loadgen.protocol import wsframe
from loadgen.protocol.clock import rfc3339
from loadgen.venue import channels
from loadgen.venue.channels import PublicFeed
from loadgen.venue.tape import OHLC_INTERVALS

if TYPE_CHECKING:
    from loadgen.venue.book import Book, BookSide
    from loadgen.venue.engine import Exchange
    from loadgen.venue.pairs import Pair
    from loadgen.venue.tape import Tape

FeedKey = tuple[str, str, Any]  # (channel, pair altname, depth / event_trigger / interval)
COALESCE_S: Final = 0.01  # changes within 10 ms go out as one update per feed
# Under load the window grows to this many times the last publish's own time, so writing to
# every subscriber takes at most about a third of the venue's core and order entry keeps the
# rest: with thousands of subscribers updates come less often, and bigger, never later and later.
ADAPT: Final = 2.0
SLOW_BYTES: Final = 4 * 1024 * 1024  # unread book bytes past which a subscriber is dropped
SLOW_GRACE_S: Final = 10.0


def top(side: BookSide, depth: int, bids: bool) -> dict[int, int]:
    """The best `depth` levels of a side, best first: price ticks -> visible lots."""
    levels = side.levels
    prices = heapq.nlargest(depth, levels) if bids else heapq.nsmallest(depth, levels)
    return {p: sum(o.visible() for o in levels[p].values()) for p in prices}


def changes(told: dict[int, int], now: dict[int, int], live: dict) -> list[tuple[int, int]]:
    """What a subscriber told `told` needs to see `now`: 0 for the levels that left the book
    (`live`: the side's levels; not those merely pushed out), then changed or new levels best
    first. Deletes go first: a subscriber that truncates to its depth after every level
    (python-kraken-sdk does) would otherwise drop a level still in range while its book
    briefly held more than `depth` (found by tests/venue/test_book_feed.py)."""
    out = [(p, 0) for p in told if p not in now and p not in live]
    out += [(p, q) for p, q in now.items() if told.get(p) != q]
    return out


class Feed:
    __slots__ = ("asks", "bids", "depth", "pair", "subscribers")

    def __init__(self, pair: Pair, depth: int, book: Book) -> None:
        self.pair = pair
        self.depth = depth
        self.bids = top(book.bids, depth, True)
        self.asks = top(book.asks, depth, False)
        self.subscribers: dict[Any, None] = {}  # WS connections, in the order they came

    def _texts(self, levels: list[tuple[int, int]]) -> list[bookmsg.Level]:
        pair = self.pair
        return [(pair.fmt_price(p), pair.fmt_qty(q)) for p, q in levels]

    def checksum(self) -> int:
        asks = self._texts(list(self.asks.items())[: bookmsg.CHECKSUM_LEVELS])
        bids = self._texts(list(self.bids.items())[: bookmsg.CHECKSUM_LEVELS])
        return bookmsg.checksum(asks, bids)

    def snapshot(self, at: float) -> bytes:
        bids, asks = self._texts(list(self.bids.items())), self._texts(list(self.asks.items()))
        return bookmsg.message("snapshot", self.pair.symbol, bids, asks, self.checksum(),
                               rfc3339(at))  # fmt: skip

    def update(self, book: Book, at: float) -> bytes | None:
        """The update from what was told to the book now (None: nothing in range changed)."""
        bids, asks = top(book.bids, self.depth, True), top(book.asks, self.depth, False)
        bid_changes = changes(self.bids, bids, book.bids.levels)
        ask_changes = changes(self.asks, asks, book.asks.levels)
        if not bid_changes and not ask_changes:
            return None
        self.bids, self.asks = bids, asks
        return bookmsg.message("update", self.pair.symbol, self._texts(bid_changes),
                               self._texts(ask_changes), self.checksum(), rfc3339(at))  # fmt: skip


@dataclass(frozen=True)
class Channel:
    """A public channel with symbols (facts 10.1): the parameter that keys a subscription (and
    its unsubscribe), its default and values, the snapshot's default, and the feed it makes
    from (pair, parameter, book, tape). instrument has no symbol (ws_server serves it)."""

    param: str | None
    default: Any
    values: tuple[Any, ...]
    snapshot: bool
    make: Callable[[Pair, Any, Book, Tape], PublicFeed]


CHANNELS: Final[dict[str, Channel]] = {
    "book": Channel("depth", bookmsg.DEFAULT_DEPTH, bookmsg.DEPTHS, True,
                    lambda pair, depth, book, _: Feed(pair, depth, book)),
    "ticker": Channel("event_trigger", "trades", channels.TRIGGERS, True,
                      lambda pair, trigger, book, tape: channels.TickerFeed(pair, trigger, book,
                                                                            tape)),
    # Kraken's trade page: "snapshot ... Default: false" (the facts file's "true" is older)
    "trade": Channel(None, None, (), False, lambda pair, _, __, tape: channels.TradeFeed(pair,
                                                                                      tape)),
    "ohlc": Channel("interval", 1, OHLC_INTERVALS, True,
                    lambda pair, interval, _, tape: channels.OhlcFeed(pair, interval, tape)),
}  # fmt: skip


class MarketData:
    """Every public feed of the venue (book, and channels.py's ticker, trade and ohlc); the
    engine tells it which books changed. A feed is keyed (channel, pair, parameter): the book's
    depth, the ticker's event_trigger, the ohlc interval, None for trade."""

    def __init__(self, exchange: Exchange, slow_bytes: int = SLOW_BYTES) -> None:
        self.exchange = exchange
        self.slow_bytes = slow_bytes  # a subscriber with more unread is dropped
        self.feeds: dict[FeedKey, PublicFeed] = {}
        self.by_pair: dict[str, list[PublicFeed]] = {}
        self.waiting: dict[Book, float] = {}  # changed books, to publish; when first changed
        self.timer: Any = None
        self.published = 0  # update messages framed (each written to every subscriber)
        self.writes = 0  # writes to subscribers: one a subscriber a publish
        self.interval = COALESCE_S  # the coalescing window now (ADAPT)
        self.dropped = 0  # subscribers dropped as too slow
        self._instrument: bytes | None = None
        exchange.on_books = self.changed

    def subscribe(self, conn: Any, channel: str, pair: Pair, param: Any) -> PublicFeed:
        key = (channel, pair.altname, param)
        feed = self.feeds.get(key)
        if feed is None:
            make = CHANNELS[channel].make
            feed = make(pair, param, self.exchange.book(pair), self.exchange.tape(pair))
            self.feeds[key] = feed
            self.by_pair.setdefault(pair.altname, []).append(feed)
        feed.subscribers[conn] = None
        return feed

    def unsubscribe(self, conn: Any, key: FeedKey) -> None:
        feed = self.feeds.get(key)
        if feed is None:
            return
        feed.subscribers.pop(conn, None)
        if not feed.subscribers:  # nobody listens: the feed goes (a new one starts from now)
            del self.feeds[key]
            feeds = self.by_pair[key[1]]
            feeds.remove(feed)
            if not feeds:
                del self.by_pair[key[1]]

    def instrument(self) -> bytes:
        """The instrument channel's snapshot: built once (the venue's markets never change)."""
        if self._instrument is None:
            data = channels.instrument_data(self.exchange.pairs.pairs)
            self._instrument = channels.message("instrument", "snapshot", data)
        return self._instrument

    def changed(self, books: set[Book]) -> None:
        now = self.exchange.wall()
        for book in books:
            if book.pair.altname in self.by_pair:
                self.waiting.setdefault(book, now)
        if self.waiting and self.timer is None and self.exchange.call_later is not None:
            self.timer = self.exchange.call_later(self.interval, self.publish)

    def publish(self) -> None:
        """Every changed book's feeds, each message framed once; a subscriber gets what all its
        feeds have for it in one write (book and trades, several pairs: one system call, the
        venue's main cost per subscriber)."""
        started = time.perf_counter()
        self.timer = None
        waiting, self.waiting = self.waiting, {}
        out: dict[Any, list[bytes]] = {}
        for book, at in waiting.items():
            for feed in self.by_pair.get(book.pair.altname, ()):
                payload = feed.update(book, at)
                if payload is None:
                    continue
                self.published += 1
                frame = wsframe.encode_frame(wsframe.OP_TEXT, payload)
                for conn in feed.subscribers:
                    frames = out.get(conn)
                    if frames is None:
                        out[conn] = [frame]
                    else:
                        frames.append(frame)
        for conn, frames in out.items():
            self.writes += 1
            conn.feed_frame(frames[0] if len(frames) == 1 else b"".join(frames))
        self.interval = max(COALESCE_S, ADAPT * (time.perf_counter() - started))
