"""The book checksum and message against Kraken's documented example (a golden vector)."""

from __future__ import annotations

import json
from pathlib import Path

import orjson

from loadgen.protocol import book

GOLDEN = json.loads((Path(__file__).parents[1] / "golden" / "kraken_book.json").read_text())


def _levels(name: str) -> list[tuple[str, str]]:
    return [(p, q) for p, q in GOLDEN[name]]


def test_the_documented_book_has_the_documented_checksum() -> None:
    assert book.checksum(_levels("asks"), _levels("bids")) == GOLDEN["checksum"] == 3310070434


def test_only_the_best_ten_a_side_count() -> None:
    asks = [*_levels("asks"), ("45300.0", "9.00000000")]
    bids = [*_levels("bids"), ("45270.0", "9.00000000")]
    assert book.checksum(asks, bids) == GOLDEN["checksum"]


def test_the_message_prints_numbers_at_the_pairs_precision_and_a_subscriber_follows_it() -> None:
    msg = book.message("snapshot", "BTC/USD", _levels("bids"), _levels("asks"),
                       GOLDEN["checksum"], "2023-10-06T17:35:55.440295Z")  # fmt: skip
    assert b'{"price":45285.2,"qty":0.00100000}' in msg  # trailing zeros kept, as Kraken's
    parsed = orjson.loads(msg)
    assert parsed["channel"] == "book" and parsed["type"] == "snapshot"
    local = book.LocalBook(10, GOLDEN["price_decimals"], GOLDEN["qty_decimals"])
    assert local.apply(parsed["data"][0], snapshot=True)
    # an update: the best ask goes, a new one comes; the checksum moves with the book
    update = {"asks": [{"price": 45285.2, "qty": 0}, {"price": 45285.0, "qty": 0.5}],
              "bids": [], "checksum": 0}  # fmt: skip
    assert not local.apply(update)  # 0 is not this book's checksum
    asks = [("45285.0", "0.50000000"), *_levels("asks")[1:]]
    assert local.checksum() == book.checksum(asks, _levels("bids"))


def test_a_message_read_as_text_keeps_the_wire_digits_whatever_the_precision_known() -> None:
    """Kraken: read the numbers as strings so trailing zeros survive (facts 10.2). Parsed by
    book.parse, the levels are the wire's text: a book told the wrong precision still sums."""
    msg = book.message("snapshot", "BTC/USD", _levels("bids"), _levels("asks"),
                       GOLDEN["checksum"], "2023-10-06T17:35:55.440295Z")  # fmt: skip
    entry = book.parse(msg)["data"][0]
    assert entry["asks"][0] == {"price": "45285.2", "qty": "0.00100000"}
    assert book.LocalBook(10, 0, 0).apply(entry, snapshot=True)
    assert not book.LocalBook(10, 0, 0).apply(orjson.loads(msg)["data"][0], snapshot=True)


def test_subscribers_share_each_book_state_and_each_still_checks_every_message() -> None:
    """BookStates: A subscribes first, B after A's first update; from B's snapshot on both
    hold the same state objects, each computed once; a state is never changed once made; a
    message whose checksum is wrong is wrong for both; the verdicts are LocalBook's own."""
    bids0, asks0 = [("100.0", "1.00000000")], [("101.0", "2.00000000")]
    bids1 = [("100.5", "0.50000000"), *bids0]

    def msg(kind: str, bids, asks, at: str, crc: int | None = None) -> bytes:
        full = {"snapshot": (bids, asks), "update": (bids1, asks0)}[kind]
        crc = book.checksum(full[1], full[0]) if crc is None else crc
        return book.message(kind, "BTC/USD", bids, asks, crc, at)

    snap_a = msg("snapshot", bids0, asks0, "2026-12-07T10:00:00.000001Z")
    update = msg("update", [("100.5", "0.50000000")], [], "2026-12-07T10:00:00.000002Z")
    snap_b = msg("snapshot", bids1, asks0, "2026-12-07T10:00:00.000003Z")  # A's book now
    bad = msg("update", [("99.0", "1.00000000")], [], "2026-12-07T10:00:00.000004Z", crc=7)
    states = book.BookStates()

    def step(state, payload):
        entry = book.parse(payload)["data"][0]
        return states.step(state, payload, entry, b'"snapshot"' in payload, (10, 1, 8))

    a, held = step(None, snap_a)
    assert held
    a1, held = step(a, update)
    assert held and a.content() == (tuple(bids0), tuple(asks0))  # a is as it was
    b, held = step(None, snap_b)
    assert held and b is a1 and states.computed == 3  # B's snapshot is the state A holds
    for state in (a1, b):
        _, held = step(state, bad)
        alone = book.LocalBook(10, 1, 8)
        alone.apply(book.parse(snap_b)["data"][0], snapshot=True)
        assert held is False is alone.apply(book.parse(bad)["data"][0])
    assert states.computed == 4  # the bad update, from the one state both hold, once
    deeper, held = states.step(None, snap_b, book.parse(snap_b)["data"][0], True, (25, 1, 8))
    assert held and deeper is not a1 and deeper.depth == 25  # the same bytes at another depth
