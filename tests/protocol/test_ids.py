"""Order ids: Kraken's 6-5-6 shape and alphabet, unique."""

from __future__ import annotations

import re

from loadgen.protocol.ids import IdFactory, looks_like_order_id

KRAKEN_ID = re.compile(r"^[A-Z0-9]{6}-[A-Z0-9]{5}-[A-Z0-9]{6}$")


def test_shape_prefix_and_uniqueness():
    factory = IdFactory("O")
    ids = [factory.next() for _ in range(100_000)]
    assert len(set(ids)) == len(ids)
    assert all(KRAKEN_ID.match(i) and i[0] == "O" and looks_like_order_id(i) for i in ids[:1000])


def test_factories_with_different_prefixes_never_collide():
    orders, trades = IdFactory("O"), IdFactory("T")
    assert {orders.next() for _ in range(1000)}.isdisjoint({trades.next() for _ in range(1000)})
