"""RFC 6455 framing: exact bytes both ways, and the refusals."""

from __future__ import annotations

import pytest

from loadgen.protocol import wsframe
from loadgen.protocol.wsframe import FrameParser, WsProtocolError


def test_accept_key_rfc_example():
    """RFC 6455 section 1.3's worked example."""
    assert wsframe.accept_key(b"dGhlIHNhbXBsZSBub25jZQ==") == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


@pytest.mark.parametrize(
    ("payload", "wire"),
    [
        (b"Hello", b"\x81\x05Hello"),  # RFC 6455 5.7: single-frame unmasked text
        (b"x" * 126, b"\x81\x7e\x00\x7e" + b"x" * 126),  # 16-bit length
        (b"y" * 65536, b"\x81\x7f" + (65536).to_bytes(8, "big") + b"y" * 65536),  # 64-bit length
    ],
)
def test_server_frames_exact_bytes_and_back(payload, wire):
    assert wsframe.encode_frame(wsframe.OP_TEXT, payload) == wire
    assert FrameParser(expect_masked=False).feed(wire) == [(wsframe.OP_TEXT, payload)]


def test_rfc_masked_hello():
    """RFC 6455 5.7: a masked 'Hello' from a client."""
    wire = b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"
    assert FrameParser(expect_masked=True).feed(wire) == [(wsframe.OP_TEXT, b"Hello")]


def test_masked_round_trip_and_dribble():
    wire = wsframe.encode_frame(wsframe.OP_TEXT, b'{"method":"ping"}', mask=True)
    parser = FrameParser(expect_masked=True)
    out = []
    for byte in wire:
        out += parser.feed(bytes([byte]))
    assert out == [(wsframe.OP_TEXT, b'{"method":"ping"}')]


def test_fragmented_message_is_reassembled_around_a_ping():
    """RFC 6455 5.7: fragmented 'Hel' + 'lo', with a control frame in between."""
    parser = FrameParser(expect_masked=False)
    assert parser.feed(b"\x01\x03Hel") == []
    assert parser.feed(b"\x89\x00") == [(wsframe.OP_PING, b"")]
    assert parser.feed(b"\x80\x02lo") == [(wsframe.OP_TEXT, b"Hello")]


@pytest.mark.parametrize(
    ("wire", "code"),
    [
        (b"\x81\x05Hello", wsframe.CLOSE_PROTOCOL_ERROR),  # unmasked from a client
        (b"\xc1\x80abcd", wsframe.CLOSE_PROTOCOL_ERROR),  # reserved bit, no extension
        (b"\x83\x80abcd", wsframe.CLOSE_PROTOCOL_ERROR),  # opcode 3 is reserved
        (b"\x09\x80abcd", wsframe.CLOSE_PROTOCOL_ERROR),  # fragmented ping
        (b"\x80\x80abcd", wsframe.CLOSE_PROTOCOL_ERROR),  # continuation with nothing to continue
        (b"\x81\xff" + (1 << 40).to_bytes(8, "big"), wsframe.CLOSE_TOO_BIG),  # 1 TiB message
    ],
)
def test_protocol_violations(wire, code):
    with pytest.raises(WsProtocolError) as info:
        FrameParser(expect_masked=True).feed(wire)
    assert info.value.code == code


def test_close_payload():
    frame = wsframe.encode_close(1009, "too big")
    assert frame == b"\x88\x09\x03\xf1too big"
    ((_op, payload),) = FrameParser(expect_masked=False).feed(frame)
    assert wsframe.parse_close(payload) == (1009, "too big")
