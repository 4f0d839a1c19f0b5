"""Fault knobs: the pure runtime, then each knob against a real venue."""

from __future__ import annotations

import random
import time

import pytest

from loadgen.keys import derive_comp_ids
from loadgen.venue.app import VenueConfig, VenueThread
from loadgen.venue.knobs import Faults, KnobError, Knobs, parse_latency
from tests.clients import Fix, Rest, Ws, fix_time, text, wait_until
from tests.conftest import fix_address


@pytest.mark.parametrize(
    ("spec", "low", "high"),
    [
        ("fixed:2", 0.002, 0.002),
        ("3", 0.003, 0.003),
        ("uniform:1:5", 0.001, 0.005),
        ("normal:3:0.5", 0.0, 0.01),
        ("lognormal:2:0.5", 0.0001, 0.1),
        ("exp:1", 0.0, 0.05),
    ],
)
def test_latency_specs_sample_in_range(spec, low, high):
    sampler = parse_latency(spec)
    rng = random.Random(1)
    samples = [sampler(rng) for _ in range(500)]
    assert all(low <= s <= high for s in samples)


@pytest.mark.parametrize("spec", ["gauss:1", "uniform:1", "fixed:-1", "fixed:x", "exp:1:2"])
def test_bad_latency_specs_name_the_problem(spec):
    with pytest.raises(KnobError, match="latency"):
        parse_latency(spec)


@pytest.mark.parametrize(
    ("knobs", "field"),
    [
        (Knobs(unavailable_ratio=1.5), "unavailable_ratio"),
        (Knobs(drop_ratio=-0.1), "drop_ratio"),
        (Knobs(stall_every_s=1, stall_for_s=2), "stall_for_s"),
        (Knobs(latency={"ftp": "1"}), "ftp"),
    ],
)
def test_bad_knobs_name_the_field(knobs, field):
    with pytest.raises(KnobError, match=field):
        knobs.validate()


def test_stalls_fill_the_end_of_each_period():
    faults = Faults(Knobs(stall_every_s=10, stall_for_s=2), origin=100.0)
    assert faults.stall_left(100.0) == 0  # healthy at start
    assert faults.stall_left(107.9) == 0
    assert faults.stall_left(108.5) == pytest.approx(1.5)  # last 2 s of each period
    assert faults.stall_left(119.0) == pytest.approx(1.0)


def test_off_by_default():
    faults = Faults(Knobs(), origin=0.0)
    assert not faults.any_delay and not faults.unavailable() and not faults.drop()


@pytest.fixture
def knob_venue():
    """knob_venue(**knobs) -> a small venue with those knobs, stopped after the test."""
    started: list[VenueThread] = []

    def start(**knobs) -> VenueThread:
        config = VenueConfig(keys=4, pairs=5, keys_file=None, knobs=Knobs(**knobs))
        started.append(VenueThread(config).start())
        return started[-1]

    yield start
    for venue in started:
        venue.stop()


def first_key(venue: VenueThread):
    account = venue.venue.accounts.all[0]
    return account.api_key, account.secret_b64


def test_added_latency_delays_replies(knob_venue):
    venue = knob_venue(latency={"rest": "fixed:80"})
    client = Rest(venue.endpoints["rest"], *first_key(venue))
    start = time.perf_counter()
    assert client.private("OpenOrders")["error"] == []
    assert time.perf_counter() - start >= 0.08
    client.close()


def test_unavailable_on_every_protocol(knob_venue):
    venue = knob_venue(unavailable_ratio=1.0)
    key, secret = first_key(venue)
    rest = Rest(venue.endpoints["rest"], key, secret)
    assert rest.private("OpenOrders") == {"error": ["EService:Unavailable"]}
    token = venue.call(
        lambda: venue.venue.accounts.issue_token(venue.venue.accounts.all[0], time.time())
    )
    ws = Ws(venue.endpoints["ws"], token)
    assert ws.call("cancel_all")["error"] == "EService:Unavailable"
    fix = Fix(fix_address(venue), derive_comp_ids(key)[0], key, secret)
    fix.logon()
    fix.expect("A")
    fix.send("q", [(11, "x"), (530, "7")])
    reject = fix.expect("j")
    assert text(reject, 58) == "EService:Unavailable" and text(reject, 380) == "4"
    for c in (rest, ws, fix):
        c.close()


def test_drop_closes_the_connection_without_a_reply(knob_venue):
    venue = knob_venue(drop_ratio=1.0)
    rest = Rest(venue.endpoints["rest"], *first_key(venue))
    with pytest.raises((ConnectionError, OSError)):
        rest.private("OpenOrders")
    rest.close()
    assert venue.thread.is_alive()  # the venue dropped a connection, not itself


def test_a_dropped_request_places_nothing_on_any_protocol(knob_venue):
    """Issue 13: REST dropped after handling (the order was placed), WS and FIX before."""
    venue = knob_venue(drop_ratio=1.0)
    key, secret = first_key(venue)
    order = {"pair": "XBTUSD", "type": "buy", "ordertype": "limit", "price": "50000",
             "volume": "0.01"}  # fmt: skip
    rest = Rest(venue.endpoints["rest"], key, secret)
    with pytest.raises((ConnectionError, OSError)):
        rest.private("AddOrder", **order)
    token = venue.call(
        lambda: venue.venue.accounts.issue_token(venue.venue.accounts.all[0], time.time())
    )
    ws = Ws(venue.endpoints["ws"], token)
    ws.send({"method": "add_order", "req_id": 1, "params": {
        "order_type": "limit", "side": "buy", "limit_price": 50000, "order_qty": 0.01,
        "symbol": "BTC/USD", "token": token}})  # fmt: skip
    fix = Fix(fix_address(venue), derive_comp_ids(key)[0], key, secret)
    fix.logon()
    fix.expect("A")
    fix.send("D", [(11, "d1"), (54, "1"), (55, "XBT/USD"), (38, "0.01"), (40, "2"),
                   (44, "50000"), (59, "1"), (60, fix_time())])  # fmt: skip
    assert wait_until(lambda: venue.call(lambda: sum(venue.venue.served.values())) == 3)
    assert venue.call(venue.venue.open_order_count) == 0
    for c in (rest, ws, fix):
        c.close()


def test_stall_holds_a_reply_on_a_real_venue(knob_venue):
    venue = knob_venue(stall_every_s=0.6, stall_for_s=0.3)
    client = Rest(venue.endpoints["rest"])
    slowest = 0.0
    for _ in range(8):  # over a full period, some request lands inside a stall
        start = time.perf_counter()
        assert client.public("Time")["error"] == []
        slowest = max(slowest, time.perf_counter() - start)
        time.sleep(0.1)  # pacing the probes through the period, not waiting on a condition
    assert slowest >= 0.1
    client.close()


def test_a_stalled_engine_lets_deadlines_elapse(knob_venue):
    """Input that arrives during a stall is handled when it ends: a 0.2 s deadline sent at the
    start of a 0.6 s stall has passed by then."""
    from tests.venue.test_rest import rfc3339_in

    venue = knob_venue(stall_every_s=1.0, stall_for_s=0.6)  # stalled in [0.4, 1.0) of each second
    rest = Rest(venue.endpoints["rest"], *first_key(venue))
    origin = venue.venue.faults.origin
    assert wait_until(
        lambda: 0.40 <= (time.monotonic() - origin) % 1.0 < 0.45, timeout=3, interval=0.001
    )
    reply = rest.private(
        "AddOrder",
        pair="XBTUSD",
        type="buy",
        ordertype="limit",
        price="50000",
        volume="0.01",
        deadline=rfc3339_in(0.2),
    )
    assert reply == {"error": ["EService:Deadline elapsed"]}
    rest.close()


def test_a_delayed_reply_after_connection_close_is_written_once_and_nothing_after(
    knob_venue, caplog
):
    """Issue 13: with a reply delay, `Connection: close` and more pipelined requests queued
    replies behind the half-close; their timers then wrote after write_eof ("RuntimeError:
    Cannot call write() after write_eof()"). Now the first is answered and the rest not read."""
    import logging
    import socket

    caplog.set_level(logging.DEBUG)
    venue = knob_venue(latency={"rest": "fixed:50"})
    host, port = venue.endpoints["rest"].split("//")[1].split(":")
    first = b"GET /0/public/Time HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    more = b"GET /0/public/SystemStatus HTTP/1.1\r\nHost: x\r\n\r\n" * 3
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(first + more)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.count(b"HTTP/1.1 200") == 1 and b"unixtime" in data
    time.sleep(0.3)  # the delayed timers of the old code fired 50 ms in; nothing to poll for
    assert not [r for r in caplog.records if "write_eof" in r.getMessage() or r.exc_info], [
        r.getMessage() for r in caplog.records
    ]
