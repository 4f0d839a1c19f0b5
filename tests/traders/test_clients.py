"""What all three trader clients share: one interface, every operation, one Outcome each."""

from __future__ import annotations

import pytest

from loadgen.flow.market import Market
from loadgen.flow.model import FlowModel
from loadgen.outcome import OK
from loadgen.venue.pairs import catalog
from tests.traders.conftest import make_client

BTC = Market.from_asset_pair(catalog(1)[0].public_info())


@pytest.mark.parametrize("protocol", ["rest", "ws", "fix"])
def test_every_operation(venue_proc, protocol):
    client = make_client(protocol, venue_proc)
    model = FlowModel([BTC], seed=1, cross_share=0.0)
    first = model._order(BTC, 0.0)
    placed = client.add(first)
    assert placed.outcome == OK and len(placed.detail) == 19 and placed.latency_us > 0
    first.txid = placed.detail
    assert client.amend(first, qty=first.qty + BTC.min_lots).outcome == OK
    edited = client.edit(first, price=first.price - 10)
    assert edited.outcome == OK and len(edited.detail) == 19  # REST/WS: a new id; FIX: the same
    first.txid = edited.detail
    assert client.cancel(first).outcome == OK
    batch = [model._order(BTC, 0.0) for _ in range(4)]
    added = client.batch_add(batch)
    assert added.outcome == OK and len(added.detail) == 4 and all(added.detail)
    for order, txid in zip(batch, added.detail, strict=True):
        order.txid = txid
    assert client.batch_cancel(batch[:3]).outcome == OK
    everything = client.cancel_all()
    assert everything.outcome == OK and everything.detail == 1
    client.close()
