"""The pair catalogue and its exact decimal formatting."""

from __future__ import annotations

import pytest

from loadgen.venue.pairs import PairIndex, catalog


@pytest.mark.parametrize(
    ("units", "decimals", "text"),
    [
        (0, 8, "0.00000000"),
        (125, 2, "1.25"),
        (5, 1, "0.5"),
        (7, 0, "7"),
        (123456789012345678901, 8, "1234567890123.45678901"),
        (-150, 2, "-1.50"),
    ],
)
def test_exact_decimal_texts(units, decimals, text):
    pair = catalog(1)[0]
    assert pair.__class__.fmt_qty is not None
    from loadgen.venue.pairs import _fmt

    assert _fmt(units, decimals) == text


def test_catalogue_size_names_and_lookup():
    pairs = catalog(720)
    assert len(pairs) == 720 and len({p.altname for p in pairs}) == 720
    index = PairIndex(pairs)
    assert index.get("XBTUSD") is index.get("BTC/USD") is pairs[0]
    assert pairs[0].fmt_price(600001) == "60000.1" and pairs[0].fmt_qty(125000000) == "1.25000000"
    assert index.get("NOPE") is None
