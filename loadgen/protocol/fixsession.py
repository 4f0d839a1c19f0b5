"""FIX 4.4 session layer, sans-IO, for either end (the venue accepts, the FIX trader initiates).

The owner feeds framed messages in (`receive`) and the clock (`tick`); the session answers
with bytes to write (`self.outbox`, drained by the owner), application messages to act on (the
return value of `receive`) and `self.closed` when the connection must end.

Rules kept here (FIX 4.4 session protocol, volume 2):

| received                          | state          | action                                          |
|-----------------------------------|----------------|-------------------------------------------------|
| first message is not Logon        | AWAIT_LOGON    | Logout "First message must be Logon", close     |
| Logon                             | AWAIT_LOGON    | hand to the owner (it authenticates)            |
| MsgSeqNum missing                 | any            | Logout, close                                   |
| MsgSeqNum == expected             | ACTIVE         | process; then drain queued messages             |
| MsgSeqNum  > expected             | ACTIVE         | queue it; send ResendRequest(expected..0) once  |
| MsgSeqNum  < expected, 43=Y       | ACTIVE         | ignore (a duplicate we already have)            |
| MsgSeqNum  < expected, no 43=Y    | ACTIVE         | Logout "MsgSeqNum too low", close               |
| Heartbeat                         | ACTIVE         | clears an outstanding TestRequest               |
| TestRequest                       | ACTIVE         | Heartbeat echoing 112                           |
| ResendRequest(b..e)               | ACTIVE         | resend stored app messages with 43=Y and 122;   |
|                                   |                | gaps (admin or evicted) as SequenceReset-GapFill|
| SequenceReset 123=Y (gap fill)    | ACTIVE         | expected = 36                                   |
| SequenceReset 123=N (reset)       | ACTIVE         | expected = 36, whatever its MsgSeqNum           |
| Logout                            | ACTIVE         | answer with Logout (unless we sent one), close  |
| silence > HeartBtInt + 20%        | ACTIVE         | TestRequest; silence for another HeartBtInt:    |
|                                   |                | close                                           |

ResendRequest, Logout and SequenceReset-Reset are acted on even while a gap is open, so
two sides that are both missing messages cannot deadlock waiting on each other.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Final

from loadgen.protocol import fix, numbers
from loadgen.protocol.clock import fix_time

AWAIT_LOGON: Final = "await_logon"
ACTIVE: Final = "active"
CLOSED: Final = "closed"

# Sent app messages kept for resend: at most STORE_LIMIT (~0.8 MB a session) and none older than
# STORE_AGE_S, so a session's memory follows its recent traffic, not its history. Older ones are
# gap-filled, as an engine that does not persist messages does (QuickFIX PersistMessages=N): a
# reconnect's resend usually comes within seconds, though past 1,000 messages/s a session keeps
# under 2 s of them.
STORE_LIMIT: Final = 2_000
STORE_AGE_S: Final = 60.0
QUEUE_LIMIT: Final = 10_000  # Messages held while a gap is open; beyond it the peer is broken.
TEST_REQUEST_GRACE: Final = 1.2  # FIX convention: allow 20% over HeartBtInt before a TestRequest.

# Kraken's FIX day (facts 5, S13/S15): "a logical session rollover every day at 22:00 UTC. The
# rollover lasts approximately 30 seconds. Both Trading and Market Data sequence numbers reset
# to 0 after rollover." Both ends keep this schedule, as FIX engines keep a session's
# StartTime (QuickFIX): the first Logon of a new day starts at MsgSeqNum 1 with 141=Y.
ROLLOVER_UTC: Final = "22:00"
ROLLOVER_S: Final = 30.0
# The venue's rollover time when none is given, as Locust reads LOCUST_*: the test suite sets it
# "off", so no test depends on the time of day it runs at.
ROLLOVER_ENV: Final = "LOADGEN_FIX_ROLLOVER"
DAY_S: Final = 86_400


def rollover_second(text: str) -> int:
    """Seconds into the UTC day of a rollover time "HH:MM" or "HH:MM:SS"; ValueError names it."""
    parts = text.split(":")
    if len(parts) not in (2, 3) or not all(
        len(p) == 2 and p.isascii() and p.isdigit() for p in parts
    ):
        raise ValueError(f"rollover time {text!r}: expected HH:MM or HH:MM:SS (UTC)")
    h, m, sec = (int(p) for p in (*parts, "00")[:3])
    if h > 23 or m > 59 or sec > 59:
        raise ValueError(f"rollover time {text!r}: not a time of day (00:00 to 23:59:59)")
    return h * 3600 + m * 60 + sec


def last_rollover(now: float, second: int) -> float:
    """The latest rollover at or before `now` (epoch seconds), the day's at `second` UTC."""
    at = now - now % DAY_S + second
    return at if at <= now else at - DAY_S


class FixSessionError(Exception):
    """Local misuse of the session (e.g. sending before logon); the peer did nothing wrong."""


class FixSession:
    """Sequence numbers, heartbeats, resends and logout for one FIX session."""

    def __init__(self, sender: str, target: str, heartbeat_s: float = 30.0) -> None:
        self.sender = sender
        self.target = target
        self.heartbeat_s = heartbeat_s
        self.state = AWAIT_LOGON
        self.next_out = 1
        self.next_in = 1
        self.outbox: list[bytes] = []
        self.closed = False
        self.close_reason = ""
        self._header = f"49={sender}\x0156={target}\x0134="
        # An OrderedDict, not a dict: pruning deletes from the front, and finding a dict's first
        # live entry after many such deletes walks every deleted slot (11% of the venue's FIX
        # time, measured with py-spy); an OrderedDict finds its first in one step.
        self._store: OrderedDict[int, tuple[str, str, str, float]] = OrderedDict()
        self._prune_at = 0.0  # no stored message is too old before this (the oldest's age-out)
        self._queue: dict[int, dict[int, str]] = {}
        self._resend_asked = False
        self._logout_sent = False
        self._last_in = 0.0
        self._last_out = 0.0
        self._test_sent_at = 0.0
        self._test_id = ""

    # ---- sending -------------------------------------------------------------------------

    def send(self, msg_type: str, body: Iterable[tuple[int, object]] | str, now: float) -> bytes:
        """Encode with the next MsgSeqNum, keep app messages for resend, queue in outbox."""
        if not isinstance(body, str):
            body = "".join(f"{tag}={value}\x01" for tag, value in body)
        seq = self.next_out
        self.next_out = seq + 1
        sending_time = fix_time(now)
        # fix.header() with its constant part cached: this runs once per ExecutionReport.
        raw = fix.encode(msg_type, f"{self._header}{seq}\x0152={sending_time}\x01", body)
        if msg_type not in fix.ADMIN_TYPES:
            store = self._store
            store[seq] = (msg_type, body, sending_time, now)
            self._prune(now)
        self._last_out = now
        self.outbox.append(raw)
        return raw

    def _prune(self, now: float) -> None:
        """Keep at most STORE_LIMIT messages, none older than STORE_AGE_S. Until the oldest
        ages out, a send checks the count only (the walk was 7% of the venue's FIX time,
        measured with perf); a store cleared meanwhile only makes the walk come early."""
        store = self._store
        if len(store) > STORE_LIMIT:  # a busy session's steady state: one in, one out
            store.popitem(last=False)
        if now < self._prune_at:
            return
        while store:
            sent_at = store[next(iter(store))][3]  # numbers are stored ascending
            if len(store) <= STORE_LIMIT and sent_at >= now - STORE_AGE_S:
                self._prune_at = sent_at + STORE_AGE_S
                return
            store.popitem(last=False)

    def logout(self, text: str, now: float, *, close: bool = True) -> None:
        self.send(fix.LOGOUT, [(fix.TEXT, text)] if text else (), now)
        self._logout_sent = True
        if close:
            self._close(text)

    def reject(
        self, ref_seq: int | None, reason: int, text: str, now: float, **refs: object
    ) -> None:
        """Session-level Reject (35=3). refs: ref_tag, ref_msg_type."""
        body: list[tuple[int, object]] = []
        if ref_seq is not None:
            body.append((fix.REF_SEQ_NUM, ref_seq))
        if refs.get("ref_tag") is not None:
            body.append((fix.REF_TAG_ID, refs["ref_tag"]))
        if refs.get("ref_msg_type"):
            body.append((fix.REF_MSG_TYPE, refs["ref_msg_type"]))
        body += [(fix.SESSION_REJECT_REASON, reason), (fix.TEXT, text)]
        self.send(fix.REJECT, body, now)

    def _close(self, reason: str) -> None:
        self.state = CLOSED
        self.closed = True
        self.close_reason = self.close_reason or reason

    # ---- logon (the owner authenticates) ------------------------------------------------------

    def accept_logon(
        self, fields: dict[int, str], now: float, reply: Iterable[tuple[int, object]] = ()
    ) -> None:
        """Acceptor: the owner approved this Logon; answer it and go active.

        The owner refuses a Logon whose MsgSeqNum is below `next_in` (without 141=Y) first; one
        above it is accepted and the gap is asked for with a ResendRequest, as after any gap.
        """
        reset = fields.get(fix.RESET_SEQ_NUM) == "Y"
        if reset:
            self.next_out = 1
            self.next_in = 1
            self._store.clear()
            self._prune_at = 0.0
            self._queue.clear()
        self.heartbeat_s = float(fields.get(fix.HEARTBT_INT, self.heartbeat_s))
        self.state = ACTIVE
        self.closed = False
        self.close_reason = ""
        self._logout_sent = False
        self._last_in = now
        body = [(fix.ENCRYPT_METHOD, 0), (fix.HEARTBT_INT, int(self.heartbeat_s)), *reply]
        if reset:
            body.append((fix.RESET_SEQ_NUM, "Y"))
        self.send(fix.LOGON, body, now)
        seq = int(fields[fix.MSG_SEQ_NUM])
        if seq > self.next_in:
            self._resend_asked = False
            self._gap(seq, fix.LOGON, fields, now)
        else:
            self._sequence(seq, fields, now)

    def new_day(self) -> None:
        """The rollover: numbering starts again at 1 both ways; nothing before it is resent."""
        self.next_out = 1
        self.next_in = 1
        self._store.clear()
        self._prune_at = 0.0
        self._queue.clear()

    def logon_too_low(self, fields: dict[int, str]) -> bool:
        """Acceptor: would this Logon's MsgSeqNum go backwards (and no reset was asked)?"""
        return fields.get(fix.RESET_SEQ_NUM) != "Y" and int(fields[fix.MSG_SEQ_NUM]) < self.next_in

    def start_logon(
        self, body: Iterable[tuple[int, object]], now: float, *, reset: bool = False
    ) -> None:
        """Initiator: send our Logon."""
        if reset:
            self.next_out = 1
            self.next_in = 1
            self._store.clear()
            self._prune_at = 0.0
        self.send(fix.LOGON, body, now)

    def logon_accepted(self, fields: dict[int, str], now: float) -> None:
        """Initiator: the peer's Logon reply arrived."""
        self.state = ACTIVE
        self._last_in = now
        self._sequence(int(fields[fix.MSG_SEQ_NUM]), fields, now)

    # ---- receiving -----------------------------------------------------------------------------

    def receive(self, fields: dict[int, str], now: float) -> list[dict[int, str]]:
        """Session handling of one decoded message; returns the app messages now deliverable."""
        self._last_in = now
        self._test_sent_at = 0.0
        seq = numbers.wire_int(fields.get(fix.MSG_SEQ_NUM, ""))
        if seq is None:
            self.logout("MsgSeqNum (34) missing or not a number", now)
            return []
        msg_type = fields.get(fix.MSG_TYPE, "")
        if seq == self.next_in and not self._queue and msg_type not in _ADMIN_HANDLERS:
            self.next_in = seq + 1  # the common case: an in-order application message
            return [fields]
        if seq > self.next_in:
            return self._gap(seq, msg_type, fields, now)
        if seq < self.next_in:
            if fields.get(fix.POSS_DUP) != "Y":
                self.logout(f"MsgSeqNum too low, expecting {self.next_in} but received {seq}", now)
            return []
        return self._sequence(seq, fields, now)

    def _gap(
        self, seq: int, msg_type: str, fields: dict[int, str], now: float
    ) -> list[dict[int, str]]:
        if msg_type in (fix.RESEND_REQUEST, fix.LOGOUT) or (
            msg_type == fix.SEQUENCE_RESET and fields.get(fix.GAP_FILL) != "Y"
        ):
            out = self._handle(msg_type, fields, now)
            if msg_type != fix.SEQUENCE_RESET:
                self._queue[seq] = {fix.MSG_TYPE: fix.HEARTBEAT}  # consumed, nothing to redo
            return out
        if len(self._queue) >= QUEUE_LIMIT:
            self.logout("too many messages held behind a sequence gap", now)
            return []
        self._queue[seq] = fields
        if not self._resend_asked:
            self._resend_asked = True
            self.send(
                fix.RESEND_REQUEST, [(fix.BEGIN_SEQ_NO, self.next_in), (fix.END_SEQ_NO, 0)], now
            )
        return []

    def _sequence(self, seq: int, fields: dict[int, str], now: float) -> list[dict[int, str]]:
        """Process an in-order message, then whatever the queue now makes in-order."""
        delivered: list[dict[int, str]] = []
        while True:
            self.next_in = seq + 1
            delivered += self._handle(fields.get(fix.MSG_TYPE, ""), fields, now)
            if self.closed:
                return delivered
            queued = self._queue.pop(self.next_in, None)
            if queued is None:
                break
            seq, fields = self.next_in, queued
        if not self._queue:
            self._resend_asked = False
        return delivered

    def _handle(self, msg_type: str, fields: dict[int, str], now: float) -> list[dict[int, str]]:
        handler = _ADMIN_HANDLERS.get(msg_type)
        if handler is None:
            return [fields]
        handler(self, fields, now)
        return []

    def _on_heartbeat(self, fields: dict[int, str], now: float) -> None:
        if self._test_id and fields.get(fix.TEST_REQ_ID) == self._test_id:
            self._test_id = ""

    def _on_test_request(self, fields: dict[int, str], now: float) -> None:
        self.send(fix.HEARTBEAT, [(fix.TEST_REQ_ID, fields.get(fix.TEST_REQ_ID, ""))], now)

    def _on_logon(self, fields: dict[int, str], now: float) -> None:
        """The owner authenticates a Logon before it is sequenced; a second one changes nothing."""

    def _on_sequence_reset(self, fields: dict[int, str], now: float) -> None:
        target = numbers.wire_int(fields.get(fix.NEW_SEQ_NO, ""))
        if target is None:
            self.reject(
                _seq(fields),
                fix.REJECT_REQUIRED_TAG_MISSING,
                "NewSeqNo (36) missing",
                now,
                ref_tag=fix.NEW_SEQ_NO,
                ref_msg_type=fix.SEQUENCE_RESET,
            )
            return
        if target < self.next_in:
            self.reject(
                _seq(fields),
                fix.REJECT_VALUE_INCORRECT,
                f"NewSeqNo {target} is below the expected {self.next_in}",
                now,
                ref_tag=fix.NEW_SEQ_NO,
                ref_msg_type=fix.SEQUENCE_RESET,
            )
            return
        self.next_in = target
        for stale in [s for s in self._queue if s < target]:
            del self._queue[stale]

    def _on_resend_request(self, fields: dict[int, str], now: float) -> None:
        begin = numbers.wire_int(fields.get(fix.BEGIN_SEQ_NO) or "1")
        end = numbers.wire_int(fields.get(fix.END_SEQ_NO) or "0")
        if begin is None or end is None:
            self.reject(_seq(fields), fix.REJECT_VALUE_INCORRECT,
                        "BeginSeqNo (7) and EndSeqNo (16) must be numbers", now,
                        ref_msg_type=fix.RESEND_REQUEST)  # fmt: skip
            return
        last = self.next_out - 1
        if end == 0 or end > last:
            end = last
        # Walk the store, not the range: 7=1 16=0 on a session of millions is one gap fill
        # plus what is stored, never a loop over every number sent.
        self._prune(now)
        cursor = max(begin, 1)
        for seq, (msg_type, body, sent_at, _) in list(self._store.items()):
            if seq < cursor or seq > end:
                continue
            if seq > cursor:
                self._gap_fill(cursor, seq, now)
            head = fix.header(self.sender, self.target, seq, fix_time(now), poss_dup=sent_at)
            self.outbox.append(fix.encode(msg_type, head, body))
            cursor = seq + 1
        if cursor <= end:
            self._gap_fill(cursor, end + 1, now)
        self._last_out = now

    def _gap_fill(self, seq: int, new_seq: int, now: float) -> None:
        head = fix.header(self.sender, self.target, seq, fix_time(now), poss_dup=fix_time(now))
        self.outbox.append(fix.encode(fix.SEQUENCE_RESET, head, f"123=Y\x0136={new_seq}\x01"))

    def _on_logout(self, fields: dict[int, str], now: float) -> None:
        if not self._logout_sent:
            self.logout("", now, close=False)
        self._close(fields.get(fix.TEXT, "peer logged out"))

    # ---- time ----------------------------------------------------------------------------------

    def tick(self, now: float) -> None:
        """Heartbeats out, TestRequest on silence, close when a TestRequest goes unanswered."""
        if self.state != ACTIVE:
            return
        hb = self.heartbeat_s
        if self._test_id and now - self._test_sent_at > hb:
            self._close("no answer to TestRequest")
            return
        if not self._test_id and now - self._last_in > hb * TEST_REQUEST_GRACE:
            self._test_id = f"T{int(now * 1000)}"
            self._test_sent_at = now
            self.send(fix.TEST_REQUEST, [(fix.TEST_REQ_ID, self._test_id)], now)
        elif now - self._last_out >= hb:
            self.send(fix.HEARTBEAT, (), now)

    def drain(self) -> bytes:
        data = b"".join(self.outbox)
        self.outbox.clear()
        return data


def _seq(fields: dict[int, str]) -> int | None:
    return numbers.wire_int(fields.get(fix.MSG_SEQ_NUM, ""))


_ADMIN_HANDLERS: Final[dict[str, Callable[[FixSession, dict[int, str], float], None]]] = {
    fix.HEARTBEAT: FixSession._on_heartbeat,
    fix.TEST_REQUEST: FixSession._on_test_request,
    fix.RESEND_REQUEST: FixSession._on_resend_request,
    fix.SEQUENCE_RESET: FixSession._on_sequence_reset,
    fix.LOGOUT: FixSession._on_logout,
    fix.LOGON: FixSession._on_logon,
}
