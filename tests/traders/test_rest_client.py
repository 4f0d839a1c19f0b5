"""The REST trader's client: exact request bytes, then every operation and every outcome class
against a real venue process."""

from __future__ import annotations

import re
import time

import gevent
from gevent import socket as gsocket

from loadgen.clients.rest import NonceSource, RestClient
from loadgen.flow.market import Market
from loadgen.flow.model import FlowModel
from loadgen.flow.orders import LiveOrder
from loadgen.outcome import ERROR
from loadgen.venue.pairs import catalog

SECRET = "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg=="
BTC = Market.from_asset_pair(catalog(1)[0].public_info(), catalog(1)[0].ref_price)


def capture(reply: bytes) -> tuple[int, list[bytes]]:
    """A peer on loopback that takes one HTTP request (kept whole in the list returned) and
    answers `reply` as its JSON body: (its port, the requests)."""
    listener = gsocket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    got: list[bytes] = []

    def serve() -> None:
        conn, _ = listener.accept()
        data = b""
        while b"\r\n\r\n" not in data:
            data += conn.recv(65536)
        head = data.partition(b"\r\n\r\n")[0]
        length = int(re.search(rb"Content-Length: (\d+)", head).group(1))
        while len(data) < len(head) + 4 + length:
            data += conn.recv(65536)
        got.append(data)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(reply), reply))
        conn.close()
        listener.close()

    gevent.spawn(serve)
    return listener.getsockname()[1], got


def test_request_bytes_carry_the_published_signature(monkeypatch):
    """Facts 1.2's vector, through the client's own request builder, as a peer receives it."""
    port, got = capture(b'{"error":[],"result":{"count":0}}')
    client = RestClient(f"http://127.0.0.1:{port}", "KEY", SECRET)
    monkeypatch.setattr(client.nonces, "next", lambda: 1616492376594)
    client.call("AddOrder", "ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25")
    client.close()
    body = b"nonce=1616492376594&ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25"
    assert got == [
        b"POST /0/private/AddOrder HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: loadgen\r\n"
        b"API-Key: KEY\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        b"API-Sign: 4/dpxb3iT4tp/ZCVEwSnEsLxx0bqyhLpdfOpc6fn7OR8+UClSV5n9E6aSS8MPtnRfp32bAb0nmbRn6H8nd"
        b"wLUQ==\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (port, len(body), body)
    ]


def test_nonces_strictly_increase_per_key_across_clients():
    a = RestClient("http://127.0.0.1:1", "SHARED", SECRET)
    b = RestClient("http://127.0.0.1:1", "SHARED", SECRET)
    seen = [a.nonces.next() if i % 2 else b.nonces.next() for i in range(1000)]
    assert seen == sorted(set(seen)) and a.nonces is b.nonces is NonceSource.for_key("SHARED")


def client_for(venue, tier: str = "pro", **kw) -> RestClient:
    key = venue.key(tier)
    return RestClient(venue.endpoints["rest"], key["api_key"], key["secret"], **kw)


def order(model: FlowModel) -> LiveOrder:
    return model._order(BTC, 0.0)  # a fresh resting order from the flow model


def test_error_on_a_bad_signature(venue_proc):
    key = venue_proc.key()
    client = RestClient(venue_proc.endpoints["rest"], key["api_key"], SECRET)
    outcome = client.cancel_all()
    assert (outcome.outcome, outcome.error) == (ERROR, "EAPI:Invalid signature")


def test_a_reconnect_is_never_part_of_a_latency(venue_proc, monkeypatch):
    """Connecting takes 300 ms here (a slow TLS handshake, a far venue); the call's latency is
    still only the request's own round trip, on loopback a few milliseconds."""
    import time

    from loadgen.clients import http
    from tests.traders.conftest import make_client

    real = http.connect

    def slow_connect(*args, **kwargs):
        time.sleep(0.3)
        return real(*args, **kwargs)

    monkeypatch.setattr(http, "connect", slow_connect)
    client = make_client("rest", venue_proc)
    started = time.perf_counter()
    outcome = client.cancel_all()
    took = time.perf_counter() - started
    client.close()
    assert outcome.ok and took >= 0.3  # the connect happened inside the call...
    assert outcome.latency_us < 250_000, outcome  # ...and is not in its latency


def test_open_loop_a_reply_short_of_krakens_is_an_error_and_what_follows_still_ends():
    """A venue answers an add with no txid, then never answers the cancel-all behind it: the
    add's Outcome names the missing field (no exception kills the reader), and the cancel-all
    times out on the client's own timeout rather than waiting for ever."""
    from loadgen.outcome import TIMEOUT

    listener = gsocket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def serve() -> None:
        conn, _ = listener.accept()
        data = b""
        while data.count(b"POST ") < 2:
            data += conn.recv(65536)
        reply = b'{"error":[],"result":{}}'
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(reply), reply))
        gevent.sleep(10)  # the cancel-all is never answered (the test ends well before)
        conn.close()

    server = gevent.spawn(serve)
    client = RestClient(f"http://127.0.0.1:{listener.getsockname()[1]}", "KEY", SECRET, 0.5)
    outcomes: list = []
    client.begin()
    client.add(LiveOrder("7", BTC, "buy", 100, BTC.min_lots, 0.0))
    client.cancel_all()
    client.dispatch(outcomes.append)
    deadline = time.monotonic() + 10
    while len(outcomes) < 2 and time.monotonic() < deadline:
        gevent.sleep(0.05)
    client.close()
    server.kill()
    listener.close()
    added, cancelled = outcomes
    assert added.op == "add" and added.outcome == ERROR and "txid" in added.error, added
    assert added.error.startswith("reply: not as Kraken's (KeyError")
    assert cancelled.op == "cancel_all" and cancelled.outcome == TIMEOUT, cancelled
    assert client.in_flight() == 0
