"""FIX 4.4 against the real venue over loopback: raw socket + simplefix, no loadgen codec."""

from __future__ import annotations

import asyncio
import itertools
import socket
import time

import pytest

from tests.clients import Fix, fix_time, text, wait_until
from tests.conftest import fix_address

SYMBOL = "BTC/USD"


_numbers = itertools.count(time.time_ns() // 1000)  # ever-increasing, as Kraken's ClOrdIDs
_labels: dict[str, str] = {}


@pytest.fixture(autouse=True)
def _fresh_labels() -> None:
    _labels.clear()


def cid(label: str) -> str:
    """The ClOrdID a test calls `label`: Kraken's form, an ever-increasing number of up to 18
    digits (facts 11), handed out when the label is first used, so in sending order."""
    if label not in _labels:
        _labels[label] = str(next(_numbers))
    return _labels[label]


def nos(
    client: Fix,
    cl_ord_id: str,
    side: str = "1",
    price: str = "50000",
    qty: str = "0.01",
    symbol: str = SYMBOL,
    **extra: str,
) -> None:
    fields = [
        (11, cl_ord_id),
        (54, side),
        (55, symbol),
        (38, qty),
        (40, "2"),
        (44, price),
        (59, "1"),
        (60, fix_time()),
    ]
    fields += [(int(k[1:]), v) for k, v in extra.items()]
    client.send("D", fields)


def er(client: Fix, exec_type: str, cl_ord_id: str | None = None):
    return client.expect(
        "8", lambda m: text(m, 150) == exec_type and (cl_ord_id is None or text(m, 11) == cl_ord_id)
    )


# ---- logon --------------------------------------------------------------------------------------


def test_logon_answered_with_heartbeat_interval(fix):
    client = fix(heartbeat=30)
    assert client.seq == 2


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"password": "d3Jvbmc="}, "EAPI:Invalid signature"),
        ({"nonce": "1"}, "EAPI:Invalid nonce"),
    ],
)
def test_bad_logon_gets_logout_with_reason_then_close(fix, kwargs, reason):
    client = fix(logon=False)
    client.logon(**kwargs)
    logout = client.expect("5")
    assert text(logout, 58).startswith(reason)
    assert client.recv() is None  # closed


def test_logon_signature_is_checked_over_the_nonce_as_sent(fix, new_key):
    # The client signs 5025's text; "0" + nonce is the same number in other digits. The venue
    # used to sign str(int(nonce)) and so refuse this with "Invalid signature".
    client = fix(new_key(), logon=False)
    client.logon(nonce="0" + str(int(time.time() * 1000)))
    assert client.expect("A").get(108) is not None


def test_replayed_logon_nonce_is_refused(fix, new_key):
    key = new_key()
    nonce = str(int(time.time() * 1000))
    first = fix(key, logon=False)
    first.logon(nonce=nonce)
    first.expect("A")
    first.send("5", [])
    first.expect("5")
    again = fix(key, logon=False)
    again.logon(nonce=nonce)
    assert text(again.expect("5"), 58) == "EAPI:Invalid nonce"


def test_unknown_key_and_first_message_not_logon(fix, venue):
    stranger = Fix(fix_address(venue), "NOBODY", "NOSUCHKEY", "c2VjcmV0")
    stranger.logon()
    assert text(stranger.expect("5"), 58) == "EAPI:Invalid key"
    stranger.close()
    client = fix(logon=False)
    nos(client, cid("x"))
    assert text(client.expect("5"), 58) == "First message must be Logon"


def test_sender_comp_id_must_be_one_assigned_to_the_key(fix, new_key):
    # Kraken assigns SenderCompIDs with the FIX key (facts 5); another key's is refused,
    # and each of the key's own opens a session of its own at the same time
    key, other = new_key(), new_key()
    borrowed = fix(key, logon=False)
    borrowed.sender = other.comp_ids[0]
    borrowed.logon()
    reason = text(borrowed.expect("5"), 58)
    assert reason == f"SenderCompID (49) '{other.comp_ids[0]}' is not assigned to this API key"
    sessions = [fix(key) for _ in range(3)]  # the fixture takes the key's next ones
    assert len({s.sender for s in sessions}) == 3
    assert all(s.sender in key.comp_ids for s in sessions)


# ---- orders -------------------------------------------------------------------------------------


def test_new_order_gets_execution_report_new(fix):
    client = fix()
    nos(client, cid("ord-1"))
    report = er(client, "0", cid("ord-1"))
    assert text(report, 39) == "0" and len(text(report, 37)) == 19
    assert text(report, 55) == SYMBOL and text(report, 151) == "0.01000000"


def test_fill_reports_on_both_sessions(fix, fresh_pair, venue):
    pair = venue.venue.pairs.get(fresh_pair())
    maker, taker = fix(), fix()
    nos(maker, cid("m1"), side="2", price="10.0", qty="3", symbol=pair.symbol)
    er(maker, "0", cid("m1"))
    nos(taker, cid("t1"), side="1", price="10.0", qty="3", symbol=pair.symbol)
    taker_fill = er(taker, "F", cid("t1"))
    maker_fill = er(maker, "F", cid("m1"))
    for report in (taker_fill, maker_fill):
        assert text(report, 39) == "2" and text(report, 32) == "3.00000000"
        assert text(report, 31) == "10.0000" and text(report, 14) == "3.00000000"
    assert text(taker_fill, 17) == text(maker_fill, 17)  # one trade


def test_cancel_by_orig_cl_ord_id(fix):
    client = fix()
    nos(client, cid("c1"))
    er(client, "0", cid("c1"))
    client.send("F", [(11, cid("c1-cancel")), (41, cid("c1")), (54, "1"), (55, SYMBOL),
                       (60, fix_time())])  # fmt: skip
    report = er(client, "4", cid("c1-cancel"))
    assert text(report, 41) == cid("c1") and text(report, 39) == "4"


def test_cancel_replace_amends_in_place(fix):
    client = fix()
    nos(client, cid("r1"))
    order_id = text(er(client, "0", cid("r1")), 37)
    client.send(
        "G",
        [
            (11, cid("r2")),
            (37, order_id),
            (41, cid("r1")),
            (54, "1"),
            (55, SYMBOL),
            (38, "0.02"),
            (40, "2"),
            (44, "49000"),
            (60, fix_time()),
        ],
    )
    report = er(client, "5", cid("r2"))
    assert text(report, 37) == order_id and text(report, 41) == cid("r1")
    assert text(report, 38) == "0.02000000" and text(report, 44) == "49000.0"


def test_mass_cancel_and_status(fix):
    client = fix()
    for i in range(3):
        nos(client, cid(f"mc{i}"))
        er(client, "0", cid(f"mc{i}"))
    client.send("H", [(11, cid("st")), (41, cid("mc0")), (55, SYMBOL)])
    assert text(er(client, "I"), 11) == cid("mc0")
    client.send("q", [(11, cid("all")), (530, "6"), (60, fix_time())])
    report = client.expect("r")
    assert text(report, 533) == "3" and text(report, 531) == "6"
    for _ in range(3):
        er(client, "4")


def test_business_rejects(fix):
    client = fix()
    client.send("F", [(11, cid("x")), (41, cid("never-sent")), (54, "1"), (55, SYMBOL),
                       (60, fix_time())])  # fmt: skip
    reject = client.expect("j")
    assert text(reject, 380) == "1" and text(reject, 58) == "EOrder:Unknown order"
    assert text(reject, 372) == "F" and text(reject, 379) == cid("x")
    nos(client, cid("bad-pair"), symbol="NOPE/USD")
    reject = client.expect("j")
    assert text(reject, 380) == "2" and text(reject, 58) == "EQuery:Unknown asset pair"
    nos(client, cid("too-small"), qty="0.00001")
    assert text(client.expect("j"), 58) == "EOrder:Order minimum not met"


def test_missing_field_gets_session_reject(fix):
    client = fix()
    client.send("D", [(11, cid("nos")), (55, SYMBOL), (38, "1"), (40, "2"), (44, "1")])
    reject = client.expect("3")
    assert text(reject, 58) == "Missing Mandatory Field: Side (54)"
    assert text(reject, 371) == "54" and text(reject, 373) == "1"


def test_unknown_msg_type_gets_business_reject(fix):
    client = fix()
    client.send("ZZ", [(11, cid("q"))])
    reject = client.expect("j")
    assert text(reject, 380) == "3" and text(reject, 372) == "ZZ"


def test_other_sessions_orders_are_untouchable(fix):
    owner, stranger = fix(), fix()
    nos(owner, cid("mine"))
    order_id = text(er(owner, "0", cid("mine")), 37)
    stranger.send("F", [(11, cid("steal")), (37, order_id), (54, "1"), (55, SYMBOL),
                         (60, fix_time())])  # fmt: skip
    assert text(stranger.expect("j"), 58) == "EOrder:Unknown order"


# ---- session layer -------------------------------------------------------------------------------


def test_test_request_is_answered(fix):
    client = fix()
    client.send("1", [(112, "are-you-there")])
    assert text(client.expect("0"), 112) == "are-you-there"


def test_resend_request_replays_with_possdup(fix):
    client = fix()
    nos(client, cid("rr1"))
    first = er(client, "0", cid("rr1"))
    seq = int(text(first, 34))
    client.send("2", [(7, seq), (16, 0)])
    again = client.expect("8", lambda m: text(m, 43) == "Y")
    assert text(again, 34) == str(seq) and text(again, 11) == cid("rr1") and again.get(122)


def test_client_sequence_gap_is_asked_for(fix):
    client = fix()
    client.seq += 2  # skip two numbers
    nos(client, cid("after-gap"))
    resend = client.expect("2")
    assert text(resend, 7) == "2" and text(resend, 16) == "0"
    client.send("4", [(123, "Y"), (36, 4)], seq=2, header=[(43, "Y")])
    assert text(er(client, "0", cid("after-gap")), 39) == "0"


def test_seq_too_low_logs_out(fix):
    client = fix()
    client.send("0", [], seq=1)
    assert "MsgSeqNum too low" in text(client.expect("5"), 58)


def test_checksum_broken_message_gets_reject_and_session_goes_on(fix):
    client = fix()
    raw = client.message("0", [])
    client.sock.sendall(raw[:-4] + b"000\x01")
    assert "CheckSum" in text(client.expect("3"), 58)
    client.send("1", [(112, "still-there")])
    assert text(client.expect("0"), 112) == "still-there"


def test_garbage_stream_is_closed(fix, venue):
    client = fix()
    client.sock.sendall(b"HELLO THIS IS NOT FIX\r\n" * 10)
    logout = client.expect("5")
    assert "8=FIX.4.4" in text(logout, 58)
    assert client.recv() is None
    fix().send("1", [(112, "others-fine")])  # a new session still works


def test_truncated_message_then_disconnect_leaves_venue_serving(fix, venue):
    with socket.create_connection(fix_address(venue), timeout=5) as sock:
        sock.sendall(b"8=FIX.4.4\x019=200\x0135=A\x0149=X")
    client = fix()
    client.send("1", [(112, "ok")])
    assert text(client.expect("0"), 112) == "ok"


def test_logout(fix):
    client = fix()
    client.send("5", [(58, "done")])
    assert client.expect("5") is not None
    assert client.recv() is None


def test_cancel_on_disconnect_by_default(fix, open_count, new_key):
    key = new_key()
    client = fix(key)
    nos(client, cid("cod"))
    er(client, "0", cid("cod"))
    client.close()
    assert wait_until(lambda: open_count(key.api_key) == 0)


def test_orders_survive_disconnect_with_8674_1_and_reconnect_recovers_sequence(
    fix, open_count, new_key
):
    key = new_key()
    client = fix(key, cancel_on_disconnect="1")
    nos(client, cid("keep"))
    er(client, "0", cid("keep"))
    sender, next_seq = client.sender, client.seq
    client.close()
    again = fix(key, logon=False)
    again.sender, again.seq = sender, next_seq
    again.logon(reset=False, cancel_on_disconnect="1")
    reply = again.expect("A")
    assert int(text(reply, 34)) == 3  # venue's sequence went on: Logon 1, ER 2, this Logon 3
    assert open_count(key.api_key) == 1
    again.send("F", [(11, cid("bye")), (41, cid("keep")), (54, "1"), (55, SYMBOL),
                      (60, fix_time())])  # fmt: skip
    er(again, "4", cid("bye"))


def test_second_logon_for_a_live_session_is_refused(fix, new_key):
    key = new_key()
    first = fix(key)
    second = fix(key, logon=False)
    second.sender = first.sender
    second.logon()
    assert text(second.expect("5"), 58) == "session already logged on"


def test_oversized_message_gets_logout_and_close(fix):
    client = fix()
    client.sock.sendall(b"8=FIX.4.4\x019=900000\x0135=D\x01" + b"1" * 70_000)
    assert "over" in text(client.expect("5"), 58)
    assert client.recv() is None
    other = fix()  # others unaffected
    other.send("1", [(112, "fine")])
    assert text(other.expect("0"), 112) == "fine"


def test_valid_until_time_elapsed(fix):
    client = fix()
    past = time.strftime("%Y%m%d-%H:%M:%S.000", time.gmtime(time.time() - 5))
    nos(client, cid("late"), t62=past)
    reject = client.expect("j")
    assert text(reject, 58) == "EService:Deadline elapsed" and text(reject, 379) == cid("late")


def test_replace_below_filled_reports_the_cancel_under_the_replace_ids(fix, fresh_pair, venue):
    """An amend to at most the filled quantity cancels the rest: that report answers the
    replace (11 = the replace's ClOrdID, 41 = the order's former one)."""
    pair = venue.venue.pairs.get(fresh_pair())
    maker, taker = fix(), fix()
    nos(maker, cid("big"), side="2", price="10.0", qty="5", symbol=pair.symbol)
    order_id = text(er(maker, "0", cid("big")), 37)
    nos(taker, cid("t"), side="1", price="10.0", qty="2", symbol=pair.symbol)
    er(maker, "F", cid("big"))
    maker.send(
        "G",
        [
            (11, cid("small")),
            (37, order_id),
            (41, cid("big")),
            (54, "2"),
            (55, pair.symbol),
            (38, "2"),
            (40, "2"),
            (44, "10.0"),
            (60, fix_time()),
        ],
    )
    report = er(maker, "4", cid("small"))
    assert text(report, 41) == cid("big") and text(report, 39) == "4"


def test_cancel_on_disconnect_reports_a_reason_not_an_id(fix, new_key):
    key = new_key()
    first = fix(key, cancel_on_disconnect="1")
    first.close()
    client = fix(key)  # a new session, cancel-on-disconnect on
    nos(client, cid("cod2"))
    er(client, "0", cid("cod2"))
    sender = client.sender
    client.close()
    again = fix(key, logon=False)
    again.sender, again.seq = sender, 3
    again.logon(reset=False)
    assert again.recv().get(35) == b"A"  # the Logon answer comes first, nothing ahead of it
    again.send("2", [(7, 1), (16, 0)])  # what happened while away: ask for everything
    report = again.expect("8", lambda m: text(m, 150) == "4")
    assert text(report, 43) == "Y" and text(report, 11) == cid("cod2")
    assert text(report, 58) == "Cancel on disconnect"


@pytest.mark.parametrize(("tag", "value"), [(34, "\u00b2"), (108, "\u00b2"), (5025, "9" * 50)],
                         ids=["MsgSeqNum", "HeartBtInt", "nonce"])  # fmt: skip
def test_a_logon_with_a_non_ascii_or_huge_number_gets_a_named_logout(fix, tag, value):
    """Issue 13: Unicode digits passed isdigit() and broke int(): the logon got no answer."""
    client = fix(logon=False)
    if tag == 34:
        client.sock.sendall(client.message("A", [(98, 0), (108, 30), (141, "Y"),
                                                 (553, client.api_key), (554, "x"),
                                                 (5025, "1")], seq=value))  # fmt: skip
    elif tag == 108:
        client.logon(heartbeat=value)  # type: ignore[arg-type]
    else:
        client.logon(nonce=value)
    reply = client.expect("5")
    assert text(reply, 58), reply  # a Logout that names the problem, not silence


def test_an_app_message_with_a_unicode_sequence_number_ends_the_session_by_name(fix):
    client = fix()
    client.send("D", [(11, cid("1")), (55, "XBT/USD"), (54, "1"), (38, "0.01"), (40, "2"),
                      (44, "1000")], seq="\u00b2")  # fmt: skip
    assert "MsgSeqNum (34)" in (text(client.expect("5"), 58) or "")


def test_sessions_gone_for_ten_minutes_are_forgotten_once_there_are_many():
    """Found in review: every SenderCompID ever seen kept a session (and its store)."""
    from loadgen.protocol.fixsession import FixSession
    from loadgen.venue import fix_server
    from loadgen.venue.app import Venue, VenueConfig

    venue = Venue(VenueConfig(keys=1, pairs=1, keys_file=None))
    account = venue.accounts.all[0]
    loop = venue.context.loop = asyncio.new_event_loop()

    def host(left_at: float, conn: fix_server.FixConnection | None = None) -> fix_server.FixHost:
        made = fix_server.FixHost(FixSession("KRAKEN-TRD", "S"), account, time.time)
        made.conn, made.left_at = conn, left_at
        return made

    now = 10_000.0
    hosts = {f"S{i}": host(now - 700) for i in range(1100)}
    hosts["LIVE"] = host(0.0, conn=fix_server.FixConnection(venue.context))
    hosts["RECENT"] = host(now - 5)
    fix_server._forget_idle_hosts(hosts, now)
    loop.close()
    assert set(hosts) == {"LIVE", "RECENT"}
    few = {"S": host(0.0)}
    fix_server._forget_idle_hosts(few, now)
    assert set(few) == {"S"}  # below the sweep size, a day's sessions are kept
