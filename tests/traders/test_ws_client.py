"""The WebSocket trader's client against a real venue process."""

from __future__ import annotations

import gevent

from loadgen.clients.rest import RestClient
from loadgen.clients.ws import WsClient
from loadgen.flow.market import BUY, SELL, Market
from loadgen.flow.model import FlowModel
from loadgen.flow.orders import LiveOrder
from loadgen.outcome import ERROR, LIMIT_TRADING, OK, RATE_LIMITED, REJECTED, TIMEOUT
from loadgen.venue.pairs import catalog

PAIRS = catalog(30)
BTC = Market.from_asset_pair(PAIRS[0].public_info())


def ws_client(venue, tier: str = "pro", **kw) -> WsClient:
    key = venue.key(tier)
    rest = RestClient(venue.endpoints["rest"], key["api_key"], key["secret"])
    for _ in range(10):  # a venue that drops connections may drop this call too
        _, _, result, _ = rest.call("GetWebSocketsToken", "")
        if result:
            break
    rest.close()
    return WsClient(venue.endpoints["ws"], result["token"], **kw)


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


def test_rejected_and_rate_limited(venue_proc):
    client = ws_client(venue_proc, "starter")
    ghost = LiveOrder("g", BTC, BUY, 1, BTC.min_lots, 0.0)
    ghost.txid = "OAAAAA-BBBBB-CCCCCC"
    outcome = client.cancel(ghost)
    assert (outcome.outcome, outcome.error) == (REJECTED, "EOrder:Unknown order")
    model = FlowModel([BTC], seed=2, cross_share=0.0)
    outcomes = [client.add(model._order(BTC, 0.0)) for _ in range(62)]
    limited = [o for o in outcomes if o.outcome == RATE_LIMITED]
    assert limited and limited[0].limit == LIMIT_TRADING
    assert client.cancel_all().outcome == OK


def test_bad_token_is_an_error(venue_proc):
    client = WsClient(venue_proc.endpoints["ws"], "not-a-token")
    outcome = client.cancel_all()
    assert (outcome.outcome, outcome.error) == (ERROR, "ESession:Invalid session")


def test_timeout_in_a_stall_and_dropped_connection(knob_venue_proc):
    stalled = knob_venue_proc("--stall-every", "1", "--stall-for", "0.9")
    client = ws_client(stalled, timeout=0.3)
    outcomes = []
    for _ in range(8):  # paced through the period (see the REST client's stall test)
        outcomes.append(client.cancel_all())
        gevent.sleep(0.35)
    assert any(o.outcome == TIMEOUT for o in outcomes)
    assert any(o.outcome == OK for o in outcomes)
    dropping = knob_venue_proc("--drop", "0.3")  # seeded: the same drops every run
    client = ws_client(dropping)
    outcomes = [client.cancel_all() for _ in range(20)]
    dropped = [o for o in outcomes if o.outcome == ERROR]
    assert dropped and all(o.error.startswith("transport:") for o in dropped)
    assert (
        outcomes[-1].outcome == OK
        or any(  # it reconnects after a drop
            o.outcome == OK for o in outcomes[outcomes.index(dropped[0]) :]
        )
    )
