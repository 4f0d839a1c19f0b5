"""Kraken's WebSocket v2 `book` channel, sans-IO: the checksum, the message, a subscriber's book.

Facts 10.1 and 10.2 (Kraken's "Spot WS book v2" checksum guide, S26):
- a snapshot gives `depth` levels a side; an update gives only the levels that changed, `qty` 0
  deleting one; the subscriber applies them in order and truncates each side to its depth (no
  delete is sent for a level pushed out of range);
- every snapshot and update carries `checksum`: CRC-32 of the best 10 asks (price ascending)
  then the best 10 bids (price descending), each level written as its price then its qty, full
  precision decimal texts with the '.' removed and leading zeros stripped.

Prices and quantities go out as JSON numbers printed at the pair's precision (`45285.2`,
`0.00100000`), as Kraken's are, so a subscriber that parses decimals keeps the trailing zeros
the checksum is taken over; one that parses floats prints them again at the pair's precision
(`LocalBook`, python-kraken-sdk's order book).
"""

from __future__ import annotations

import heapq
import json
import zlib
from collections.abc import Iterable
from typing import Any, Final

DEPTHS: Final = (10, 25, 100, 500, 1000)  # the depths a book subscription may ask for (default 10)
DEFAULT_DEPTH: Final = 10
CHECKSUM_LEVELS: Final = 10

Level = tuple[str, str]  # (price text, qty text) at the pair's precision


def _digits(text: str) -> str:
    return text.replace(".", "").lstrip("0")


def checksum(asks: Iterable[Level], bids: Iterable[Level]) -> int:
    """Kraken's book checksum (unsigned 32 bits) of levels given best first on each side."""
    parts = []
    for side in (asks, bids):
        for n, (price, qty) in enumerate(side):
            if n == CHECKSUM_LEVELS:
                break
            parts.append(_digits(price) + _digits(qty))
    return zlib.crc32("".join(parts).encode()) & 0xFFFFFFFF


def message(kind: str, symbol: str, bids: list[Level], asks: list[Level], crc: int,
            timestamp: str) -> bytes:  # fmt: skip
    """The channel message text: numbers printed as given (orjson would print floats)."""
    b = ",".join(f'{{"price":{p},"qty":{q}}}' for p, q in bids)
    a = ",".join(f'{{"price":{p},"qty":{q}}}' for p, q in asks)
    return (
        f'{{"channel":"book","type":"{kind}","data":[{{"symbol":"{symbol}","bids":[{b}],'
        f'"asks":[{a}],"checksum":{crc},"timestamp":"{timestamp}"}}]}}'
    ).encode()


class BookError(ValueError):
    """A book message that cannot be applied (not a book, a side that is not a list...)."""


class LocalBook:
    """A subscriber's copy of one symbol's book at one depth, kept from the channel's messages
    and checked against each message's checksum.

    Kraken's guide says to read prices and quantities as decimals or strings so their trailing
    zeros survive (facts 10.2): a message parsed by `parse` (below) gives each number as the
    text on the wire, which is kept as it came; a float (a JSON parser that made numbers of
    them) is printed again at the pair's precision, as python-kraken-sdk does. Each level keeps
    its checksum digits, made once when it is set, not at every checksum."""

    def __init__(self, depth: int, price_decimals: int, qty_decimals: int) -> None:
        self.depth = depth
        self.price_decimals = price_decimals
        self.qty_decimals = qty_decimals
        # price -> (price text, qty text, the level's checksum digits)
        self.bids: dict[float, tuple[str, str, str]] = {}
        self.asks: dict[float, tuple[str, str, str]] = {}

    def apply(self, entry: dict, snapshot: bool = False) -> bool:
        """Apply one `data` element (a snapshot's replaces the book); True when the checksum
        it carries is the book's now."""
        if snapshot:
            self.bids.clear()
            self.asks.clear()
        for name, side, best_first in (("bids", self.bids, True), ("asks", self.asks, False)):
            levels = entry.get(name, [])
            if not isinstance(levels, list):
                raise BookError(f"book {name} is not a list")
            for level in levels:
                self._set(side, level)
            if len(side) > self.depth:
                for price in sorted(side, reverse=best_first)[self.depth :]:
                    del side[price]
        return entry.get("checksum") == self.checksum()

    def _set(self, side: dict[float, tuple[str, str, str]], level: dict) -> None:
        try:
            price, qty = level["price"], level["qty"]
            key, amount = float(price), float(qty)
        except (KeyError, TypeError, ValueError) as exc:
            raise BookError(f"book level {level!r}: {exc}") from None
        if amount == 0:
            side.pop(key, None)
            return
        if not isinstance(price, str):
            price = f"{key:.{self.price_decimals}f}"
        if not isinstance(qty, str):
            qty = f"{amount:.{self.qty_decimals}f}"
        side[key] = (price, qty, _digits(price) + _digits(qty))

    def _best(self, side: str, count: int) -> list[tuple[str, str, str]]:
        levels = self.bids if side == "bids" else self.asks
        keys = (heapq.nlargest if side == "bids" else heapq.nsmallest)(count, levels)
        return [levels[p] for p in keys]

    def best(self, side: str, count: int = CHECKSUM_LEVELS) -> list[Level]:
        return [(p, q) for p, q, _ in self._best(side, count)]

    def checksum(self) -> int:
        asks = self._best("asks", CHECKSUM_LEVELS)
        bids = self._best("bids", CHECKSUM_LEVELS)
        text = "".join([d for _, _, d in asks] + [d for _, _, d in bids])
        return zlib.crc32(text.encode()) & 0xFFFFFFFF

    def copy(self) -> LocalBook:
        out = LocalBook(self.depth, self.price_decimals, self.qty_decimals)
        out.bids, out.asks = dict(self.bids), dict(self.asks)
        return out

    def content(self) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
        """The levels as the wire gave them, best first: what two equal books share."""
        return tuple(self.best("bids", len(self.bids))), tuple(self.best("asks", len(self.asks)))


class BookStates:
    """The books of one process's subscribers, each state computed once and shared.

    Subscribers of one symbol at one depth hear the same update messages, byte for byte, in
    the same order; from the same book, the same message leads to the same book and the same
    checksum verdict. So a state is never changed once made: `step` returns the state that
    (state, message) leads to, computed by LocalBook.apply the first time and looked up after;
    a snapshot whose levels equal a state already held (same depth and precision; found by its
    checksum, then compared level by level) is that state, so a subscriber that joins later
    shares the others' from its snapshot on. Every subscriber's every message is still checked:
    one whose book or message differs (a gap, a corrupt frame) takes its own path.
    Bounded by the levels the tables hold (LEVELS_KEPT): past it they start afresh (the states
    in use stay with their subscribers; their next steps are computed again).
    """

    LEVELS_KEPT = 2_000_000

    def __init__(self) -> None:
        self.steps: dict[tuple[Any, bytes], tuple[LocalBook, bool]] = {}
        self.by_sum: dict[tuple[int, int, int, int], LocalBook] = {}  # (shape, checksum) -> one
        self.levels = 0  # levels held by the states in the tables
        self.computed = 0  # steps computed (not looked up): the work the sharing left

    def step(self, book: LocalBook | None, payload: bytes, entry: dict, snapshot: bool,
             shape: tuple[int, int, int]) -> tuple[LocalBook, bool]:  # fmt: skip
        """(the book after the message, whether its checksum held). `entry` is the message's
        parsed data element; `shape` the subscription's (depth, price decimals, qty decimals)."""
        key = (shape if snapshot or book is None else book, payload)
        known = self.steps.get(key)
        if known is not None:
            return known
        new = LocalBook(*shape) if snapshot or book is None else book.copy()
        held = new.apply(entry, snapshot=snapshot)  # BookError propagates, nothing kept
        self.computed += 1
        found = (*shape, new.checksum())
        if snapshot:
            other = self.by_sum.get(found)
            if other is not None and other.content() == new.content():
                new = other
        if self.levels > self.LEVELS_KEPT:
            self.steps.clear()
            self.by_sum.clear()
            self.levels = 0
        self.by_sum[found] = new
        self.levels += len(new.bids) + len(new.asks)
        self.steps[key] = (new, held)
        return new, held


_DECODER: Final = json.JSONDecoder(parse_float=str)


def parse(payload: bytes) -> dict:
    """A channel message with every non-integer number as its text on the wire (`45285.2`,
    `0.00100000`): what LocalBook keeps for the checksum. ValueError when it is not JSON."""
    return _DECODER.decode(payload.decode())
