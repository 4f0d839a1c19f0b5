"""Integers from the wire (protocol/numbers): ASCII digits only, bounded length."""

from __future__ import annotations

import pytest

from loadgen.protocol.numbers import nonce, wire_int

CASES = [
    ("42", {}, 42, "plain ASCII digits"),
    ("-7", {"signed": True}, -7, "a sign where one is allowed"),
    ("-7", {}, None, "no sign where none is"),
    ("\u00b2", {}, None, "a Unicode superscript two: isdigit() says yes, int() says no"),
    ("\u0663", {}, None, "an Arabic-Indic three: int() would read it as 3"),
    ("1" * 19, {}, None, "past 18 digits"),
    ("", {}, None, "nothing"),
    (" 1", {}, None, "a space"),
    (12, {}, None, "not text at all"),
]


@pytest.mark.parametrize(("text", "kw", "value", "why"), CASES, ids=[c[3] for c in CASES])
def test_wire_int(text, kw, value, why) -> None:
    assert wire_int(text, **kw) == value, why


def test_a_nonce_is_a_64_bit_unsigned_integer() -> None:
    assert nonce(str(2**64 - 1)) == 2**64 - 1
    assert nonce(str(2**64)) is None  # would lock the key: no later nonce could pass it
    assert nonce("9" * 50) is None
    assert nonce("1700000000000000") == 1700000000000000
