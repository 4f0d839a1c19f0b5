"""The traders' FixClient across Kraken's daily rollover: a venue process whose FIX day ends
two seconds from now logs the session out; the client's next request logs on afresh (34=1,
141=Y) once the rollover is over, and the numbering restarts on both ends."""

from __future__ import annotations

import time

from loadgen.protocol.clock import fix_time
from tests.clients import Fix, text
from tests.traders.conftest import make_client

LEAD_S, LENGTH_S = 2, 4
# Logons are retried at this pace while the rollover lasts: a tight loop made a thousand
# Logons a second, and the strictly rising nonces (one a Logon, ms since epoch) ran more than
# the venue's 5 s window ahead of the clock, so later Logons, this test's and the next
# tests', were refused as "Invalid nonce".
RETRY_S = 0.05


def test_the_traders_fix_client_logs_on_afresh_after_the_rollover(knob_venue_proc) -> None:
    at = fix_time(time.time() + LEAD_S)[9:17]  # HH:MM:SS, UTC
    venue = knob_venue_proc("--fix-rollover", at, "--fix-rollover-s", str(LENGTH_S))
    client = make_client("fix", venue, rollover=at)
    try:
        assert client.cancel_all().ok  # Logon 1, OrderMassCancelRequest 2
        assert client.session.next_out == 3
        deadline = time.monotonic() + LEAD_S + LENGTH_S + 20
        outcome = client.cancel_all()
        refused = []
        while time.monotonic() < deadline:  # the session ends, Logons are refused, then taken
            outcome = client.cancel_all()
            if not outcome.ok:
                refused.append(outcome.error)
                time.sleep(RETRY_S)
            elif refused:
                break
        assert outcome.ok and refused, (outcome.error, refused[-2:])
        assert any("rollover" in r for r in refused), refused[-3:]
        assert client.session.next_out == 3  # a new day: Logon 1 with 141=Y, the request 2
    finally:
        client.close()


def test_the_rollover_logs_sessions_out_refuses_logons_then_numbers_from_one(knob_venue_proc):
    at = fix_time(time.time() + LEAD_S)[9:17]
    venue = knob_venue_proc("--fix-rollover", at, "--fix-rollover-s", str(LENGTH_S))
    key = venue.key()
    host, port = venue.endpoints["fix"].removeprefix("tcp://").split(":")

    def session() -> Fix:
        return Fix((host, int(port)), key["fix_sender_comp_ids"][0], key["api_key"], key["secret"])

    client = session()
    client.logon()
    assert client.expect("A")
    logout = client.expect("5")  # the venue's tick runs the rollover
    assert text(logout, 58) == "FIX session rollover: sequence numbers restart at 1"
    client.close()
    refusals, deadline = [], time.monotonic() + LENGTH_S + 20
    while time.monotonic() < deadline:  # refused by name while it lasts, then taken at 34=1
        again = session()
        again.logon(reset=False)
        reply = again.recv()
        if reply is not None and reply.get(35) == b"A":
            break
        refusals.append(text(reply, 58) if reply is not None else "closed")
        again.close()
        time.sleep(RETRY_S)
    assert refusals and all("rollover in progress until" in r for r in refusals), refusals[-2:]
    again.send("1", [(112, "day2")])
    assert int(text(again.expect("0"), 34)) == 2  # its Logon answer was 1
    again.close()
