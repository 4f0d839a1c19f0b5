"""The FIX trader's client against a real venue process."""

from __future__ import annotations

from loadgen.outcome import OK
from tests.traders.conftest import make_client


def test_reconnect_continues_the_session(venue_proc):
    reconnected: list[bool] = []
    client = make_client("fix", venue_proc, on_reconnect=lambda: reconnected.append(True))
    assert client.cancel_all().outcome == OK
    client.sock.close()  # the line drops
    client.sock = None
    assert client.cancel_all().outcome == OK  # logs on again, sequence numbers carried on
    assert reconnected == [True] and client.session.next_out > 4
