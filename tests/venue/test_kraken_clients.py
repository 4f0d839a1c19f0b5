"""Third-party Kraken clients, unchanged, against the venue: python-kraken-sdk's Spot REST
classes and krakenex, pointed at the venue's REST URL, for every endpoint the venue serves and
every order operation, with a stop-loss that triggers and an iceberg that refills."""

from __future__ import annotations

import time
from collections.abc import Callable

import krakenex
import pytest
from kraken.exceptions import KrakenInvalidArgumentsError
from kraken.spot import Market, Trade, User

from loadgen.venue.app import VenueThread
from tests.conftest import Key


@pytest.fixture
def sdk(venue: VenueThread, new_key: Callable[..., Key]) -> Callable[[], tuple[Trade, User]]:
    def make() -> tuple[Trade, User]:
        key = new_key()
        url = venue.endpoints["rest"]
        return Trade(key.api_key, key.secret, url=url), User(key.api_key, key.secret, url=url)

    return make


def test_market_data_through_python_kraken_sdk(venue: VenueThread) -> None:
    market = Market(url=venue.endpoints["rest"])
    listed = market.get_assets(assets=["XBT", "USD"])
    assert listed["XXBT"]["altname"] == "XBT" and listed["XXBT"]["decimals"] == 10
    assert listed["ZUSD"]["display_decimals"] == 2
    pairs = market.get_asset_pairs(pair=["XBTUSD", "ETH/XBT"])
    # a slash name keys its entry by that name (the SDK's order book reads them so)
    assert set(pairs) == {"XXBTZUSD", "ETH/XBT"} and pairs["ETH/XBT"]["altname"] == "ETHXBT"
    xbt = pairs["XXBTZUSD"]
    assert (xbt["wsname"], xbt["base"], xbt["quote"], xbt["costmin"]) == (
        "XBT/USD", "XXBT", "ZUSD", "0.5")  # fmt: skip
    assert xbt["fees"][0] == [0, 0.26] and xbt["fees_maker"][0] == [0, 0.16]
    assert market.get_asset_pairs(pair="XXBTZUSD", info="fees")["XXBTZUSD"]["fees"]
    assert market.get_system_status()["status"] == "online"
    ticker = market.get_ticker(pair="XBTUSD")["XXBTZUSD"]
    assert float(ticker["c"][0]) > 0 and len(ticker["v"]) == 2 and len(ticker["t"]) == 2
    book = market.get_order_book(pair="XBTUSD", count=5)["XXBTZUSD"]
    assert set(book) == {"asks", "bids"}
    trades = market.get_recent_trades(pair="XBTUSD")
    assert "last" in trades and isinstance(trades["XXBTZUSD"], list)
    ohlc = market.get_ohlc(pair="XBTUSD", interval=5)
    assert "last" in ohlc and isinstance(ohlc["XXBTZUSD"], list)


def test_order_lifecycle_through_python_kraken_sdk(
    sdk: Callable[[], tuple[Trade, User]], fresh_pair: Callable[[], str]
) -> None:
    trade, user = sdk()
    pair = fresh_pair()
    placed = trade.create_order(
        ordertype="limit", side="buy", pair=pair, volume="2", price="5.0", userref=7
    )
    txid = placed["txid"][0]
    assert placed["descr"]["order"] == f"buy 2.00000000 {pair} @ limit 5.0000"
    assert set(user.get_open_orders()["open"]) == {txid}
    amend = trade.amend_order(txid=txid, order_qty="3", limit_price="5.1")
    assert amend["amend_id"]
    amends = user.get_order_amends(order_id=txid)
    assert [a["amend_type"] for a in amends["amends"]] == ["original", "user"]
    assert amends["amends"][1]["order_qty"] == "3.00000000"
    edited = trade.edit_order(txid=txid, pair=pair, volume="4", price="5.2")
    new_txid = edited["txid"]
    assert edited["originaltxid"] == txid and edited["volume"] == "4.00000000"
    info = user.get_orders_info(txid=[txid, new_txid])
    assert info[txid]["status"] == "canceled" and info[txid]["reason"] == "Order replaced"
    assert info[new_txid]["status"] == "open" and info[new_txid]["descr"]["price"] == "5.2000"
    assert trade.cancel_order(txid=new_txid)["count"] == 1
    batch = trade.create_order_batch(
        pair=pair,
        orders=[
            {"ordertype": "limit", "type": "buy", "volume": "1", "price": "4.0"},
            {"ordertype": "limit", "type": "sell", "volume": "1", "price": "9.0"},
        ],
    )
    ids = [o["txid"] for o in batch["orders"]]
    assert trade.cancel_order_batch(orders=ids)["count"] == 2
    trade.create_order(ordertype="limit", side="buy", pair=pair, volume="1", price="4.0")
    assert trade.cancel_all_orders()["count"] == 1
    assert "triggerTime" in trade.cancel_all_orders_after_x(timeout=0)
    closed = user.get_closed_orders()
    assert closed["count"] == 5 and new_txid in closed["closed"]  # edit, cancel, 2 + 1
    assert user.get_open_orders()["open"] == {}


def test_balances_move_with_fills_and_fees(
    sdk: Callable[[], tuple[Trade, User]], fresh_pair: Callable[[], str], venue: VenueThread
) -> None:
    (maker, maker_user), (taker, taker_user) = sdk(), sdk()
    pair = fresh_pair()
    info = venue.venue.pairs.get(pair)
    assert info is not None
    before = taker_user.get_account_balance()
    maker.create_order(ordertype="limit", side="sell", pair=pair, volume="10", price="2.0")
    taker.create_order(ordertype="market", side="buy", pair=pair, volume="10")
    after = taker_user.get_account_balance()
    # bought 10 base for 20 quote and a 0.26% taker fee (0.052)
    assert float(after[info.base_id]) - float(before[info.base_id]) == pytest.approx(10)
    assert float(before[info.quote_id]) - float(after[info.quote_id]) == pytest.approx(20.052)
    seller = maker_user.get_balances()[info.quote_id]
    assert float(seller["balance"]) - float(before[info.quote_id]) == pytest.approx(20 - 0.032)
    assert float(seller["hold_trade"]) == 0
    balance = taker_user.get_trade_balance(asset="ZUSD")
    assert float(balance["eb"]) > 0 and balance["tb"] == balance["e"]


def test_unserved_parameters_are_refused_by_name(
    sdk: Callable[[], tuple[Trade, User]], fresh_pair: Callable[[], str]
) -> None:
    trade, user = sdk()
    pair = fresh_pair()
    for extra, named in (
        ({"leverage": "2"}, "leverage"),
        ({"reduce_only": True}, "reduce_only"),
        ({"starttm": "+10"}, "starttm"),
        ({"close_ordertype": "limit", "close_price": "9"}, "close"),
        ({"oflags": "fcib"}, "fcib"),
    ):
        with pytest.raises(KrakenInvalidArgumentsError, match=named):
            trade.create_order(
                ordertype="limit", side="buy", pair=pair, volume="1", price="4.0", **extra
            )
    with pytest.raises(KrakenInvalidArgumentsError, match="trailing-stop"):
        trade.create_order(ordertype="trailing-stop", side="sell", pair=pair, volume="1",
                           price="+1")  # fmt: skip
    assert user.get_open_orders()["open"] == {}


def test_a_stop_loss_triggers_on_the_last_trade(
    sdk: Callable[[], tuple[Trade, User]], fresh_pair: Callable[[], str]
) -> None:
    (stopper, stopper_user), (bidder, _), (seller, _), (buyer, _) = sdk(), sdk(), sdk(), sdk()
    pair = fresh_pair()
    bidder.create_order(ordertype="limit", side="buy", pair=pair, volume="5", price="3.0")
    stop = stopper.create_order(
        ordertype="stop-loss", side="sell", pair=pair, volume="2", price="4.0"
    )
    txid = stop["txid"][0]
    assert stop["descr"]["order"] == f"sell 2.00000000 {pair} @ stop loss 4.0000"
    armed = stopper_user.get_orders_info(txid=txid)[txid]
    assert armed["status"] == "open" and armed["stopprice"] == "4.0000"
    # a trade at 4.0 (between two other keys) is the last price the stop waits for
    seller.create_order(ordertype="limit", side="sell", pair=pair, volume="1", price="4.0")
    buyer.create_order(ordertype="limit", side="buy", pair=pair, volume="1", price="4.0")
    done = stopper_user.get_orders_info(txid=txid)[txid]
    assert done["status"] == "closed" and done["vol_exec"] == "2.00000000"
    assert done["price"] == "3.0000" and done["misc"] == "stopped"  # sold into the 3.0 bid


def test_an_iceberg_refills_behind_its_level(
    sdk: Callable[[], tuple[Trade, User]], fresh_pair: Callable[[], str], venue: VenueThread
) -> None:
    (ice, ice_user), (other, other_user), (taker, _) = sdk(), sdk(), sdk()
    pair = fresh_pair()
    market = Market(url=venue.endpoints["rest"])
    iceberg = ice.create_order(
        ordertype="iceberg", side="sell", pair=pair, volume="10", price="6.0", displayvol="2"
    )["txid"][0]
    behind = other.create_order(ordertype="limit", side="sell", pair=pair, volume="1",
                                price="6.0")["txid"][0]  # fmt: skip
    level = market.get_order_book(pair=pair)[next(iter(market.get_asset_pairs(pair=pair)))]
    assert level["asks"][0][1] == "3.00000000"  # 2 shown of the iceberg's 10, and 1
    taker.create_order(ordertype="limit", side="buy", pair=pair, volume="3", price="6.0")
    # 2 from the iceberg's slice; its next slice joined the back, so the third lot is `behind`'s
    assert ice_user.get_orders_info(txid=iceberg)[iceberg]["vol_exec"] == "2.00000000"
    assert other_user.get_orders_info(txid=behind)[behind]["status"] == "closed"


class _OneCallAMillisecond:
    """krakenex's nonce is the time in milliseconds: two private calls in one millisecond (on
    loopback, against a fast venue) send the same nonce, which Kraken refuses, as the venue
    does. Each call starts in a millisecond of its own (the clock polled), the client as it is."""

    def __init__(self, api: krakenex.API) -> None:
        self.api, self.last = api, 0

    def __call__(self, method: str, data: dict | None = None) -> dict:
        while int(1000 * time.time()) <= self.last:
            time.sleep(0.0002)
        reply = self.api.query_private(method, data)
        self.last = int(1000 * time.time())  # the call's nonce was this or less
        return reply


def test_krakenex_unchanged(venue: VenueThread, new_key: Callable[..., Key],
                            fresh_pair: Callable[[], str]) -> None:  # fmt: skip
    key = new_key()
    api = krakenex.API(key.api_key, key.secret)
    api.uri = venue.endpoints["rest"]
    private = _OneCallAMillisecond(api)
    try:
        assert api.query_public("Time")["result"]["unixtime"] >= int(time.time()) - 5
        assert "XXBTZUSD" in api.query_public("AssetPairs", {"pair": "XBTUSD"})["result"]
        assert "ZUSD" in private("Balance")["result"]
        pair = fresh_pair()
        placed = private(
            "AddOrder",
            {"pair": pair, "type": "buy", "ordertype": "limit", "price": "4.0", "volume": "1"},
        )
        assert placed["error"] == [], placed
        txid = placed["result"]["txid"][0]
        assert txid in private("OpenOrders")["result"]["open"]
        assert private("QueryOrders", {"txid": txid})["result"][txid]["status"] == "open"
        assert private("CancelOrder", {"txid": txid})["result"]["count"] == 1
        closed = private("ClosedOrders")["result"]
        assert closed["closed"][txid]["status"] == "canceled"
        unknown = private("AddOrder", {"pair": "NOPE", "type": "buy",
                                                 "ordertype": "limit", "price": "1",
                                                 "volume": "1"})  # fmt: skip
        assert unknown["error"] == ["EQuery:Unknown asset pair"]
    finally:
        api.close()


def test_python_kraken_sdk_websocket_v2_client_unchanged(
    venue: VenueThread, new_key: Callable[..., Key], fresh_pair: Callable[[], str]
) -> None:
    """The SDK's SpotWSClient (its own token fetch, both connections, its message routing)
    trades over the venue's WS v2 and hears its executions."""
    import asyncio

    from kraken.spot import SpotWSClient

    key = new_key()
    symbol = venue.venue.pairs.get(fresh_pair()).symbol
    heard: list[dict] = []
    arrived = asyncio.Event()

    async def collect(message: dict) -> None:
        heard.append(message)
        arrived.set()

    async def until(predicate: Callable[[dict], bool]) -> dict:
        """The first message heard that matches, waiting for each new one (at most 10 s)."""
        async with asyncio.timeout(10):
            while True:
                for message in heard:
                    if predicate(message):
                        return message
                arrived.clear()
                await arrived.wait()

    async def session() -> None:
        ws = venue.endpoints["ws"].removesuffix("/v2")
        client = SpotWSClient(key=key.api_key, secret=key.secret, callback=collect,
                              no_public=True, rest_url=venue.endpoints["rest"], ws_url=ws,
                              auth_ws_url=ws)  # fmt: skip
        await client.start()
        try:
            await client.subscribe(params={"channel": "executions", "snap_orders": True})
            await until(lambda m: m.get("method") == "subscribe" and m.get("success"))
            await client.send_message(message={"method": "add_order", "req_id": 7, "params": {
                "order_type": "limit", "side": "buy", "limit_price": 4.0, "order_qty": 1.0,
                "symbol": symbol, "order_userref": 11}})  # fmt: skip
            placed = await until(lambda m: m.get("req_id") == 7)
            assert placed["success"], placed
            order_id = placed["result"]["order_id"]
            new = await until(lambda m: m.get("channel") == "executions" and any(
                e.get("exec_type") == "new" for e in m.get("data", [])))  # fmt: skip
            assert new["data"][-1]["order_id"] == order_id
            await client.send_message(message={"method": "cancel_order", "req_id": 8,
                                               "params": {"order_id": [order_id]}})  # fmt: skip
            assert (await until(lambda m: m.get("req_id") == 8))["success"]
            await until(lambda m: m.get("channel") == "executions" and any(
                e.get("exec_type") == "canceled" for e in m.get("data", [])))  # fmt: skip
        finally:
            await client.close()

    asyncio.run(session())
