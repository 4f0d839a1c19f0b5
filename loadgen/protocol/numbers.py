"""Integers from the wire, strictly: ASCII digits only, bounded length (no I/O here).

`str.isdigit()` accepts Unicode digits ("²", "٣") that `int()` then refuses or reads as
something else, and `int()` of a long enough string costs quadratic time or raises past
4,300 digits. Every integer the venue reads from a peer goes through `wire_int`, so a bad
one is a named refusal, never an internal error.
"""

from __future__ import annotations

from typing import Final

NONCE_DIGITS: Final = 20  # a Kraken nonce is an unsigned 64-bit integer: at most 20 decimal digits
MAX_NONCE: Final = 2**64 - 1
FIELD_DIGITS: Final = 18  # other integers (sequence numbers, userrefs, timeouts) fit in int64


def wire_int(text: object, digits: int = FIELD_DIGITS, signed: bool = False) -> int | None:
    """The integer `text` spells in ASCII decimal ('-' first when signed), or None."""
    if not isinstance(text, str):
        return None
    body = text[1:] if signed and text.startswith("-") else text
    if not body or len(body) > digits or not (body.isascii() and body.isdigit()):
        return None
    return int(text)


def nonce(text: object) -> int | None:
    """A Kraken nonce: 1 to 20 ASCII digits, below 2**64 (so none can lock a key for good)."""
    value = wire_int(text, NONCE_DIGITS)
    return value if value is not None and value <= MAX_NONCE else None
