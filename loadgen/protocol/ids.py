"""Kraken-style identifiers: order ids like `OU22CG-KLAF2-FWUDD7` (6-5-6, facts 1.3).

Ids come from a counter scrambled by a bijection (multiplication by a number coprime with 36
modulo 36^16), so they are unique, look random, and cost one multiply and a base-36 render.
"""

from __future__ import annotations

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_MOD = 36**16
_MULT = 0x9E3779B97F4A7C15 | 1  # odd and not a multiple of 3: coprime with 36^16
while _MULT % 3 == 0:  # pragma: no cover - defensive
    _MULT += 2
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]  # two digits per lookup


def _base36_16(n: int) -> str:
    out = []
    for _ in range(8):
        n, r = divmod(n, 1296)
        out.append(_PAIRS[r])
    return "".join(reversed(out))


class IdFactory:
    """Unique ids with a one-letter prefix: 'O' orders, 'T' trades, 'A' amends."""

    __slots__ = ("_n", "prefix")

    def __init__(self, prefix: str, start: int = 1) -> None:
        self.prefix = prefix
        self._n = start

    def next(self) -> str:
        n = self._n
        self._n = n + 1
        s = self.prefix + _base36_16((n * _MULT) % _MOD)  # 17 characters
        return f"{s[:6]}-{s[6:11]}-{s[11:]}"


def looks_like_order_id(text: str) -> bool:
    return len(text) == 19 and text[6] == "-" and text[12] == "-"
