"""The public book channel (WS v2 `book`) against the venue's own trading: every message's
checksum holds in a book kept by an independent subscriber (tests/clients.BookKeeper), the
book it keeps is REST Depth's, and levels come and go as Kraken's checksum guide says."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import socket
import threading
import time
import urllib.parse
from datetime import UTC, datetime
from decimal import Decimal

from loadgen.venue.app import VenueConfig, VenueThread
from tests.clients import BookKeeper, Rest, Ws, wait_until


def _subscribe(venue, symbol: str, depth: int = 10) -> Ws:
    ws = Ws(venue.endpoints["ws"])
    ack = ws.call("subscribe", {"channel": "book", "symbol": [symbol], "depth": depth},
                  token=False)  # fmt: skip
    assert ack["success"] and ack["result"] == {
        "channel": "book", "depth": depth, "snapshot": True, "symbol": symbol}, ack  # fmt: skip
    return ws


def _book_messages(ws: Ws, until: float, arrivals: list[float] | None = None) -> list[dict]:
    """Book messages (parsed with Decimal numbers) until none came for 0.3 s or `until`; each
    one's arrival time (wall clock) appended to `arrivals`."""
    out = []
    while time.monotonic() < until:
        try:
            raw = ws.sock.recv(0.3)
        except TimeoutError:
            break
        msg = json.loads(raw, parse_float=Decimal)
        if msg.get("channel") == "book":
            out.append(msg)
            if arrivals is not None:
                arrivals.append(time.time())
    return out


def test_documented_subscribe_answers_per_symbol_then_a_snapshot(venue, fresh_pair):
    pair = venue.venue.pairs.get(fresh_pair())
    ws = _subscribe(venue, pair.symbol)
    snap = _book_messages(ws, time.monotonic() + 5)[0]
    assert snap["type"] == "snapshot" and snap["data"][0]["symbol"] == pair.symbol
    assert snap["data"][0]["bids"] == [] and snap["data"][0]["asks"] == []
    assert BookKeeper(10).apply(snap)
    again = ws.call("subscribe", {"channel": "book", "symbol": [pair.symbol]}, token=False)
    assert again["success"] is False and again["error"] == "Already subscribed"
    bad = ws.call("subscribe", {"channel": "book", "symbol": [pair.symbol], "depth": 7},
                  token=False)  # fmt: skip
    assert bad["error"] == "EGeneral:Invalid arguments:depth (one of 10, 25, 100, 500, 1000)"
    unknown = ws.call("subscribe", {"channel": "book", "symbol": ["NOPE/USD"]}, token=False)
    assert unknown["error"] == "Currency pair not supported NOPE/USD"
    gone = ws.call("unsubscribe", {"channel": "book", "symbol": [pair.symbol]}, token=False)
    assert gone["success"] and gone["result"]["symbol"] == pair.symbol
    ws.close()


def test_a_subscriber_follows_a_trading_run_with_every_checksum_right(venue, fresh_pair, rest):
    pair = venue.venue.pairs.get(fresh_pair())
    ws = _subscribe(venue, pair.symbol)
    book = BookKeeper(10)
    maker, taker = rest(), rest()
    rng = random.Random(7)
    open_ids: list[str] = []
    for n in range(240):  # rests, takes (partly), amends and cancels around 1.0000
        side = rng.choice(("buy", "sell"))
        price = 1 + rng.randint(-15, 15) / 10_000
        who = taker if n % 5 == 0 else maker
        reply = who.private("AddOrder", pair=pair.altname, type=side, ordertype="limit",
                            price=f"{price:.4f}", volume=str(rng.randint(1, 9)))  # fmt: skip
        if not reply["error"]:
            open_ids.append(reply["result"]["txid"][0])
        if open_ids and n % 7 == 3:
            maker.private("CancelOrder", txid=open_ids.pop(rng.randrange(len(open_ids))))
        if open_ids and n % 11 == 5:
            maker.private("AmendOrder", txid=rng.choice(open_ids), order_qty="1")
    messages = _book_messages(ws, time.monotonic() + 20)
    assert messages[0]["type"] == "snapshot" and len(messages) >= 3  # updates coalesce (10 ms)
    bad = [m for m in messages if not book.apply(m)]
    assert not bad, bad[:2]
    depth = rest().public(f"Depth?pair={pair.altname}&count=10")["result"][pair.pair_id]
    for name, rest_name in (("bids", "bids"), ("asks", "asks")):
        mine = [(str(p), str(book.sides[name][p])) for p in book.ordered(name)]
        assert mine == [(p, q) for p, q, _ in depth[rest_name]], name
    ws.close()


def test_a_level_that_leaves_brings_the_next_into_range(venue, fresh_pair, rest):
    """Depth 10 with 12 bid levels: cancelling the best sends its delete and the 11th level,
    and the 12th (never in range) is never sent."""
    pair = venue.venue.pairs.get(fresh_pair())
    trader = rest()
    ids = [trader.private("AddOrder", pair=pair.altname, type="buy", ordertype="limit",
                          price=f"{0.9 - i / 1000:.4f}", volume="1")["result"]["txid"][0]
           for i in range(12)]  # fmt: skip
    ws = _subscribe(venue, pair.symbol)
    book = BookKeeper(10)
    snap = _book_messages(ws, time.monotonic() + 5)
    assert len(snap) == 1 and book.apply(snap[0]) and len(snap[0]["data"][0]["bids"]) == 10
    trader.private("CancelOrder", txid=ids[0])
    update = _book_messages(ws, time.monotonic() + 5)
    assert len(update) == 1 and book.apply(update[0])
    levels = {str(x["price"]): x["qty"] for x in update[0]["data"][0]["bids"]}
    assert levels == {"0.9000": 0, "0.8900": 1} and not update[0]["data"][0]["asks"]
    assert list(levels) == ["0.9000", "0.8900"]  # the delete first (see marketdata.changes)
    ws.close()


def test_python_kraken_sdk_order_book_follows_a_trading_run_without_a_checksum_error(
    venue, fresh_pair, rest
):
    """python-kraken-sdk's SpotOrderBookClient checks Kraken's checksum on every update and
    resubscribes on a mismatch: it follows the venue's book through a trading run with none."""
    from kraken.spot import Market, SpotOrderBookClient

    pair = venue.venue.pairs.get(fresh_pair())
    _trade(rest(), rest(), pair, orders=10)  # an empty book's checksum is 0, which the SDK skips
    heard: list[dict] = []

    class VenueBook(SpotOrderBookClient):
        WS_URL = venue.endpoints["ws"].removesuffix("/v2")  # the SDK adds /v2

        async def on_book_update(self, pair: str, message: dict) -> None:
            heard.append(message)

    async def session() -> dict | None:
        client = VenueBook(depth=10)
        client._SpotOrderBookClient__market = Market(url=venue.endpoints["rest"])  # not Kraken's
        await client.start()
        try:
            await client.add_book(pairs=[pair.symbol])
            async with asyncio.timeout(10):
                while not heard:
                    await asyncio.sleep(0.01)
            await asyncio.to_thread(_trade, rest(), rest(), pair)
            async with asyncio.timeout(10):  # until the book matches REST Depth's
                want = await asyncio.to_thread(_depth, rest(), pair)
                while _sdk_levels(client.get(pair.symbol)) != want:
                    await asyncio.sleep(0.05)
            return client.get(pair.symbol)
        finally:
            await client.close()

    book = asyncio.run(session())
    assert book is not None and book["valid"]
    assert not [m for m in heard if "error" in m], [m for m in heard if "error" in m][:1]
    assert sum(m.get("type") == "update" for m in heard) >= 3


def _trade(maker, taker, pair, orders: int = 120) -> None:
    rng = random.Random(11)
    for n in range(orders):
        who = taker if n % 4 == 0 else maker
        who.private("AddOrder", pair=pair.altname, type=rng.choice(("buy", "sell")),
                    ordertype="limit", price=f"{1 + rng.randint(-12, 12) / 10_000:.4f}",
                    volume=str(rng.randint(1, 5)))  # fmt: skip


def _depth(client, pair) -> dict[str, list[tuple[str, str]]]:
    depth = client.public(f"Depth?pair={pair.altname}&count=10")["result"][pair.pair_id]
    return {side: [(p, q) for p, q, _ in depth[side]] for side in ("bids", "asks")}


def _sdk_levels(book: dict | None) -> dict[str, list[tuple[str, str]]]:
    if book is None:
        return {}
    return {side: [(p, v[0]) for p, v in book[name].items()]
            for side, name in (("bids", "bid"), ("asks", "ask"))}  # fmt: skip


def _burst(trader, pair, levels: int = 600) -> None:
    """`levels` resting bids at distinct prices, then all cancelled: two updates of ~`levels`
    levels each for a depth-1000 subscriber."""
    low = int(pair.ref_price * pair.price_scale) // 2  # far below the market, in ticks
    for first in range(0, levels, 15):
        orders = [{"ordertype": "limit", "type": "buy", "volume": pair.ordermin,
                   "price": pair.fmt_price(low - first - i)} for i in range(15)]  # fmt: skip
        assert trader.private("AddOrderBatch", pair=pair.altname, orders=orders)["error"] == []
    assert trader.private("CancelAll")["error"] == []


def _measured_burst(trader, pair, ws: Ws, book: BookKeeper) -> list[float]:
    """A burst sent from another thread while this one reads the book: its latencies."""
    sender = threading.Thread(target=_burst, args=(trader, pair))
    sender.start()
    try:
        return _latencies_ms(ws, book, time.monotonic() + 10)
    finally:
        sender.join()


def _latencies_ms(ws: Ws, book: BookKeeper, until: float) -> list[float]:
    """Fan-out latency of each book message until quiet: its arrival less its timestamp."""
    out, arrivals = [], []
    for msg, arrived in zip(_book_messages(ws, until, arrivals), arrivals, strict=True):
        assert book.apply(msg), msg["data"][0]["checksum"]
        stamp = msg["data"][0]["timestamp"].rstrip("Z")
        sent = datetime.fromisoformat(stamp).replace(tzinfo=UTC).timestamp()
        out.append((arrived - sent) * 1000)
    return out


def test_a_slow_subscriber_is_dropped_by_name_and_does_not_slow_the_others(rest):
    """A subscriber that stops reading: past the venue's limit it gets no more updates and a
    close 1008 naming why; meanwhile the fast subscriber's fan-out latency stays what it was
    before the slow one came (measured in the same run)."""
    config = VenueConfig(keys=4, tiers=["unlimited"], pairs=5, keys_file=None,
                         slow_subscriber_bytes=64 * 1024)  # fmt: skip
    venue = VenueThread(config).start()
    try:
        pair = venue.venue.pairs.pairs[0]
        account = venue.venue.accounts.all[0]
        trader = Rest(venue.endpoints["rest"], account.api_key, account.secret_b64)
        fast, book = _subscribe(venue, pair.symbol, depth=1000), BookKeeper(1000)
        before = [ms for _ in range(3) for ms in _measured_burst(trader, pair, fast, book)]
        slow = _never_reading(venue, pair.symbol)
        # the kernel's send buffer (autotuned to 4 MiB on loopback) shrunk to its least, so the
        # venue's own buffer, which the limit is about, fills within a few bursts
        assert wait_until(lambda: venue.call(lambda: _shrink_send_buffer(venue, slow)))
        with_slow = []
        for _ in range(40):
            with_slow += _measured_burst(trader, pair, fast, book)
            if venue.call(lambda: venue.venue.context.market_data.dropped):
                break
        assert venue.call(lambda: venue.venue.context.market_data.dropped) == 1
        reason = _read_to_close(slow)
        assert reason == (1008, "too slow: over 65536 bytes of book updates unread")
        p95 = sorted(before)[int(0.95 * len(before))], sorted(with_slow)[int(0.95 * len(with_slow))]
        print(f"fan-out P95 ms without the slow subscriber {p95[0]:.1f}, with it {p95[1]:.1f}")
        assert p95[1] <= 3 * p95[0] + 20, p95  # ms; the same venue and load, with and without
    finally:
        venue.stop()


def _never_reading(venue, symbol: str) -> socket.socket:
    """A book subscriber on a raw socket with a small receive buffer that then never reads."""
    url = urllib.parse.urlsplit(venue.endpoints["ws"])
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((url.hostname, url.port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(f"GET /v2 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())  # fmt: skip
    payload = json.dumps({"method": "subscribe", "params": {"channel": "book",
                          "symbol": [symbol], "depth": 1000}}).encode()  # fmt: skip
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    sock.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + masked)  # len < 126
    return sock


def _shrink_send_buffer(venue, peer: socket.socket) -> bool:
    for conn in venue.venue.connections:
        sock = conn.transport.get_extra_info("socket")
        if getattr(conn, "feeds", None) and sock.getpeername() == peer.getsockname():
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            return True
    return False


def _read_to_close(sock: socket.socket) -> tuple[int, str]:
    """Read everything the venue sent; the close frame's (code, reason) at the end."""
    sock.settimeout(10)
    data = b""
    while chunk := sock.recv(1 << 20):
        data += chunk
    close = data.rfind(b"\x88")
    length = data[close + 1]
    body = data[close + 2 : close + 2 + length]
    return int.from_bytes(body[:2], "big"), body[2:].decode()
