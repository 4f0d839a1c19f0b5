"""RFC 6455 WebSocket framing and the opening handshake, sans-IO.

Rules this codec keeps (RFC 6455 section 5):
- Client-to-server frames must be masked, server-to-client frames must not be; a frame that
  breaks this is a protocol error (close code 1002).
- Control frames (close, ping, pong) carry at most 125 bytes and are never fragmented.
- A message may be fragmented: a text/binary frame with FIN=0, then continuation frames.
- A message larger than `max_size` is refused with close code 1009, before it is buffered.
- Text messages must be UTF-8; this codec leaves that check to the JSON parser above it
  (orjson rejects invalid UTF-8), which the venue maps to an error reply.
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
from typing import Final

try:  # The C unmasker from `websockets`, ten times faster than the int XOR below.
    from websockets.speedups import apply_mask as _c_apply_mask
except ImportError:  # pragma: no cover - websockets is a declared dependency
    _c_apply_mask = None  # type: ignore[assignment]

OP_CONT: Final = 0x0
OP_TEXT: Final = 0x1
OP_BINARY: Final = 0x2
OP_CLOSE: Final = 0x8
OP_PING: Final = 0x9
OP_PONG: Final = 0xA

CLOSE_NORMAL: Final = 1000
CLOSE_GOING_AWAY: Final = 1001
CLOSE_PROTOCOL_ERROR: Final = 1002
CLOSE_UNSUPPORTED: Final = 1003
CLOSE_INVALID_DATA: Final = 1007
CLOSE_TOO_BIG: Final = 1009

_GUID: Final = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
DEFAULT_MAX_SIZE: Final = 1 << 20  # 1 MiB: far above any order message; a bigger one is an attack.


class WsProtocolError(Exception):
    """The peer broke RFC 6455. `code` is the close code to send."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def accept_key(client_key: bytes) -> bytes:
    """Sec-WebSocket-Accept for a Sec-WebSocket-Key."""
    return base64.b64encode(hashlib.sha1(client_key.strip() + _GUID).digest())


def handshake_response(client_key: bytes) -> bytes:
    return (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept_key(client_key) + b"\r\n\r\n"
    )


def apply_mask(data: bytes, mask: bytes) -> bytes:
    if _c_apply_mask is not None:
        return _c_apply_mask(data, mask)
    n = len(data)
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


def encode_frame(opcode: int, payload: bytes, *, mask: bool = False, fin: bool = True) -> bytes:
    """One frame. Servers send unmasked frames; clients must pass mask=True."""
    n = len(payload)
    first = (0x80 if fin else 0) | opcode
    mask_bit = 0x80 if mask else 0
    if n < 126:
        header = bytes((first, mask_bit | n))
    elif n < 65536:
        header = struct.pack("!BBH", first, mask_bit | 126, n)
    else:
        header = struct.pack("!BBQ", first, mask_bit | 127, n)
    if not mask:
        return header + payload
    key = os.urandom(4)
    return header + key + apply_mask(payload, key)


def encode_close(code: int, reason: str = "", *, mask: bool = False) -> bytes:
    return encode_frame(OP_CLOSE, struct.pack("!H", code) + reason.encode()[:123], mask=mask)


class FrameParser:
    """Bytes in, complete messages out: `feed(data)` returns [(opcode, payload), ...].

    Text and binary messages come out reassembled; control frames come out as they arrive.
    `expect_masked` is True on the server side.
    """

    __slots__ = ("_buf", "_frag", "_frag_op", "_frag_size", "expect_masked", "max_size")

    def __init__(self, *, expect_masked: bool, max_size: int = DEFAULT_MAX_SIZE) -> None:
        self.expect_masked = expect_masked
        self.max_size = max_size
        self._buf = b""
        self._frag: list[bytes] = []
        self._frag_op = 0
        self._frag_size = 0

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        buf = self._buf + data if self._buf else data
        out: list[tuple[int, bytes]] = []
        pos = 0
        end = len(buf)
        while end - pos >= 2:
            b0 = buf[pos]
            b1 = buf[pos + 1]
            n = b1 & 0x7F
            head = pos + 2
            if n == 126:
                if end - head < 2:
                    break
                n = int.from_bytes(buf[head : head + 2], "big")
                head += 2
            elif n == 127:
                if end - head < 8:
                    break
                n = int.from_bytes(buf[head : head + 8], "big")
                head += 8
            masked = b1 & 0x80
            self._check_header(b0, masked, n)
            if masked:
                if end - head < 4 + n:
                    break
                mask = buf[head : head + 4]
                payload = apply_mask(buf[head + 4 : head + 4 + n], mask)
                pos = head + 4 + n
            else:
                if end - head < n:
                    break
                payload = buf[head : head + n]
                pos = head + n
            message = self._assemble(b0, payload)
            if message is not None:
                out.append(message)
        self._buf = buf[pos:]
        return out

    def _check_header(self, b0: int, masked: int, n: int) -> None:
        if b0 & 0x70:
            raise WsProtocolError(CLOSE_PROTOCOL_ERROR, "reserved bits set (no extension agreed)")
        if bool(masked) != self.expect_masked:
            side = (
                "client frames must be masked"
                if self.expect_masked
                else "server frames are unmasked"
            )
            raise WsProtocolError(CLOSE_PROTOCOL_ERROR, side)
        opcode = b0 & 0x0F
        if opcode >= OP_CLOSE:
            if n > 125 or not b0 & 0x80:
                raise WsProtocolError(CLOSE_PROTOCOL_ERROR, "bad control frame")
            if opcode not in (OP_CLOSE, OP_PING, OP_PONG):
                raise WsProtocolError(CLOSE_PROTOCOL_ERROR, f"unknown opcode {opcode:#x}")
        elif opcode not in (OP_CONT, OP_TEXT, OP_BINARY):
            raise WsProtocolError(CLOSE_PROTOCOL_ERROR, f"unknown opcode {opcode:#x}")
        if n + self._frag_size > self.max_size:
            raise WsProtocolError(CLOSE_TOO_BIG, f"message over {self.max_size} bytes")

    def _assemble(self, b0: int, payload: bytes) -> tuple[int, bytes] | None:
        opcode = b0 & 0x0F
        fin = b0 & 0x80
        if opcode >= OP_CLOSE:
            return opcode, payload
        if opcode == OP_CONT:
            if not self._frag:
                raise WsProtocolError(CLOSE_PROTOCOL_ERROR, "continuation without a first frame")
            self._frag.append(payload)
            self._frag_size += len(payload)
            if not fin:
                return None
            whole = b"".join(self._frag)
            self._frag, self._frag_size = [], 0
            return self._frag_op, whole
        if self._frag:
            raise WsProtocolError(CLOSE_PROTOCOL_ERROR, "new message inside a fragmented one")
        if fin:
            return opcode, payload
        self._frag, self._frag_op, self._frag_size = [payload], opcode, len(payload)
        return None


def parse_close(payload: bytes) -> tuple[int, str]:
    if len(payload) < 2:
        return CLOSE_NORMAL, ""
    return int.from_bytes(payload[:2], "big"), payload[2:].decode("utf-8", "replace")
