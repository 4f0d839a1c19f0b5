"""The MarketDataUsers' connection (clients/marketdata.BookSubscriber) on the channels beside
the book: trades counted, and the trade_ids a book's sequence skipped counted as gaps (byte
vectors, then against a venue process that trades); ticker updates counted."""

from __future__ import annotations

import socket
import time

import orjson

from loadgen.clients.marketdata import (
    CHECKSUM_FAILED,
    GAPS,
    RESUBSCRIBED,
    SNAPSHOT,
    TICKERS,
    TRADES,
    UPDATE,
    BookSubscriber,
    Heard,
)
from loadgen.flow.market import Market
from loadgen.protocol import book, wsframe
from tests.clients import Rest

BTC = Market("XBTUSD", "BTC/USD", 1, 8, 0.0001, 60_000.0)


def _trades(kind: str, ids: list[int], symbol: str = "BTC/USD") -> bytes:
    return orjson.dumps({"channel": "trade", "type": kind, "data": [
        {"symbol": symbol, "side": "buy", "price": 60_000.0, "qty": 0.1, "ord_type": "limit",
         "trade_id": i, "timestamp": "2026-12-07T10:00:00.000000Z"} for i in ids]})  # fmt: skip


def test_the_trade_ids_a_book_skipped_are_counted_as_gaps() -> None:
    sub = BookSubscriber("ws://127.0.0.1:1/v2", [BTC], 10, channels=("trade",))
    errors: list[str] = []
    heard = Heard()
    sub._message(_trades("snapshot", [1, 2, 3]), heard, errors.append)  # history: not counted
    sub._message(_trades("update", [7, 8]), heard, errors.append)  # the first sets where it is
    assert heard.counts == {TRADES: 2}
    sub._message(_trades("update", [9, 12]), heard, errors.append)
    sub._message(_trades("update", [1], symbol="ETH/USD"), heard, errors.append)  # its own
    sub._message(_trades("update", [13]), heard, errors.append)
    assert heard.counts == {TRADES: 6, GAPS: 2} and not errors
    sub._message(_trades("update", [12, 13, 14]), heard, errors.append)  # two heard already
    assert heard.counts == {TRADES: 7, GAPS: 2}
    sub._message(b'{"channel":"trade","type":"update","data":[7]}', heard, errors.append)
    sub._message(b'{"channel":"book","type":"update","data":[]}', heard, errors.append)
    assert len(errors) == 2 and "cannot be read" in errors[0] and heard.counts[TRADES] == 7


def test_a_subscriber_of_book_trade_and_ticker_hears_every_trade_without_a_gap(venue_proc):
    maker_key, taker_key = venue_proc.key(), venue_proc.key()
    maker = Rest(venue_proc.endpoints["rest"], maker_key["api_key"], maker_key["secret"])
    taker = Rest(venue_proc.endpoints["rest"], taker_key["api_key"], taker_key["secret"])
    sub = BookSubscriber(venue_proc.endpoints["ws_public"], [BTC], 10, timeout=5,
                         channels=("book", "trade", "ticker"))  # fmt: skip
    sub.connect()
    heard, errors = Heard(), []
    try:
        for n in range(5):  # five trades, each at its own lower price
            price = f"{59_000 - n:.1f}"
            for who, side, volume in ((maker, "sell", "0.3"), (taker, "buy", "0.2")):
                reply = who.private("AddOrder", pair="XBTUSD", type=side, ordertype="limit",
                                    price=price, volume=volume)  # fmt: skip
                assert reply["error"] == [], reply
        deadline = time.monotonic() + 10
        while heard.counts.get(TRADES, 0) < 5 and time.monotonic() < deadline:
            one = sub.read(errors.append)
            heard.events += one.events
            for kind, n in one.counts.items():
                heard.count(kind, n)
        assert heard.counts.get(TRADES, 0) >= 5 and GAPS not in heard.counts, heard.counts
        assert heard.counts.get(TICKERS, 0) >= 1 and not errors
        assert ("checksum_failures", None) not in heard.events
    finally:
        sub.close()
        for who in (maker, taker):
            who.private("CancelAll")
            who.close()


def test_a_wrong_checksum_is_counted_and_the_book_subscribed_again() -> None:
    """The subscriber's own path (byte vectors): the failure counted, an unsubscribe and a
    subscribe sent, and the updates still in flight before the new snapshot left unchecked."""
    sub = BookSubscriber("ws://127.0.0.1:1/v2", [BTC], 10)
    sub.sock, peer = socket.socketpair()
    bids, asks = [("59999.9", "1.00000000")], [("60000.1", "2.00000000")]
    crc = book.checksum(asks, bids)
    at = "2026-12-07T10:00:00.000001Z"
    heard, errors = Heard(), []
    try:
        sub._message(book.message("snapshot", "BTC/USD", bids, asks, crc, at), heard,
                     errors.append)  # fmt: skip
        same = book.message("update", "BTC/USD", [], [], crc, at)  # nothing moved: it holds
        sub._message(same, heard, errors.append)
        assert [k for k, _ in heard.events] == [SNAPSHOT, UPDATE]
        wrong = book.message("update", "BTC/USD", [("59999.8", "1.00000000")], [], crc, at)
        sub._message(wrong, heard, errors.append)
        assert [k for k, _ in heard.events][2:] == [UPDATE, CHECKSUM_FAILED, RESUBSCRIBED]
        sub._message(same, heard, errors.append)  # in flight, before the new snapshot
        assert len(heard.events) == 5 and not errors
        frames = wsframe.FrameParser(expect_masked=True).feed(peer.recv(1 << 16))
        sent = [orjson.loads(p) for _, p in frames]
        assert [(m["method"], m["params"]["symbol"]) for m in sent] == [
            ("unsubscribe", ["BTC/USD"]), ("subscribe", ["BTC/USD"])]  # fmt: skip
    finally:
        sub.sock.close()
        peer.close()
