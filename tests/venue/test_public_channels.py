"""The public WS v2 channels besides the book (ticker, trade, ohlc, instrument) against the
venue's own trading: each answers the documented ack and shapes (facts 10.1), its updates come
from the engine's real trades and agree with REST Ticker, Trades and OHLC, and bad
subscriptions are refused by name. Read with the `websockets` library (tests/clients.Ws) and
python-kraken-sdk's SpotWSClient."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import pytest

from tests.clients import Rest, Ws, wait_until

TICKER_FIELDS = {"symbol", "bid", "bid_qty", "ask", "ask_qty", "last", "volume", "vwap", "low",
                 "high", "change", "change_pct"}  # fmt: skip
TRADE_FIELDS = {"symbol", "side", "price", "qty", "ord_type", "trade_id", "timestamp"}
OHLC_FIELDS = {"symbol", "open", "high", "low", "close", "vwap", "trades", "volume",
               "interval_begin", "interval", "timestamp"}  # fmt: skip
INSTRUMENT_PAIR_FIELDS = {"symbol", "base", "quote", "status", "qty_precision", "qty_increment",
                          "qty_min", "price_precision", "price_increment", "tick_size",
                          "cost_precision", "cost_min", "marginable", "has_index"}  # fmt: skip


def _subscribe(ws: Ws, params: dict) -> dict:
    return ws.call("subscribe", params, token=False)


def _channel_updates(ws: Ws, name: str, enough, timeout: float = 10.0) -> list[dict]:
    """The channel's update messages until `enough(updates)` holds (polled per message)."""
    updates: list[dict] = []
    deadline = time.monotonic() + timeout
    while not enough(updates):
        assert time.monotonic() < deadline, f"{name}: only {updates[-2:]}"
        updates.append(ws.channel(name, lambda m: m.get("type") == "update"))
    return updates


def _cross(maker: Rest, taker: Rest, pair, fills: int) -> None:
    """`fills` trades, one each, at falling prices: the maker rests a sell of 3 below its last,
    the taker buys 2 of it (the best ask), leaving 1 at each price."""
    for n in range(fills):
        price = pair.fmt_price(10_000 - n)  # ticks of a 4-decimal synthetic pair: 1.0000 - n
        for who, side, lots in ((maker, "sell", 3), (taker, "buy", 2)):
            reply = who.private("AddOrder", pair=pair.altname, type=side, ordertype="limit",
                                price=price, volume=str(lots))  # fmt: skip
            assert reply["error"] == [], reply


def test_each_channel_answers_the_documented_ack_and_snapshot(venue, fresh_pair) -> None:
    pair = venue.venue.pairs.get(fresh_pair())
    symbol = pair.symbol
    ws = Ws(venue.endpoints["ws"])
    try:
        ack = _subscribe(ws, {"channel": "ticker", "symbol": [symbol]})
        assert ack["success"] and ack["result"] == {"channel": "ticker", "event_trigger": "trades",
                                                    "snapshot": True, "symbol": symbol}  # fmt: skip
        snap = ws.channel("ticker")
        assert snap["type"] == "snapshot" and set(snap["data"][0]) == TICKER_FIELDS
        assert snap["data"][0]["last"] == pytest.approx(pair.ref_price)  # no trade yet

        ack = _subscribe(ws, {"channel": "trade", "symbol": [symbol]})  # snapshot: false
        assert ack["result"] == {"channel": "trade", "snapshot": False, "symbol": symbol}

        ack = _subscribe(ws, {"channel": "ohlc", "symbol": [symbol], "interval": 5})
        assert ack["result"] == {"channel": "ohlc", "interval": 5, "snapshot": True,
                                 "symbol": symbol}  # fmt: skip
        snap = ws.channel("ohlc")
        assert snap["type"] == "snapshot" and snap["data"] == [] and "timestamp" in snap

        ack = _subscribe(ws, {"channel": "instrument"})
        assert ack["result"] == {"channel": "instrument", "snapshot": True}
        data = ws.channel("instrument")["data"]
        assert set(data) == {"assets", "pairs"}
        row = next(p for p in data["pairs"] if p["symbol"] == symbol)
        assert set(row) == INSTRUMENT_PAIR_FIELDS
        assert (row["price_precision"], row["qty_min"], row["price_increment"]) == (4, 1.0, 1e-4)
        assert {"USD", "BTC"} <= {a["id"] for a in data["assets"]}
        assert not [m for m in ws.backlog if m.get("channel") == "trade"]  # no trade snapshot
    finally:
        ws.close()


def test_trades_reach_the_trade_ticker_and_ohlc_channels_as_rest_reports_them(
    venue, fresh_pair, rest
) -> None:
    pair = venue.venue.pairs.get(fresh_pair())
    ws = Ws(venue.endpoints["ws"])
    try:
        for params in ({"channel": "trade"}, {"channel": "ticker", "snapshot": False},
                       {"channel": "ohlc", "interval": 1, "snapshot": False}):  # fmt: skip
            assert _subscribe(ws, {**params, "symbol": [pair.symbol]})["success"]
        maker, taker = rest(), rest()
        _cross(maker, taker, pair, fills=6)
        trades = [t for m in _channel_updates(ws, "trade", lambda u: sum(
            len(m["data"]) for m in u) >= 6) for t in m["data"]]  # fmt: skip
        assert all(set(t) == TRADE_FIELDS for t in trades)
        assert [t["trade_id"] for t in trades] == list(range(1, 7))  # a sequence per book
        assert {(t["side"], t["ord_type"]) for t in trades} == {("buy", "limit")}  # the taker's
        listed = maker.public(f"Trades?pair={pair.altname}")["result"][pair.pair_id]
        assert [(Decimal(str(t["price"])), Decimal(str(t["qty"])), t["trade_id"]) for t in trades
                ] == [(Decimal(p), Decimal(q), i) for p, q, _, _, _, _, i in listed]  # fmt: skip

        last = "0.9995"
        ticker = _channel_updates(ws, "ticker", lambda u: bool(u) and u[-1]["data"][0][
            "last"] == float(last))[-1]["data"][0]  # fmt: skip
        rest_ticker = maker.public(f"Ticker?pair={pair.altname}")["result"][pair.pair_id]
        assert Decimal(str(ticker["last"])) == Decimal(rest_ticker["c"][0])
        assert Decimal(str(ticker["volume"])) == Decimal(rest_ticker["v"][1]) == 12
        assert (ticker["ask"], ticker["ask_qty"]) == (float(last), 1.0)  # the last sell's rest
        assert set(ticker) == TICKER_FIELDS

        candle = _channel_updates(ws, "ohlc", lambda u: bool(u) and u[-1]["data"][0][
            "trades"] >= 6)  # fmt: skip
        row = candle[-1]["data"][0]
        assert set(row) == OHLC_FIELDS and row["interval"] == 1
        rest_row = maker.public(f"OHLC?pair={pair.altname}&interval=1")["result"][pair.pair_id][-1]
        assert (row["open"], row["close"]) == (1.0, float(last))
        assert Decimal(str(row["volume"])) == Decimal(rest_row[6]) and row["trades"] == rest_row[7]
    finally:
        ws.close()


def test_a_bbo_ticker_follows_the_best_price_and_a_trades_ticker_waits_for_a_trade(
    venue, fresh_pair, rest
) -> None:
    pair = venue.venue.pairs.get(fresh_pair())
    on_trades, on_bbo = Ws(venue.endpoints["ws"]), Ws(venue.endpoints["ws"])
    try:
        params = {"channel": "ticker", "symbol": [pair.symbol], "snapshot": False}
        assert _subscribe(on_trades, params)["success"]
        assert _subscribe(on_bbo, {**params, "event_trigger": "bbo"})["success"]
        maker, taker = rest(), rest()
        maker.private("AddOrder", pair=pair.altname, type="buy", ordertype="limit",
                      price="0.9000", volume="4")  # fmt: skip
        moved = on_bbo.channel("ticker")["data"][0]
        assert (moved["bid"], moved["bid_qty"], moved["volume"]) == (0.9, 4.0, 0.0)
        taker.private("AddOrder", pair=pair.altname, type="sell", ordertype="limit",
                      price="0.9000", volume="1")  # fmt: skip
        first = on_trades.channel("ticker")["data"][0]  # the first it sends follows the trade
        assert (first["last"], first["volume"], first["bid_qty"]) == (0.9, 1.0, 3.0)
        assert on_bbo.channel("ticker")["data"][0]["bid_qty"] == 3.0
    finally:
        on_trades.close()
        on_bbo.close()


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"channel": "ohlc", "symbol": ["BTC/USD"], "interval": 7}, "interval (one of 1, 5, 15"),
        ({"channel": "ohlc", "symbol": ["BTC/USD"], "interval": True}, "interval (one of"),
        ({"channel": "ohlc", "symbol": ["BTC/USD"], "interval": 5.0}, "interval (one of"),
        ({"channel": "book", "symbol": ["BTC/USD"], "depth": 10.0}, "depth (one of 10, 25"),
        ({"channel": "ticker", "symbol": ["BTC/USD"], "event_trigger": "quotes"},
         "event_trigger (one of trades, bbo)"),
        ({"channel": "trade", "symbol": "BTC/USD"}, "symbol (a list of symbols"),
        ({"channel": "trade", "symbol": ["BTC/USD"], "snapshot": "yes"}, "snapshot (true or"),
        ({"channel": "trade", "symbol": ["NOPE/USD"]}, "Currency pair not supported NOPE/USD"),
        ({"channel": "instrument", "snapshot": 1}, "Invalid arguments:snapshot"),
        ({"channel": "spread", "symbol": ["BTC/USD"]}, "book, ticker, trade, ohlc and instrument"),
        ({"channel": {"a": {"b": 1}}, "symbol": ["BTC/USD"]}, "Invalid arguments:channel"),
        ({"channel": ["book"]}, "Invalid arguments:channel"),  # found by loadgen fuzz
    ],
)  # fmt: skip
def test_a_bad_public_subscription_is_refused_by_name(venue, params, named) -> None:
    ws = Ws(venue.endpoints["ws"])
    try:
        ack = _subscribe(ws, params)
        assert not ack["success"] and named in ack["error"], ack
        assert ws.call("ping")["method"] == "pong"  # and the connection stays
    finally:
        ws.close()


def test_unsubscribing_what_was_never_subscribed_and_subscribing_twice_are_named(venue):
    ws = Ws(venue.endpoints["ws"])
    try:
        assert ws.call("unsubscribe", {"channel": "instrument"}, token=False)["error"] == (
            "Subscription Not Found")  # fmt: skip
        params = {"channel": "ohlc", "symbol": ["BTC/USD"], "interval": 15, "snapshot": False}
        assert _subscribe(ws, params)["success"]
        assert _subscribe(ws, params)["error"] == "Already subscribed"
        other = ws.call("unsubscribe", {**params, "interval": 5}, token=False)
        assert other["error"] == "Subscription Not Found"  # an interval is its own subscription
        done = ws.call("unsubscribe", params, token=False)
        assert done["success"] and done["result"] == {"channel": "ohlc", "interval": 15,
                                                      "symbol": "BTC/USD"}  # fmt: skip
    finally:
        ws.close()


def test_python_kraken_sdk_hears_ticker_trade_ohlc_and_instrument(venue, fresh_pair, rest):
    """The SDK's SpotWSClient, public connection only, pointed at the venue's WS URL."""
    from kraken.spot import SpotWSClient

    pair = venue.venue.pairs.get(fresh_pair())
    heard: list[dict] = []

    async def collect(message: dict) -> None:
        heard.append(message)

    def channels() -> set[str]:
        return {m.get("channel") for m in heard if m.get("type") in ("snapshot", "update")}

    async def until(predicate) -> None:
        async with asyncio.timeout(10):
            while not predicate():
                await asyncio.sleep(0.01)

    async def session() -> None:
        client = SpotWSClient(callback=collect, ws_url=venue.endpoints["ws"].removesuffix("/v2"))
        await client.start()
        try:
            for params in ({"channel": "ticker"}, {"channel": "trade"},
                           {"channel": "ohlc", "interval": 1}):  # fmt: skip
                await client.subscribe(params={**params, "symbol": [pair.symbol]})
            await client.subscribe(params={"channel": "instrument"})
            await until(lambda: {"ticker", "ohlc", "instrument"} <= channels())
            await asyncio.to_thread(_cross, rest(), rest(), pair, 2)
            await until(lambda: "trade" in channels())
        finally:
            await client.close()

    asyncio.run(session())
    refused = [m for m in heard if m.get("success") is False]
    assert not refused, refused[:1]
    trades = [t for m in heard if m.get("channel") == "trade" for t in m["data"]]
    assert [t["trade_id"] for t in trades][:1] == [1] and trades[0]["symbol"] == pair.symbol


def test_the_public_endpoint_serves_market_data_and_refuses_private_methods_by_name(
    venue, fresh_pair
) -> None:
    """Kraken's ws.kraken.com/v2 beside ws-auth (facts 10.4): its own port in the venue."""
    symbol = venue.venue.pairs.get(fresh_pair()).symbol
    public = Ws(venue.endpoints["ws_public"])
    try:
        assert venue.endpoints["ws_public"] != venue.endpoints["ws"]
        for params in ({"channel": "book", "symbol": [symbol]}, {"channel": "instrument"},
                       {"channel": "ticker", "symbol": [symbol]}):  # fmt: skip
            assert _subscribe(public, params)["success"]
            assert public.channel(params["channel"])["type"] == "snapshot"  # and the data comes
        assert public.call("ping")["method"] == "pong"
        for method, params in (("add_order", {"symbol": symbol}), ("cancel_all", {}),
                               ("subscribe", {"channel": "executions"})):  # fmt: skip
            reply = public.call(method, params)
            assert reply["success"] is False and reply["error"] == (
                f"EGeneral:Unknown method:{params.get('channel', method)} is served on the "
                "authenticated endpoint (ws-auth), not the public one"), reply  # fmt: skip
    finally:
        public.close()


def test_a_closed_connection_leaves_no_feed_behind(venue, fresh_pair) -> None:
    """Every public subscription of a connection is released when it closes (polled on the
    venue's loop), and an unsubscribe releases its own at once."""
    pair = venue.venue.pairs.get(fresh_pair())
    market_data = venue.venue.context.market_data

    def keys() -> set:
        return venue.call(lambda: {k for k in market_data.feeds if k[1] == pair.altname})

    ws = Ws(venue.endpoints["ws_public"])
    for params in ({"channel": "book"}, {"channel": "ticker", "event_trigger": "bbo"},
                   {"channel": "trade"}, {"channel": "ohlc", "interval": 60}):  # fmt: skip
        assert _subscribe(ws, {**params, "symbol": [pair.symbol], "snapshot": False})["success"]
    assert keys() == {("book", pair.altname, 10), ("ticker", pair.altname, "bbo"),
                      ("trade", pair.altname, None), ("ohlc", pair.altname, 60)}  # fmt: skip
    done = ws.call("unsubscribe", {"channel": "trade", "symbol": [pair.symbol]}, token=False)
    assert done["success"] and ("trade", pair.altname, None) not in keys()
    ws.close()
    assert wait_until(lambda: not keys(), timeout=10), keys()
    assert venue.call(lambda: pair.altname not in market_data.by_pair)


def test_a_subscriber_of_several_feeds_gets_one_write_a_publish(venue, fresh_pair, rest) -> None:
    """Book, trade and ticker of a pair: what a publish has for one subscriber goes in one
    write (the venue's cost per subscriber is the system call), and every message arrives."""
    pair = venue.venue.pairs.get(fresh_pair())
    market_data = venue.venue.context.market_data
    ws = Ws(venue.endpoints["ws_public"])
    try:
        for channel in ("book", "trade", "ticker"):
            params = {"channel": channel, "symbol": [pair.symbol], "snapshot": False}
            assert _subscribe(ws, params)["success"]
        before = venue.call(lambda: (market_data.writes, market_data.published))
        _cross(rest(), rest(), pair, fills=1)  # one trade: book, trade and ticker all move
        for channel in ("trade", "ticker", "book"):
            ws.channel(channel, lambda m: m.get("type") == "update")
        after = venue.call(lambda: (market_data.writes, market_data.published))
        messages, writes = after[1] - before[1], after[0] - before[0]
        assert messages >= 3 and writes < messages, (writes, messages)
    finally:
        ws.close()
