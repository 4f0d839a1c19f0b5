"""The WebSocket trader's client against a real venue process."""

from __future__ import annotations

from loadgen.clients.ws import WsClient
from loadgen.outcome import ERROR


def test_bad_token_is_an_error(venue_proc):
    client = WsClient(venue_proc.endpoints["ws"], "not-a-token")
    outcome = client.cancel_all()
    assert (outcome.outcome, outcome.error) == (ERROR, "ESession:Invalid session")
