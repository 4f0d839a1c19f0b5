"""The FIX trader's client against a real venue process."""

from __future__ import annotations

import itertools

import gevent

from loadgen.clients.fix import FixClient
from loadgen.flow.market import BUY, SELL, Market
from loadgen.flow.model import FlowModel
from loadgen.flow.orders import LiveOrder
from loadgen.outcome import ERROR, LIMIT_TRADING, OK, RATE_LIMITED, REJECTED, TIMEOUT
from loadgen.venue.pairs import catalog

PAIRS = catalog(30)
BTC = Market.from_asset_pair(PAIRS[0].public_info())
_senders = itertools.count()


def fix_client(venue, tier: str = "pro", **kw) -> FixClient:
    key = venue.key(tier)
    ids = itertools.count(1)
    return FixClient(
        venue.endpoints["fix"],
        key["api_key"],
        key["secret"],
        f"T{next(_senders)}",
        lambda: f"9{next(ids):017d}",
        **kw,
    )


def test_fills_arrive_as_execution_reports(venue_proc):
    pair = Market.from_asset_pair(PAIRS[-2].public_info())  # a book no other test uses
    seen: list[dict] = []
    maker = fix_client(venue_proc, on_execution=seen.append)
    taker = fix_client(venue_proc)
    price = round(pair.mid * 10**pair.price_decimals)
    resting = LiveOrder("1", pair, SELL, price, pair.min_lots, 0.0)
    resting.txid = maker.add(resting).detail
    assert taker.add(LiveOrder("2", pair, BUY, price, pair.min_lots, 0.0)).outcome == OK
    maker.cancel_all()  # reads what arrived meanwhile
    assert any(f.get(37) == resting.txid and f.get(39) == "2" for f in seen), seen


def test_rejected_and_rate_limited(venue_proc):
    client = fix_client(venue_proc, "starter")
    ghost = LiveOrder("3", BTC, BUY, 1, BTC.min_lots, 0.0)
    ghost.txid = "OAAAAA-BBBBB-CCCCCC"
    outcome = client.cancel(ghost)
    assert (outcome.outcome, outcome.error) == (REJECTED, "EOrder:Unknown order")
    model = FlowModel([BTC], seed=2, cross_share=0.0)
    outcomes = [client.add(model._order(BTC, 0.0)) for _ in range(62)]
    limited = [o for o in outcomes if o.outcome == RATE_LIMITED]
    assert limited and limited[0].limit == LIMIT_TRADING
    assert client.cancel_all().outcome == OK


def test_reconnect_continues_the_session(venue_proc):
    reconnected: list[bool] = []
    client = fix_client(venue_proc, on_reconnect=lambda: reconnected.append(True))
    assert client.cancel_all().outcome == OK
    client.sock.close()  # the line drops
    client.sock = None
    assert client.cancel_all().outcome == OK  # logs on again, sequence numbers carried on
    assert reconnected == [True] and client.session.next_out > 4


def test_timeout_in_a_stall_and_dropped_connection(knob_venue_proc):
    stalled = knob_venue_proc("--stall-every", "1", "--stall-for", "0.9")
    client = fix_client(stalled, timeout=0.3)
    outcomes = []
    for _ in range(8):  # paced through the period (see the REST client's stall test)
        outcomes.append(client.cancel_all())
        gevent.sleep(0.35)
    assert any(o.outcome == TIMEOUT for o in outcomes)
    assert any(o.outcome == OK for o in outcomes)
    dropping = knob_venue_proc("--drop", "0.3")
    client = fix_client(dropping)
    outcomes = [client.cancel_all() for _ in range(20)]
    assert any(o.outcome == ERROR and o.error.startswith("transport:") for o in outcomes)
    assert any(o.outcome == OK for o in outcomes)
