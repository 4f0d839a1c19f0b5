"""The fuzzer of issue 13, on a budget: every port of a real venue process, thousands of broken
requests, and not one internal error, 5xx, hang, lost liveness, handler failure or memory
growth past the bound. `loadgen fuzz --seconds 180` runs the same for longer."""

from __future__ import annotations

import random
import socket
import time

from loadgen import fuzz
from loadgen.venue import fix_server
from tests.conftest import fix_address

SECONDS_PER_PORT = 8.0  # ~30 s in all with the venue's start: the suite's budget


def test_the_venue_survives_a_budget_of_broken_requests_on_all_three_ports(tmp_path):
    result = fuzz.run(SECONDS_PER_PORT, seed=13, ports=("rest", "ws", "fix"), log_dir=tmp_path)
    story = "\n".join(fuzz.table(result.tallies)) + "\n" + "\n".join(result.problems)
    assert result.ok, story
    for port, tally in result.tallies.items():
        assert tally.cases >= 50, (port, story)  # it did fuzz, and got past the front door:
    assert result.tallies["rest"].classes["ok"] > 0  # some mutants were valid orders
    assert result.tallies["rest"].classes["EGeneral:Invalid arguments"] > 0


def test_the_fuzzers_judges_fail_on_what_they_must():
    assert fuzz.rest_class(None) == "hung"
    assert fuzz.rest_class(b"HTTP/1.1 500 Internal Server Error\r\n\r\n") == "server_error"
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 37\r\n\r\n"
    assert fuzz.rest_class(ok + b'{"error":["EGeneral:Internal error"]}') == "internal"
    assert fuzz.rest_class(ok + b'{"error":["EAPI:Invalid key"]}') == "EAPI:Invalid key"
    assert fuzz.ws_class({"success": False, "error": "EGeneral:Internal error"}) == "internal"
    assert fuzz._fix_class([{35: "5", 58: "internal error"}], closed=True) == "internal"
    for cls in ("internal", "server_error", "hung", "unresponsive", "unanswered"):
        tally = fuzz.PortTally()
        tally.count(cls, "case")
        assert tally.failed == 1 and tally.failures == [f"{cls}: case"]


def test_the_mutator_is_reproducible_from_its_seed():
    a, b = fuzz.Mutator(random.Random(5)), fuzz.Mutator(random.Random(5))
    key = fuzz.Key("k", "c2VjcmV0")
    na, nb = fuzz.Nonces(), fuzz.Nonces()
    na.next = nb.next = lambda: 1  # type: ignore[method-assign]
    assert [fuzz.rest_case(a, key, na) for _ in range(20)] == [
        fuzz.rest_case(b, key, nb) for _ in range(20)
    ]


def test_a_fix_connection_that_never_logs_on_is_closed(venue, monkeypatch):
    """A peer that sends half a Logon (or nothing) held its socket for the venue's life."""
    monkeypatch.setattr(fix_server, "LOGON_TIMEOUT_S", 0.5)
    with socket.create_connection(fix_address(venue), timeout=10) as sock:
        sock.sendall(b"8=FIX.4.4\x019=200\x0135=A\x01")
        started = time.monotonic()
        assert sock.recv(100) == b""  # closed by the venue, not by our timeout
        assert time.monotonic() - started < 5
