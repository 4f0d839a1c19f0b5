"""FIX 4.4 codec: exact bytes both ways (cross-checked with simplefix), framing, garbling."""

from __future__ import annotations

import pytest
import simplefix

from loadgen.protocol import fix

HEADER = fix.header("CLIENT", "KRAKEN-TRD", 5, "20240101-00:00:00.000")
NOS_BODY = [
    (11, "1688738168"),
    (38, "0.01"),
    (40, 2),
    (44, "1000"),
    (54, 1),
    (55, "BTC/USD"),
    (59, 1),
]
# The facts file's NewOrderSingle example (S14), with our header; BodyLength and CheckSum
# were computed by simplefix, an independent codec.
NOS_WIRE = (
    b"8=FIX.4.4\x019=115\x0135=D\x0149=CLIENT\x0156=KRAKEN-TRD\x0134=5\x01"
    b"52=20240101-00:00:00.000\x0111=1688738168\x0138=0.01\x0140=2\x0144=1000\x01"
    b"54=1\x0155=BTC/USD\x0159=1\x0110=051\x01"
)


def simplefix_encode(msg_type: str, body: list[tuple[int, object]]) -> bytes:
    msg = simplefix.FixMessage()
    for tag, value in [
        (8, "FIX.4.4"),
        (35, msg_type),
        (49, "CLIENT"),
        (56, "KRAKEN-TRD"),
        (34, 5),
        (52, "20240101-00:00:00.000"),
    ]:
        msg.append_pair(tag, value, header=True)
    for tag, value in body:
        msg.append_pair(tag, value)
    return msg.encode()


def test_new_order_single_exact_bytes():
    assert fix.encode("D", HEADER, NOS_BODY) == NOS_WIRE
    assert simplefix_encode("D", NOS_BODY) == NOS_WIRE


def test_decode_exact_fields():
    (text,) = fix.FixReader().feed(NOS_WIRE)
    fields = fix.decode(text)
    assert fields[35] == "D" and fields[11] == "1688738168" and fields[55] == "BTC/USD"
    assert fields[10] == "051" and fields[9] == "115"


@pytest.mark.parametrize(
    ("msg_type", "body"),
    [
        ("A", [(98, 0), (108, 30), (141, "Y"), (553, "key"), (554, "pw=="), (5025, 1700000000000)]),
        (
            "8",
            [
                (37, "OAAAAA-BBBBB-CCCCCC"),
                (11, "1"),
                (17, "T1"),
                (150, "F"),
                (39, "1"),
                (55, "BTC/USD"),
                (54, 1),
                (31, "60000.0"),
                (32, "0.5"),
            ],
        ),
        ("j", [(45, 7), (372, "D"), (379, "abc"), (380, 0), (58, "EOrder:Rate limit exceeded")]),
        ("4", [(123, "Y"), (36, 12)]),
    ],
)
def test_encoding_matches_simplefix(msg_type, body):
    """Each row: our bytes equal simplefix's for the same fields, and read back the same."""
    wire = fix.encode(msg_type, HEADER, body)
    assert wire == simplefix_encode(msg_type, body)
    (text,) = fix.FixReader().feed(wire)
    fields = fix.decode(text)
    assert all(fields[tag] == str(value) for tag, value in body)


def test_reader_splits_and_joins_across_chunks():
    reader = fix.FixReader()
    stream = NOS_WIRE * 3
    out: list = []
    for i in range(0, len(stream), 7):  # 7-byte dribbles
        out += reader.feed(stream[i : i + 7])
    assert out == [NOS_WIRE.decode()] * 3


def test_bad_checksum_is_garbled_and_reading_goes_on():
    broken = NOS_WIRE.replace(b"10=051", b"10=052")
    out = fix.FixReader().feed(broken + NOS_WIRE)
    assert isinstance(out[0], fix.Garbled) and "CheckSum" in out[0].reason
    assert out[0].seq_num() == 5
    assert out[1] == NOS_WIRE.decode()


def test_wrong_body_length_is_garbled_and_reading_goes_on():
    broken = NOS_WIRE.replace(b"9=115", b"9=100")
    out = fix.FixReader().feed(broken + NOS_WIRE)
    assert isinstance(out[0], fix.Garbled) and "BodyLength" in out[0].reason
    assert out[1] == NOS_WIRE.decode()


@pytest.mark.parametrize(
    "garbage",
    [
        b"GET / HTTP/1.1\r\n\r\n",
        b"8=FIX.4.2\x019=5\x01",
        b"8=FIX.4.4\x019=abc\x01",
        b"8=FIX.4.4\x019=99999999\x01",
    ],
)
def test_unframeable_streams_raise(garbage):
    with pytest.raises(fix.FixFramingError):
        fix.FixReader().feed(garbage + b"x" * 100)


def test_truncated_message_waits_for_the_rest():
    reader = fix.FixReader()
    assert reader.feed(NOS_WIRE[:-5]) == []
    assert reader.feed(NOS_WIRE[-5:]) == [NOS_WIRE.decode()]


def test_oversized_message_is_refused():
    with pytest.raises(fix.FixFramingError):
        fix.FixReader(max_message=1024).feed(b"8=FIX.4.4\x019=5000\x0135=D\x01" + b"1" * 2000)


def test_kraken_logon_password():
    """554 = b64(HMAC-SHA512(b64decode(secret), SHA256(input + nonce))) (facts 5)."""
    import base64
    import hashlib
    import hmac

    secret = base64.b64encode(b"s" * 64)
    expected = base64.b64encode(
        hmac.new(
            b"s" * 64,
            hashlib.sha256(
                b"35=A\x0134=1\x0149=ME\x0156=KRAKEN-TRD\x01553=KEY\x011700000000000"
            ).digest(),
            hashlib.sha512,
        ).digest()
    ).decode()
    assert (
        fix.logon_password(base64.b64decode(secret), 1, "ME", "KRAKEN-TRD", "KEY", "1700000000000")
        == expected
    )


@pytest.mark.parametrize("size", [0, 1, 255, 256, 257, 511, 512, 513, 5000])
def test_checksum_is_the_byte_sum_mod_256_at_every_size(size):
    """The Adler-32 shortcut must equal the definition, across its 256-byte chunk edges."""
    import random

    rng = random.Random(size)
    for _ in range(50):
        data = bytes(rng.randrange(256) for _ in range(size))
        assert fix.checksum(data) == sum(data) % 256
    assert fix.checksum(b"\xff" * size) == (255 * size) % 256  # the largest sums


DECODE_CASES = [
    NOS_WIRE,
    fix.encode("A", HEADER, [(98, 0), (108, 30), (553, "key"), (554, "a+b/c=="), (5025, 17)]),
    fix.encode("8", HEADER, [(37, "O1"), (11, "1"), (58, "a=b=c"), (10000, "x"), (20001, "")]),
]


@pytest.mark.parametrize("wire", DECODE_CASES)
def test_decode_reads_what_simplefix_reads_both_ways(wire):
    """The compiled path (digits read in place) and the plain one (split in C) give the same
    fields, and simplefix's parser finds the same: '=' inside a value, tags past 9999, an
    empty value."""
    (text,) = fix.FixReader().feed(wire)
    parser = simplefix.FixParser(allow_empty_values=True)
    parser.append_buffer(wire)
    theirs = {int(tag): value.decode() for tag, value in parser.get_message().pairs}
    assert fix._decode_by_char(text) == fix._decode_by_split(text) == theirs
    assert fix.decode(text) == theirs


@pytest.mark.parametrize(
    "text",
    ["abc=1\x01", "=1\x01", "35\x01", "35=D\x0149", "3\u0663=x\x01", "35=D\x01 9=1\x01"],
)
def test_decode_refuses_a_field_that_is_not_tag_value_both_ways(text):
    for decode in (fix._decode_by_char, fix._decode_by_split, fix.decode):
        with pytest.raises(ValueError, match="is not tag=value"):
            decode(text)


def _decoded(decode, text):
    try:
        return decode(text)
    except ValueError:
        return "ValueError"


def test_both_decode_paths_agree_on_every_short_text():
    """Every text of up to 6 characters over tags' digits, '=', SOH and a letter: the compiled
    path and the plain one give the same fields or both refuse ('=' in a value balanced by a
    field without one used to fool the plain path's split)."""
    import itertools

    alphabet = "13=\x01a"
    for n in range(1, 7):
        for chars in itertools.product(alphabet, repeat=n):
            text = "".join(chars)
            by_char = _decoded(fix._decode_by_char, text)
            assert by_char == _decoded(fix._decode_by_split, text), repr(text)
    for text in ("35=1=2\x0158\x01", "1==1\x01\x01", "35=D\x01554=a+b==\x01"):
        assert _decoded(fix._decode_by_char, text) == _decoded(fix._decode_by_split, text)


def test_decode_skips_an_empty_field_and_takes_an_unterminated_last_one_both_ways():
    text = "35=D\x01\x0111=7\x01"
    assert fix._decode_by_char(text) == fix._decode_by_split(text) == {35: "D", 11: "7"}
    assert fix._decode_by_char("35=D") == fix._decode_by_split("35=D") == {35: "D"}


def test_the_compiled_module_takes_the_compiled_path():
    from loadgen import native

    assert (native.running() == "compiled (mypyc)") == fix.NATIVE
