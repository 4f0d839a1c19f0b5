"""Every order type the flow can mix (protocol/orderkinds.py), sent by each trader client the
way its API spells it, and what the venue made of it, read back over REST."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest

from loadgen.flow.market import Market
from loadgen.flow.model import FlowModel
from loadgen.outcome import OK
from loadgen.protocol.orderkinds import GTD_LIFETIME_S, KINDS
from loadgen.venue.pairs import catalog
from tests.traders.conftest import make_client

CASES = [(p, k) for p in ("rest", "ws", "fix") for k, kind in KINDS.items() if p in kind.apis]


def _market(index: int) -> Market:
    info = catalog(30)[index]
    return Market.from_asset_pair(info.public_info(), info.ref_price)


@pytest.mark.parametrize(("protocol", "name"), CASES)
def test_each_order_type_reaches_the_venue_as_sent(venue_proc, protocol, name):
    kind = KINDS[name]
    market = _market(-3)  # a book no other test uses: nothing here fills but by this test
    key = venue_proc.key()
    client = make_client(protocol, venue_proc, key=key)
    rest = make_client("rest", venue_proc, key=key)
    order = FlowModel([market], seed=7, cross_share=0.0, kinds={name: 1})._order(market, 0.0)
    assert order.kind is kind
    placed = client.add(order)
    assert placed.outcome == OK, placed.error
    _, errors, result, _ = rest.call("QueryOrders", f"txid={placed.detail}&trades=false")
    assert not errors, errors
    info = result[placed.detail]
    descr = info["descr"]
    assert (descr["type"], descr["ordertype"]) == (order.side, kind.type)
    assert info["vol"].rstrip("0").rstrip(".") == market.qty_text(order.qty).rstrip("0").rstrip(".")
    if kind.trigger:
        assert float(info["stopprice"]) == float(market.price_text(order.trigger))
        assert info["misc"] == ""  # waiting for its trigger: the book has seen no trade there
    if kind.limit:
        limit = info["limitprice"] if kind.trigger else descr["price"]
        assert float(limit) == float(market.price_text(order.price))
    assert ("post" in info["oflags"].split(",")) == kind.post_only
    if kind.tif == "gtd":
        assert abs(info["expiretm"] - (time.time() + GTD_LIFETIME_S)) < 10
    if kind.rests:
        assert info["status"] == "open"
        if kind.display:  # the public book shows its slice only
            _assert_shows(venue_proc.endpoints["rest"], market, order)
    else:  # market, IOC, FOK: answered, and over (nothing rests on this book to take)
        assert info["status"] in ("closed", "canceled"), info
    assert client.cancel_all().outcome == OK
    client.close()
    rest.close()


def _assert_shows(base: str, market: Market, order) -> None:
    url = base.rstrip("/") + f"/0/public/Depth?pair={market.name}&count=50"
    with urllib.request.urlopen(url, timeout=10) as reply:
        book = next(iter(json.load(reply)["result"].values()))
    side = book["bids"] if order.side == "buy" else book["asks"]
    level = next(lvl for lvl in side if float(lvl[0]) == float(market.price_text(order.price)))
    assert float(level[1]) == float(market.qty_text(order.display))
