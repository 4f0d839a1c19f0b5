"""The FIX trader's client against a real venue process."""

from __future__ import annotations

import itertools

from loadgen.flow.market import BUY, SELL, Market
from loadgen.flow.orders import LiveOrder
from loadgen.outcome import OK
from loadgen.venue.pairs import catalog
from tests.traders.conftest import make_client

PAIRS = catalog(30)
BTC = Market.from_asset_pair(PAIRS[0].public_info())
_senders = itertools.count()


def fix_client(venue, tier: str = "pro", **kw):
    return make_client("fix", venue, tier, **kw)


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


def test_reconnect_continues_the_session(venue_proc):
    reconnected: list[bool] = []
    client = fix_client(venue_proc, on_reconnect=lambda: reconnected.append(True))
    assert client.cancel_all().outcome == OK
    client.sock.close()  # the line drops
    client.sock = None
    assert client.cancel_all().outcome == OK  # logs on again, sequence numbers carried on
    assert reconnected == [True] and client.session.next_out > 4
