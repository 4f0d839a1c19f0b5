"""A packet capture read back as TCP byte streams, each byte knowing when it crossed the wire.

Pure: bytes of a pcap file in, streams out (capture.py runs tcpdump). Written from the formats'
specifications, not from loadgen's codecs, so that the wire check (match.py) is independent of
the code it checks:
- pcap: the classic file format (https://www.tcpdump.org/manpages/pcap-savefile.5.html), with
  microsecond (magic a1b2c3d4) or nanosecond (a1b23c4d) timestamps, either byte order;
- link types 1 (Ethernet: Linux's loopback device), 0 (BSD loopback) and 113 (Linux cooked);
- IPv4 and IPv6 without extension headers, then TCP (RFC 9293): a stream is rebuilt from each
  segment's sequence number, so a retransmitted or overlapping segment adds no bytes twice.

A Stream is one direction of one connection: its bytes, and for each segment where its bytes
end and when it was captured, so `time_of(offset)` says when any byte was on the wire.
"""

from __future__ import annotations

import bisect
import struct
from dataclasses import dataclass, field

_MAGIC = {
    b"\xd4\xc3\xb2\xa1": ("<", 1000),  # little-endian, microseconds
    b"\xa1\xb2\xc3\xd4": (">", 1000),
    b"\x4d\x3c\xb2\xa1": ("<", 1),  # little-endian, nanoseconds
    b"\xa1\xb2\x3c\x4d": (">", 1),
}
ETHERNET, BSD_LOOPBACK, LINUX_COOKED = 1, 0, 113
_ETHERTYPE_IPV4, _ETHERTYPE_IPV6 = 0x0800, 0x86DD
_TCP = 6
_SYN, _FIN, _RST = 0x02, 0x01, 0x04


class CaptureError(ValueError):
    """The file is not a capture this reader understands (named: magic, link type...)."""


@dataclass(frozen=True, slots=True)
class Segment:
    time_ns: int  # wall-clock ns the capture saw it
    src: tuple[str, int]
    dst: tuple[str, int]
    seq: int
    flags: int
    payload: bytes


def segments(data: bytes) -> list[Segment]:
    """Every TCP segment of a pcap file, in capture order."""
    if len(data) < 24 or data[:4] not in _MAGIC:
        raise CaptureError(f"not a pcap file (magic {data[:4].hex()})")
    order, unit = _MAGIC[data[:4]]
    linktype = struct.unpack_from(order + "I", data, 20)[0] & 0x0FFFFFFF
    if linktype not in (ETHERNET, BSD_LOOPBACK, LINUX_COOKED):
        raise CaptureError(f"link type {linktype}: expected 1, 0 or 113 (capture on lo)")
    record = struct.Struct(order + "IIII")
    out: list[Segment] = []
    pos = 24
    while pos + 16 <= len(data):
        sec, frac, caplen, _ = record.unpack_from(data, pos)
        frame = data[pos + 16 : pos + 16 + caplen]
        pos += 16 + caplen
        seg = _segment(frame, linktype, sec * 1_000_000_000 + frac * unit)
        if seg is not None:
            out.append(seg)
    return out


def _segment(frame: bytes, linktype: int, time_ns: int) -> Segment | None:
    if linktype == ETHERNET:
        ethertype, ip = struct.unpack_from(">H", frame, 12)[0], frame[14:]
    elif linktype == LINUX_COOKED:
        ethertype, ip = struct.unpack_from(">H", frame, 14)[0], frame[16:]
    else:  # BSD loopback: a 4-byte address family in host order; read the IP version instead
        ip = frame[4:]
        ethertype = _ETHERTYPE_IPV6 if ip and ip[0] >> 4 == 6 else _ETHERTYPE_IPV4
    if ethertype == _ETHERTYPE_IPV4 and len(ip) >= 20 and ip[9] == _TCP:
        header, total = (ip[0] & 0x0F) * 4, struct.unpack_from(">H", ip, 2)[0]
        src, dst = _ipv4(ip[12:16]), _ipv4(ip[16:20])
        tcp = ip[header:total]
    elif ethertype == _ETHERTYPE_IPV6 and len(ip) >= 40 and ip[6] == _TCP:
        length = struct.unpack_from(">H", ip, 4)[0]
        src, dst = ip[8:24].hex(), ip[24:40].hex()
        tcp = ip[40 : 40 + length]
    else:
        return None
    if len(tcp) < 20:
        return None
    sport, dport, seq = struct.unpack_from(">HHI", tcp)
    offset, flags = (tcp[12] >> 4) * 4, tcp[13]
    return Segment(time_ns, (src, sport), (dst, dport), seq, flags, bytes(tcp[offset:]))


def _ipv4(raw: bytes) -> str:
    return ".".join(str(b) for b in raw)


@dataclass
class Stream:
    """One direction of one TCP connection, rebuilt in sequence order.

    Segments are kept as captured and put in order by finish(): a capture may hold a
    direction's segments out of order (taps on two CPUs share one ring), and a retransmission
    adds no bytes twice. A byte's time is when the first segment that carried it was captured.
    """

    src: tuple[str, int]
    dst: tuple[str, int]
    data: bytearray = field(default_factory=bytearray)
    ends: list[int] = field(default_factory=list)  # per segment: offset just past its bytes
    times: list[int] = field(default_factory=list)  # per segment: when it was captured (ns)
    base: int | None = None  # the sequence number of the stream's first byte
    raw: list[tuple[int, int, bytes]] = field(default_factory=list)  # (seq, time, payload)

    def add(self, seg: Segment) -> None:
        if seg.flags & _SYN:
            self.base = (seg.seq + 1) & 0xFFFFFFFF
        elif seg.payload:
            self.raw.append((seg.seq, seg.time_ns, seg.payload))

    def finish(self) -> None:
        """Put the segments in sequence order into `data` (up to the first gap: bytes the
        capture lost, past which the stream is unknown)."""
        if not self.raw:
            return
        base = self.raw[0][0] if self.base is None else self.base  # older than the capture
        ordered = sorted(((seq - base) & 0xFFFFFFFF, t, p) for seq, t, p in self.raw)
        for rel, t, payload in ordered:
            if rel >= 0x80000000:
                continue  # before the stream's start
            have = len(self.data)
            if rel > have:
                break  # a gap
            fresh = payload[have - rel :]
            if fresh:
                self.data += fresh
                self.ends.append(len(self.data))
                self.times.append(t)
        self.raw = []

    def time_of(self, offset: int) -> int:
        """When the byte at `offset` was on the wire (the capture time of its segment)."""
        return self.times[bisect.bisect_right(self.ends, offset)]


@dataclass
class Connection:
    """Both directions of one TCP connection: `out` from the client, `back` from the server."""

    client: tuple[str, int]
    server: tuple[str, int]
    out: Stream
    back: Stream


def connections(segs: list[Segment], server_ports: set[int]) -> list[Connection]:
    """The connections to any of `server_ports`, each with both streams, in order of start."""
    found: dict[tuple[tuple[str, int], tuple[str, int]], Connection] = {}
    every: list[Connection] = []
    for seg in segs:
        if seg.dst[1] in server_ports:
            key, outbound = (seg.src, seg.dst), True
        elif seg.src[1] in server_ports:
            key, outbound = (seg.dst, seg.src), False
        else:
            continue
        conn = found.get(key)
        if conn is None or (seg.flags & _SYN and outbound and (conn.out.base is not None
                                                               or conn.out.raw)):  # fmt: skip
            # a new connection, or a later one on the same ports
            conn = found[key] = Connection(key[0], key[1], Stream(*key), Stream(key[1], key[0]))
            every.append(conn)
        (conn.out if outbound else conn.back).add(seg)
    for conn in every:
        conn.out.finish()
        conn.back.finish()
    return every
