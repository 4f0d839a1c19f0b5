"""HdrHistogram's compressed V2 encoding for sparse histograms, without a counts array.

`hdrh.HdrHistogram` keeps a dense array of 23,552 eight-byte counters for 1 us .. 1 h at three
significant digits: 188 KB per histogram, whatever it holds. A run keeps two per cell per
second (service and response time), so a 30-minute run read back for its report held ~16 GB,
and `loadgen run`'s live line alone grew ~200 MB/min (measured, issue 13). A second's cell holds
a few hundred distinct buckets, so loadgen keeps histograms as {counts index: count} and speaks
HdrHistogram only on the wire, through this codec, byte for byte the encoding `hdrh` writes
(tests/metrics/test_hdrcodec.py holds the two against each other).

The bucket layout is HdrHistogram's for lowest value 1 and 3 significant digits: 2,048
sub-buckets; values below 2,048 are exact, each power of two above halves the resolution.
The wire format (HdrHistogram's "V2" encoding, as in HdrHistogram_c and hdrh):
  base64( cookie 0x1c849314, length | zlib( cookie 0x1c849313, payload length,
          normalizing offset 0, significant digits, lowest, highest, ratio 1.0 (double),
          counts as ZigZag LEB128, a run of N zeros written as -N ) )
"""

from __future__ import annotations

import base64
import binascii
import struct
import zlib
from typing import Final

SIGNIFICANT_DIGITS: Final = 3
LOWEST: Final = 1
SUB_BUCKET_BITS: Final = 11  # 2 * 10**3 rounded up to a power of two: 2,048 sub-buckets
HALF_BITS: Final = SUB_BUCKET_BITS - 1
HALF: Final = 1 << HALF_BITS
MASK: Final = (1 << SUB_BUCKET_BITS) - 1

# "V2", word size marker as hdrh and HdrHistogram_c write
_ENCODING_COOKIE: Final = 0x1C849303 | 0x10
_COMPRESSION_COOKIE: Final = 0x1C849304 | 0x10
_COOKIE_BASE_MASK: Final = ~0xF0
_EXT: Final = struct.Struct(">II")
_PAYLOAD: Final = struct.Struct(">IIIIQQd")  # 40 bytes
MAX_PAYLOAD: Final = 4 * 1024 * 1024  # as hdrh: a counts array past this is no histogram of ours
MAX_INDEX: Final = 64 * HALF  # counts of values up to 2**63: any index past it is damage


class HdrCodecError(ValueError):
    """Text that is no V2-encoded histogram with this layout."""


def index_of(value: int) -> int:
    """HdrHistogram's counts index for a value (>= 0)."""
    bucket = (value | MASK).bit_length() - SUB_BUCKET_BITS
    return ((bucket + 1) << HALF_BITS) + (value >> bucket) - HALF


def lowest_of(index: int) -> int:
    bucket = (index >> HALF_BITS) - 1
    sub = (index & (HALF - 1)) + HALF
    if bucket < 0:
        sub -= HALF
        bucket = 0
    return sub << bucket


def highest_of(index: int) -> int:
    """The highest value equivalent to the bucket at `index` (what HdrHistogram reports)."""
    low = lowest_of(index)
    return low + (1 << max((low | MASK).bit_length() - SUB_BUCKET_BITS, 0)) - 1


def _zigzag(buf: bytearray, n: int) -> None:
    z = n << 1 if n >= 0 else ((-n) << 1) - 1
    while z >= 0x80:
        buf.append((z & 0x7F) | 0x80)
        z >>= 7
    buf.append(z)


def encode(counts: dict[int, int], highest: int) -> str:
    """Base64 V2 encoding of {index: count} (zero counts are skipped)."""
    varints = bytearray()
    last = -1
    for index in sorted(counts):
        n = counts[index]
        if n <= 0:
            continue
        gap = index - last - 1
        if gap:  # a run of zeros, even of one, as hdrh writes it (Java writes one zero as 0)
            _zigzag(varints, -gap)
        _zigzag(varints, n)
        last = index
    payload = _PAYLOAD.pack(
        _ENCODING_COOKIE, len(varints), 0, SIGNIFICANT_DIGITS, LOWEST, highest, 1.0
    )
    packed = zlib.compress(payload + varints)
    return base64.b64encode(_EXT.pack(_COMPRESSION_COOKIE, len(packed)) + packed).decode()


def decode(text: str | bytes) -> dict[int, int]:
    """{index: count} from a V2 encoding with lowest 1 and 3 significant digits."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise HdrCodecError("histogram is not base64") from exc
    if len(raw) < _EXT.size:
        raise HdrCodecError("histogram too short")
    cookie, length = _EXT.unpack_from(raw)
    if cookie & _COOKIE_BASE_MASK != _COMPRESSION_COOKIE & _COOKIE_BASE_MASK:
        raise HdrCodecError(f"histogram cookie {cookie:#x} is not V2 compressed")
    inflate = zlib.decompressobj()
    try:
        payload = inflate.decompress(raw[_EXT.size : _EXT.size + length], MAX_PAYLOAD)
    except zlib.error as bad:
        raise HdrCodecError(f"histogram payload: {bad}") from bad
    if not inflate.eof or len(payload) < _PAYLOAD.size:
        raise HdrCodecError("histogram payload cut short (or over 4 MB)")
    cookie, size, offset, digits, lowest, _highest, _ratio = _PAYLOAD.unpack_from(payload)
    if cookie & _COOKIE_BASE_MASK != _ENCODING_COOKIE & _COOKIE_BASE_MASK:
        raise HdrCodecError(f"histogram payload cookie {cookie:#x} is not V2")
    if (offset, digits, lowest) != (0, SIGNIFICANT_DIGITS, LOWEST):
        raise HdrCodecError(
            f"histogram layout (offset {offset}, {digits} digits, lowest {lowest}) is not ours"
        )
    if len(payload) != _PAYLOAD.size + size:
        raise HdrCodecError("histogram payload length disagrees with its header")
    return _counts(payload[_PAYLOAD.size :])


def _counts(data: bytes) -> dict[int, int]:
    counts: dict[int, int] = {}
    index = z = shift = 0
    for byte in data:
        z |= (byte & 0x7F) << shift
        if byte & 0x80:
            shift += 7
            if shift > 56:  # ZigZag LEB128 as HdrHistogram writes it: at most 9 bytes
                raise HdrCodecError("histogram count longer than 9 bytes")
            continue
        n = (z >> 1) ^ -(z & 1)
        z = shift = 0
        if n < 0:
            index -= n
            if index > MAX_INDEX:
                raise HdrCodecError("histogram counts run past the largest value")
        else:
            if n:
                counts[index] = n
            index += 1
    if shift:
        raise HdrCodecError("histogram counts end inside a number")
    return counts
