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

import zlib
from collections.abc import Iterable

DEPTHS = (10, 25, 100, 500, 1000)  # the depths a book subscription may ask for (default 10)
DEFAULT_DEPTH = 10
CHECKSUM_LEVELS = 10

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
    (parsed JSON, numbers as floats) and checked against each message's checksum."""

    def __init__(self, depth: int, price_decimals: int, qty_decimals: int) -> None:
        self.depth = depth
        self.price_decimals = price_decimals
        self.qty_decimals = qty_decimals
        self.bids: dict[float, Level] = {}
        self.asks: dict[float, Level] = {}

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
                keep = sorted(side, reverse=best_first)[: self.depth]
                for price in set(side) - set(keep):
                    del side[price]
        return entry.get("checksum") == self.checksum()

    def _set(self, side: dict[float, Level], level: dict) -> None:
        try:
            price, qty = float(level["price"]), float(level["qty"])
        except (KeyError, TypeError, ValueError) as exc:
            raise BookError(f"book level {level!r}: {exc}") from None
        if qty == 0:
            side.pop(price, None)
        else:
            side[price] = (f"{price:.{self.price_decimals}f}", f"{qty:.{self.qty_decimals}f}")

    def best(self, side: str, count: int = CHECKSUM_LEVELS) -> list[Level]:
        levels = self.bids if side == "bids" else self.asks
        return [levels[p] for p in sorted(levels, reverse=side == "bids")[:count]]

    def checksum(self) -> int:
        return checksum(self.best("asks"), self.best("bids"))
