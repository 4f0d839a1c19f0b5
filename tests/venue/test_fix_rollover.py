"""Kraken's daily FIX rollover (facts 5: 22:00 UTC, ~30 s, sequence numbers reset): a venue
whose day ends two seconds from now logs every session out, refuses Logons while the rollover
lasts, then numbers sessions from 1 again; the traders' FixClient logs on afresh after it."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from loadgen.clients.fix import FixClient
from loadgen.flow.model import cl_ord_id
from loadgen.protocol.clock import fix_time as fix_clock
from loadgen.venue.app import VenueConfig, VenueConfigError, VenueThread
from tests.clients import Fix, text, wait_until
from tests.conftest import fix_address

ROLLOVER_LENGTH_S = 4.0  # long enough that a loaded machine logs on again inside it
LEAD_S = 2  # the rollover is this far ahead when the venue starts


def _soon() -> str:
    return fix_clock(time.time() + LEAD_S)[9:17]  # HH:MM:SS, UTC


@pytest.fixture
def rolling() -> Iterator[VenueThread]:
    config = VenueConfig(keys=4, pairs=5, keys_file=None, fix_rollover=_soon(),
                         fix_rollover_s=ROLLOVER_LENGTH_S)  # fmt: skip
    venue = VenueThread(config).start()
    yield venue
    venue.stop()


def _session(venue: VenueThread, slot: int = 0) -> Fix:
    account = venue.venue.accounts.all[0]
    return Fix(fix_address(venue), account.fix_comp_ids[slot], account.api_key,
               account.secret_b64)  # fmt: skip


def _logon_until_accepted(venue: VenueThread, reset: bool) -> tuple[Fix, list[str]]:
    """Log on until the venue accepts (polled): the session and the refusals on the way."""
    refusals: list[str] = []
    deadline = time.monotonic() + 10 + ROLLOVER_LENGTH_S
    while time.monotonic() < deadline:
        client = _session(venue)
        client.logon(reset=reset)
        reply = client.recv()
        if reply is not None and reply.get(35) == b"A":
            return client, refusals
        refusals.append(text(reply, 58) if reply is not None else "closed")
        client.close()
    raise AssertionError(f"no Logon accepted after the rollover: {refusals[-3:]}")


def test_rollover_logs_sessions_out_refuses_logons_then_numbers_from_one(rolling):
    client = _session(rolling)
    client.logon()
    assert client.expect("A")
    for _ in range(3):  # some traffic: the session's numbers move on
        client.send("0", [])
    logout = client.expect("5")  # polled by recv: the venue's tick runs the rollover
    assert text(logout, 58) == "FIX session rollover: sequence numbers restart at 1"
    assert client.recv() is None  # and the connection closes
    client.close()
    refused = _session(rolling)
    refused.logon()
    reason = text(refused.expect("5"), 58)
    assert reason.startswith("FIX session rollover in progress until ") and reason.endswith(" UTC")
    refused.close()
    # after it: the same session, Logon 34=1 without 141=Y, is the start of its new day
    again, refusals = _logon_until_accepted(rolling, reset=False)
    assert all("rollover in progress" in r for r in refusals), refusals
    again.send("1", [(112, "day2")])
    heartbeat = again.expect("0")
    assert text(heartbeat, 112) == "day2" and int(text(heartbeat, 34)) == 2  # Logon was 1
    again.close()


def test_the_traders_fix_client_logs_on_afresh_after_the_rollover(rolling):
    account = rolling.venue.accounts.all[1]
    client = FixClient(rolling.endpoints["fix"], account.api_key, account.secret_b64,
                       account.fix_comp_ids[0], lambda: cl_ord_id(0),
                       rollover=rolling.venue.config.fix_rollover)  # fmt: skip
    rollover = rolling.venue.context.fix_rollover
    try:
        assert client.cancel_all().ok  # Logon 1, OrderMassCancelRequest 2
        assert client.session.next_out == 3
        assert wait_until(lambda: rollover.until > 0, timeout=LEAD_S + 5)  # it has rolled
        outcome = client.cancel_all()
        deadline = time.monotonic() + 10
        while not outcome.ok and time.monotonic() < deadline:  # refused while it lasts
            assert "rollover" in outcome.error or "closed" in outcome.error, outcome.error
            outcome = client.cancel_all()
        assert outcome.ok, outcome.error
        # a new day: Logon 1 with 141=Y, then the request 2, on both ends
        assert client.session.next_out == 3
        host = rolling.venue.fix_hosts[account.fix_comp_ids[0]]
        assert rolling.call(lambda: host.session.next_in) == 3
    finally:
        client.close()


@pytest.mark.parametrize("bad", ["25:00", "22", "10:6", "noon"])
def test_a_bad_rollover_time_is_refused_by_name(bad):
    with pytest.raises(VenueConfigError, match=rf"FIX rollover time '{bad}'"):
        VenueConfig(keys=1, pairs=1, keys_file=None, fix_rollover=bad).validate()
