"""The FIX session state machine, row by row of its rule table."""

from __future__ import annotations

import pytest

from loadgen.protocol import fix
from loadgen.protocol.fixsession import ACTIVE, STORE_AGE_S, STORE_LIMIT, FixSession

T = 1_700_000_000.0


def msg(msg_type: str, seq: int, **tags: str) -> dict[int, str]:
    fields = {35: msg_type, 34: str(seq), 49: "PEER", 56: "ME"}
    fields.update({int(k[1:]): v for k, v in tags.items()})
    return fields


def sent(session: FixSession) -> list[dict[int, str]]:
    data = session.drain()
    return [fix.decode(m) for m in fix.FixReader().feed(data)] if data else []


def active(next_in: int = 2) -> FixSession:
    s = FixSession("ME", "PEER", 30)
    s.accept_logon(msg("A", 1, t108="30"), T)
    s.drain()
    s.next_in = next_in
    return s


def test_logon_is_answered_and_activates():
    s = FixSession("ME", "PEER", 60)
    s.accept_logon(msg("A", 1, t108="30", t141="Y"), T)
    (reply,) = sent(s)
    assert reply[35] == "A" and reply[108] == "30" and reply[141] == "Y" and reply[34] == "1"
    assert s.state == ACTIVE and s.next_in == 2


def test_in_order_app_message_is_delivered():
    s = active()
    assert s.receive(msg("D", 2, t11="x"), T) == [msg("D", 2, t11="x")]
    assert s.next_in == 3


def test_gap_queues_and_asks_once_then_drains_in_order():
    s = active()
    assert s.receive(msg("D", 4, t11="c"), T) == []
    assert s.receive(msg("D", 5, t11="d"), T) == []
    (resend,) = sent(s)
    assert resend[35] == "2" and resend[7] == "2" and resend[16] == "0"
    out = s.receive(msg("D", 2, t11="a", t43="Y"), T) + s.receive(msg("D", 3, t11="b", t43="Y"), T)
    assert [m[11] for m in out] == ["a", "b", "c", "d"] and s.next_in == 6


def test_gap_fill_skips_to_new_seq():
    s = active()
    s.receive(msg("D", 5, t11="e"), T)
    s.drain()
    out = s.receive(msg("4", 2, t123="Y", t36="5"), T)
    assert [m[11] for m in out] == ["e"] and s.next_in == 6


def test_duplicate_with_possdup_is_ignored():
    s = active(next_in=5)
    assert s.receive(msg("D", 3, t43="Y"), T) == [] and not s.closed


def test_too_low_without_possdup_logs_out_and_closes():
    s = active(next_in=5)
    s.receive(msg("D", 3), T)
    (logout,) = sent(s)
    assert logout[35] == "5" and "expecting 5 but received 3" in logout[58]
    assert s.closed


def test_test_request_is_answered_with_its_id():
    s = active()
    s.receive(msg("1", 2, t112="ping-1"), T)
    (hb,) = sent(s)
    assert hb[35] == "0" and hb[112] == "ping-1"


def test_resend_request_resends_app_messages_and_gap_fills_admin():
    s = active()
    s.send("8", [(37, "O1")], T)  # seq 2
    s.send("0", (), T)  # seq 3, admin: gap-filled, not resent
    s.send("8", [(37, "O2")], T)  # seq 4
    s.drain()
    s.receive(msg("2", 2, t7="2", t16="0"), T + 1)
    out = sent(s)
    assert [(m[35], m[34]) for m in out] == [("8", "2"), ("4", "3"), ("8", "4")]
    assert out[0][43] == "Y" and 122 in out[0] and out[0][37] == "O1"
    assert out[1][123] == "Y" and out[1][36] == "4"


def test_the_resend_store_keeps_recent_messages_only():
    """Issue 13: a soak's sessions grew by every message sent; the store now holds at most
    STORE_LIMIT messages and none older than STORE_AGE_S; older ones are gap-filled."""
    s = active()
    for i in range(STORE_LIMIT + 50):
        s.send("8", [(37, f"O{i}")], T)
    assert len(s._store) == STORE_LIMIT
    s.send("8", [(37, "late")], T + STORE_AGE_S + 1)
    assert len(s._store) == 1
    s.drain()
    s.receive(msg("2", 2, t7="2", t16="0"), T + STORE_AGE_S + 2)
    out = sent(s)
    assert [m[35] for m in out] == ["4", "8"] and out[0][36] == out[1][34]


def test_each_stored_message_ages_out_on_its_own_time():
    s = active()
    s.send("8", [(37, "first")], T)
    s.send("8", [(37, "second")], T + 30)
    s.send("8", [(37, "third")], T + STORE_AGE_S + 1)  # the first is too old now, not the second
    assert [body for _, body, _, _ in s._store.values()] == ["37=second\x01", "37=third\x01"]
    s.send("8", [(37, "fourth")], T + STORE_AGE_S + 31)
    assert [body for _, body, _, _ in s._store.values()] == ["37=third\x01", "37=fourth\x01"]


def test_a_resend_of_everything_on_a_long_session_costs_what_is_stored():
    """7=1 16=0 after ten million messages: one gap fill and the stored ones, at once."""
    s = active()
    s.next_out = 10_000_000
    s.send("8", [(37, "O1")], T)
    s.drain()
    s.receive(msg("2", 2, t7="1", t16="0"), T + 1)
    out = sent(s)
    assert [(m[35], m[34]) for m in out] == [("4", "1"), ("8", "10000000")]
    assert out[0][36] == "10000000"


def test_logout_is_answered_and_closes():
    s = active()
    s.receive(msg("5", 2, t58="bye"), T)
    (reply,) = sent(s)
    assert reply[35] == "5" and s.closed


def test_heartbeat_when_quiet_then_test_request_then_close():
    s = active()
    s.tick(T + 30)
    assert [m[35] for m in sent(s)] == ["0"]
    s.tick(T + 37)  # 37 s without hearing: over 30 * 1.2
    (test_req,) = sent(s)
    assert test_req[35] == "1"
    s.tick(T + 68)  # no answer for another HeartBtInt
    assert s.closed


def test_heartbeat_answer_clears_the_test_request():
    s = active()
    s.tick(T + 37)
    (test_req,) = sent(s)
    s.receive(msg("0", 2, t112=test_req[112]), T + 38)
    s.tick(T + 69)
    assert not s.closed


def test_missing_seq_num_logs_out():
    s = active()
    s.receive({35: "D"}, T)
    assert s.closed and sent(s)[0][35] == "5"


def test_initiator_and_acceptor_sessions_talk_to_each_other():
    """Both ends on the same class: logon, an app message each way, a gap healed by resend."""
    client = FixSession("ME", "VENUE", 30)
    venue = FixSession("VENUE", "ME", 30)

    def deliver(src: FixSession, dst: FixSession) -> list[dict[int, str]]:
        out: list[dict[int, str]] = []
        for raw in fix.FixReader().feed(src.drain()):
            fields = fix.decode(raw)
            if fields[35] == "A" and dst.state != ACTIVE:
                if dst is venue:
                    venue.accept_logon(fields, T)
                else:
                    client.logon_accepted(fields, T)
                continue
            out += dst.receive(fields, T)
        return out

    client.start_logon([(98, 0), (108, 30)], T, reset=True)
    deliver(client, venue)
    deliver(venue, client)
    assert client.state == venue.state == ACTIVE
    client.send("D", [(11, "a")], T)
    assert [m[11] for m in deliver(client, venue)] == ["a"]
    venue.send("8", [(11, "a"), (150, "0")], T)
    lost = venue.drain()  # this ExecutionReport never arrives
    assert lost
    venue.send("8", [(11, "a"), (150, "4")], T)
    assert deliver(venue, client) == []  # gap: the client holds it and asks for a resend
    deliver(client, venue)  # the ResendRequest
    healed = deliver(venue, client)
    assert [m[150] for m in healed] == ["0", "4"] and client.next_in == venue.next_out


@pytest.mark.parametrize(("msg_type", "tags"), [("2", {"t7": "\u00b2", "t16": "0"}),
                                                 ("2", {"t7": "1", "t16": "\u0663"}),
                                                 ("4", {"t123": "Y", "t36": "\u00b2"})],
                         ids=["BeginSeqNo", "EndSeqNo", "NewSeqNo"])  # fmt: skip
def test_unicode_digits_in_resend_and_sequence_reset_are_a_reject_not_an_error(msg_type, tags):
    """Issue 13: "²".isdigit() is True and int("²") raised: no answer, a handler failure."""
    s = active()
    s.receive(msg(msg_type, 2, **tags), T)
    (reject,) = sent(s)
    assert reject[35] == "3" and reject[58], reject
    assert s.state == ACTIVE
