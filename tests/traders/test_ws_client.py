"""The WebSocket trader's client against a real venue process."""

from __future__ import annotations

from loadgen.clients.ws import WsClient
from loadgen.flow.market import BUY, SELL, Market
from loadgen.flow.orders import LiveOrder
from loadgen.outcome import ERROR, OK
from loadgen.venue.pairs import catalog
from tests.traders.conftest import make_client

PAIRS = catalog(30)
BTC = Market.from_asset_pair(PAIRS[0].public_info())


def ws_client(venue, tier: str = "pro", **kw):
    return make_client("ws", venue, tier, **kw)


def test_fills_arrive_on_the_executions_channel(venue_proc):
    pair = Market.from_asset_pair(PAIRS[-1].public_info())  # a book no other test uses
    seen: list[dict] = []
    maker = ws_client(venue_proc, on_execution=seen.append)
    taker = ws_client(venue_proc)
    price = round(pair.mid * 10**pair.price_decimals)
    resting = LiveOrder("m1", pair, SELL, price, pair.min_lots, 0.0)
    resting.txid = maker.add(resting).detail
    assert taker.add(LiveOrder("t1", pair, BUY, price, pair.min_lots, 0.0)).outcome == OK
    maker.cancel_all()  # any call reads what arrived meanwhile
    filled = [u for u in seen if u["order_id"] == resting.txid and u["exec_type"] == "filled"]
    assert filled, seen


def test_bad_token_is_an_error(venue_proc):
    client = WsClient(venue_proc.endpoints["ws"], "not-a-token")
    outcome = client.cancel_all()
    assert (outcome.outcome, outcome.error) == (ERROR, "ESession:Invalid session")
