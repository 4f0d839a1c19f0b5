"""Kraken-style identifiers: order ids like `OU22CG-KLAF2-FWUDD7` (6-5-6, facts 1.3).

An id is a one-letter prefix and 16 characters from Kraken's alphabet (A-Z, 0-9). Here the 16
characters are a counter scrambled by a bijection on 64 bits (multiplication by an odd constant
modulo 2^64), written in hex: unique, random-looking, and one multiply plus one format per id,
a tenth of a base-36 render, since the venue makes one for every order.
"""

from __future__ import annotations

from typing import Final

_MASK: Final = (1 << 64) - 1
_TOP: Final = 1 << 64
_MULT: Final = 0x9E3779B97F4A7C15  # odd (2^64 / golden ratio): a bijection modulo 2^64


class IdFactory:
    """Unique ids with a one-letter prefix: 'O' orders, 'T' trades, 'A' amends."""

    __slots__ = ("_n", "prefix")

    def __init__(self, prefix: str, start: int = 1) -> None:
        self.prefix = prefix
        self._n = start

    def next(self) -> str:
        n = self._n
        self._n = n + 1
        # hex() of a 65-bit number is '0x1' and the 16 digits, zero-padded with no format spec
        # (which costs a str.format call compiled: 0.45 against 0.73 us an id, measured)
        s = self.prefix + hex(((n * _MULT) & _MASK) | _TOP)[3:].upper()  # 17 characters
        return s[:6] + "-" + s[6:11] + "-" + s[11:]


def looks_like_order_id(text: str) -> bool:
    return len(text) == 19 and text[6] == "-" and text[12] == "-"
