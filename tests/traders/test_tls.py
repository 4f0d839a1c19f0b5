"""TLS: every trader against `loadgen venue --tls`, certificates that do not verify, FIX TLS-only,
session reuse; and the venue's TLS checked by independent peers (the standard library's ssl
socket with simplefix, `websockets`, urllib)."""

from __future__ import annotations

import json
import ssl
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from loadgen.clients import tls
from loadgen.flow.model import FlowModel
from loadgen.keys import COMP_IDS_FIELD
from loadgen.outcome import ERROR, OK
from tests.clients import Fix
from tests.traders.conftest import TestVenue, make_client
from tests.traders.test_clients import BTC

PROTOCOLS = ["rest", "ws", "fix"]


@pytest.fixture(scope="module")
def tls_venue() -> Iterator[TestVenue]:
    venue = TestVenue("--keys", "40", "--tls")
    yield venue
    venue.stop()


def _address(url: str) -> tuple[str, int]:
    parts = urllib.parse.urlsplit(url)
    return parts.hostname or "", parts.port or 0


def test_the_venue_serves_tls_urls_and_writes_its_ca(tls_venue):
    e = tls_venue.endpoints
    assert e["rest"].startswith("https://") and e["ws"].startswith("wss://")
    assert e["fix"].startswith("tls://")
    assert "BEGIN CERTIFICATE" in Path(tls_venue.ca_file).read_text()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_every_trader_trades_over_tls_with_kernel_stamps_and_resumes_on_reconnect(
    tls_venue, protocol
):
    client = make_client(protocol, tls_venue)
    order = FlowModel([BTC], seed=7, cross_share=0.0)._order(BTC, 0.0)
    placed = client.add(order)
    assert placed.outcome == OK and len(placed.detail) == 19
    assert placed.stamp == "kernel" and placed.latency_us > 0
    order.txid = placed.detail
    assert client.cancel(order).outcome == OK
    sock = client.conn.sock if protocol == "rest" else client.sock
    assert isinstance(sock, tls.TlsStream)
    sock.close()  # the line drops: the next request reconnects with the session it had
    if protocol == "rest":
        client.conn.sock = None
    else:
        client.sock = None
    assert client.cancel_all().outcome == OK
    again = client.conn.sock if protocol == "rest" else client.sock
    assert again is not sock and again.resumed
    client.close()


@pytest.mark.parametrize("protocol", ["rest", "fix"])
def test_a_certificate_that_does_not_verify_is_refused_and_accepted_with_ca_or_insecure(
    tls_venue, protocol
):
    strict = make_client(protocol, tls_venue, tls=tls.context())  # the system CAs only
    refused = strict.cancel_all()
    assert refused.outcome == ERROR
    assert "certificate of 127.0.0.1" in refused.error and "does not verify" in refused.error
    assert "--ca-file" in refused.error
    strict.close()
    for ctx in (tls.context(tls_venue.ca_file), tls.context("", insecure=True)):
        client = make_client(protocol, tls_venue, tls=ctx)
        assert client.cancel_all().outcome == OK
        client.close()


def test_a_ws_certificate_that_does_not_verify_is_refused(tls_venue):
    from loadgen.clients.ws import WsClient

    client = WsClient(tls_venue.endpoints["ws"], "token", timeout=5.0, tls=tls.context())
    with pytest.raises(tls.TlsError, match="does not verify"):
        client._connect()


def test_fix_over_tls_only_refuses_plain_tcp(tls_venue):
    key = tls_venue.key()
    plain = Fix(
        _address(tls_venue.endpoints["fix"]), key[COMP_IDS_FIELD][0], key["api_key"], key["secret"]
    )
    plain.logon()
    assert plain.recv() is None  # closed, no Logon answered
    plain.close()
    ctx = ssl.create_default_context(cafile=tls_venue.ca_file)
    secure = Fix(
        _address(tls_venue.endpoints["fix"]),
        key[COMP_IDS_FIELD][1],
        key["api_key"],
        key["secret"],
        ctx,
    )
    secure.logon()
    assert secure.expect("A").get(108) is not None
    secure.close()


def test_independent_peers_reach_the_tls_venue(tls_venue):
    from websockets.sync.client import connect

    ctx = ssl.create_default_context(cafile=tls_venue.ca_file)
    with urllib.request.urlopen(
        tls_venue.endpoints["rest"] + "/0/public/Time", context=ctx, timeout=10
    ) as resp:
        assert json.load(resp)["error"] == []
    with connect(tls_venue.endpoints["ws"], ssl=ctx, open_timeout=10) as ws:
        status = json.loads(ws.recv(timeout=10))
    assert status["channel"] == "status"
