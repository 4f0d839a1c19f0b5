"""Wire truth: loadgen's latencies held against a tcpdump capture of the same run (issue 14).

The capture reader is checked first on captures built byte by byte here (pcap-savefile(5),
Ethernet, IPv4, TCP), then the whole: Debian's tcpdump captures a short open-loop run against a
venue on loopback, and per protocol loadgen's P25/P50/P95/P99 must lie within the bound of the
capture's. The bench (`loadgen bench wire`) holds them to the tight bound (5% or 50 us on a
quiet machine); CI, sharing two cores with other work, to the loose one (10% or 100 us), with
and without a CPU hog on the venue's core.
"""

from __future__ import annotations

import os
import struct

import pytest

from loadgen.bench import wire as bench_wire
from loadgen.metrics.hist import Latencies
from loadgen.wire import capture, match, pcap

CLIENT, SERVER = ("127.0.0.1", 50000), ("127.0.0.1", 8080)


class Builder:
    """A pcap file (nanosecond, little-endian, Ethernet) of hand-made TCP segments."""

    def __init__(self) -> None:
        self.records: list[bytes] = []
        self.seq = {CLIENT: 1000, SERVER: 5000}

    def segment(self, t_ns: int, src, dst, payload: bytes = b"", flags: int = 0x18,
                seq: int | None = None) -> None:  # fmt: skip
        if seq is None:
            seq = self.seq[src]
            self.seq[src] += len(payload) + (1 if flags & 0x02 else 0)
        tcp = struct.pack(">HHIIBBHHH", src[1], dst[1], seq, 0, 5 << 4, flags, 65535, 0, 0)
        ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp) + len(payload), 0, 0, 64, 6, 0,
                         bytes(map(int, src[0].split("."))), bytes(map(int, dst[0].split("."))))  # fmt: skip
        frame = b"\x00" * 12 + b"\x08\x00" + ip + tcp + payload
        sec, ns = divmod(t_ns, 1_000_000_000)
        self.records.append(struct.pack("<IIII", sec, ns, len(frame), len(frame)) + frame)

    def connect(self, t_ns: int) -> None:
        self.segment(t_ns, CLIENT, SERVER, flags=0x02)
        self.segment(t_ns, SERVER, CLIENT, flags=0x12)

    def bytes(self) -> bytes:
        head = struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, 1)
        return head + b"".join(self.records)


def conns(b: Builder) -> list[pcap.Connection]:
    return pcap.connections(pcap.segments(b.bytes()), {SERVER[1]})


def http(method: str, body: bytes = b"nonce=1") -> bytes:
    return (f"POST /0/private/{method} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}"
            "\r\n\r\n").encode() + body  # fmt: skip


def reply(body: bytes = b'{"error":[],"result":{}}') -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


def test_rest_requests_pair_with_replies_in_order_first_byte_to_last():
    b = Builder()
    b.connect(0)
    b.segment(1_000_000, CLIENT, SERVER, http("AddOrder") + http("CancelOrder"))  # pipelined
    first = reply()
    b.segment(1_200_000, SERVER, CLIENT, first[:10])
    b.segment(1_300_000, SERVER, CLIENT, first[10:])  # the reply's last byte: 300 us
    b.segment(1_300_000, SERVER, CLIENT, first[10:], seq=5001 + 10)  # a retransmission
    b.segment(1_450_000, SERVER, CLIENT, reply())
    assert match.rest_latencies(conns(b)[0]) == [300, 450]


def test_segments_captured_out_of_order_are_put_back_in_sequence():
    """Taps on two CPUs share tcpdump's ring: a direction's segments may come out of order."""
    b = Builder()
    b.connect(0)
    request = http("AddOrder")
    b.segment(1_000_000, CLIENT, SERVER, request[:20], seq=1001)
    b.segment(1_000_100, CLIENT, SERVER, request[20:], seq=1021)
    answer = reply()
    b.segment(1_250_000, SERVER, CLIENT, answer[30:], seq=5001 + 30)  # captured first
    b.segment(1_240_000, SERVER, CLIENT, answer[:30], seq=5001)
    (conn,) = conns(b)
    assert bytes(conn.back.data) == answer
    assert match.rest_latencies(conn) == [250]


def test_a_connection_that_only_cancels_all_is_the_cleanup_and_left_out():
    b = Builder()
    b.connect(0)
    b.segment(1_000_000, CLIENT, SERVER, http("CancelAll"))
    b.segment(1_100_000, SERVER, CLIENT, reply())
    assert match.rest_latencies(conns(b)[0]) == []
    token = Builder()
    token.connect(0)
    token.segment(1_000_000, CLIENT, SERVER, http("GetWebSocketsToken"))
    token.segment(1_100_000, SERVER, CLIENT, reply())
    assert match.rest_latencies(conns(token)[0]) == []


def ws_frame(payload: bytes, mask: bytes = b"") -> bytes:
    n = len(payload)
    head = bytes([0x81, (0x80 if mask else 0) | (n if n < 126 else 126)])
    if n >= 126:
        head += struct.pack(">H", n)
    if mask:
        payload = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
    return head + mask + payload


def test_ws_replies_match_by_req_id_and_channel_messages_are_passed_by():
    b = Builder()
    b.connect(0)
    b.segment(100, CLIENT, SERVER, b"GET /v2 HTTP/1.1\r\nHost: x\r\n\r\n")
    b.segment(200, SERVER, CLIENT, b"HTTP/1.1 101 Switching Protocols\r\n\r\n")
    add = b'{"method":"add_order","params":{"order_qty":1},"req_id":7}'
    cancel = b'{"method":"cancel_order","params":{"order_id":["O"]},"req_id":8}'
    b.segment(1_000_000, CLIENT, SERVER, ws_frame(add, b"\x01\x02\x03\x04"))
    b.segment(1_050_000, CLIENT, SERVER, ws_frame(cancel + b" " * 200, b"\xff\x00\xaa\x55"))
    b.segment(1_100_000, SERVER, CLIENT, ws_frame(b'{"channel":"executions","data":[]}'))
    b.segment(1_250_000, SERVER, CLIENT, ws_frame(b'{"method":"cancel_order","req_id":8}'))
    b.segment(1_400_000, SERVER, CLIENT, ws_frame(b'{"method":"add_order","req_id":7}'))
    assert match.ws_latencies(conns(b)[0]) == [200, 400]


def fix_msg(fields: str) -> bytes:
    body = fields.replace("|", "\x01").encode()
    head = b"8=FIX.4.4\x019=%d\x01" % len(body)
    return head + body + b"10=%03d\x01" % (sum(head + body) % 256)


def test_fix_orders_of_one_write_are_one_exchange_answered_by_the_last_answer():
    b = Builder()
    b.connect(0)
    b.segment(100, CLIENT, SERVER, fix_msg("35=A|34=1|"))
    b.segment(200, SERVER, CLIENT, fix_msg("35=A|34=1|"))
    batch = fix_msg("35=D|34=2|11=A1|") + fix_msg("35=D|34=3|11=A2|")
    b.segment(1_000_000, CLIENT, SERVER, batch)
    b.segment(1_100_000, SERVER, CLIENT, fix_msg("35=8|11=A1|150=0|"))
    b.segment(1_300_000, SERVER, CLIENT, fix_msg("35=j|45=3|58=EOrder:Unknown order|"))
    b.segment(2_000_000, CLIENT, SERVER, fix_msg("35=F|34=4|11=C1|"))
    b.segment(2_090_000, SERVER, CLIENT, fix_msg("35=9|11=C1|"))
    b.segment(3_000_000, CLIENT, SERVER, fix_msg("35=G|34=5|11=R1|"))  # never answered
    assert match.fix_latencies(conns(b)[0]) == [300, 90]


def test_a_file_that_is_not_a_capture_is_named():
    with pytest.raises(pcap.CaptureError, match="not a pcap file"):
        pcap.segments(b"GIF89a" + b"\x00" * 30)


def test_percentiles_take_hdrhistograms_rank_as_the_report_does():
    values = list(range(1, 101))
    assert [match.percentile(values, p) for p in (25, 50, 99, 100)] == [25, 50, 99, 100]
    assert match.percentile([], 50) == 0
    # 381 values: P99 is rank round(377.19) = 377 (nearest rank would say 378), as the report
    # computes it from the same values
    values = [v * 5 for v in range(1, 382)]  # below 2,048 us: HdrHistogram's buckets are exact
    report = Latencies.from_tally(dict.fromkeys(values, 1))
    assert match.percentile(values, 99) == 377 * 5 == report.percentile(99)


needs_capture = pytest.mark.skipif(
    bool(capture.available()) or os.geteuid() != 0,
    reason=capture.available() or "capturing on lo needs root (CAP_NET_RAW)",
)
CI_BOUND = bench_wire.LOOSE  # a shared 2-core machine: the bench holds the tight bound


@needs_capture
@pytest.mark.parametrize("hog", [False, True], ids=["quiet", "cpu-hog"])
def test_reported_percentiles_agree_with_a_tcpdump_capture(tmp_path, hog):
    case = bench_wire.Case("ci", 200, hog, CI_BOUND)
    result = bench_wire.run_case(case, 6, tmp_path, lambda line: None)
    for protocol, row in result["protocols"].items():
        assert row["wire_count"] > 300, (protocol, row)  # 6 s of a third of 200 requests/s
        # every order request loadgen timed is on the wire, and nothing else is counted
        assert abs(row["loadgen_count"] - row["wire_count"]) <= 3, (protocol, row)
        for p in bench_wire.PERCENTILES:
            cell = row[f"p{p:g}"]
            assert bench_wire.within(cell["loadgen_us"], cell["wire_us"], CI_BOUND), (
                protocol, p, cell,
            )  # fmt: skip
    assert not list(tmp_path.rglob("keys.json"))  # no secret left behind
