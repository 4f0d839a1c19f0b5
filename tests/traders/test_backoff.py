"""Reconnect backoff: doubles per failure up to a cap, resets on success, waits cooperatively."""

from __future__ import annotations

import time

from loadgen.clients.backoff import BACKOFF_MAX_S, BACKOFF_START_S, Backoff
from loadgen.clients.rest import RestClient
from loadgen.outcome import ERROR


def test_doubles_up_to_the_cap_and_resets():
    backoff = Backoff()
    waits = []
    for _ in range(10):
        backoff.failed()
        waits.append(backoff.wait_s)
    assert waits[:3] == [BACKOFF_START_S, 2 * BACKOFF_START_S, 4 * BACKOFF_START_S]
    assert max(waits) == BACKOFF_MAX_S
    backoff.succeeded()
    backoff.failed()
    assert backoff.wait_s == BACKOFF_START_S


def test_a_client_facing_a_closed_port_backs_off():
    client = RestClient("http://127.0.0.1:9", "KEY", "c2VjcmV0")  # nothing listens on port 9
    start = time.monotonic()
    outcomes = [client.cancel_all() for _ in range(4)]
    elapsed = time.monotonic() - start
    assert all(o.outcome == ERROR and o.error.startswith("transport: connect") for o in outcomes)
    assert elapsed >= BACKOFF_START_S * (1 + 2 + 4)  # waited 0.05 + 0.1 + 0.2 between tries
