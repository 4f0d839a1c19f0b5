"""The FIX 4.4 trader's client: a gevent socket running the shared codec and session layer.

It uses loadgen.protocol.fix and .fixsession, the same code the venue runs, so the two ends
cannot drift apart (DESIGN); simplefix stays the tests' independent check of that code (and
its parser, at ~70 us a message measured, would alone exceed the trader's budget).

Kraken FIX has no edit and no batches: `edit` is an OrderCancelReplaceRequest (35=G, an atomic
amend at Kraken) with a new price, `batch_add` and `batch_cancel` are that many single messages
sent back to back, answered in one outcome. Replies are matched by ClOrdID (11), refusals by
BusinessRejectRefID (379) or RefSeqNum (45). ExecutionReports for other orders (fills of
resting orders) go to `on_execution`. After a dropped connection the client logs on again
without resetting sequence numbers; with cancel-on-disconnect (the default) the venue has
cancelled the session's orders, which `on_reconnect` tells the trader.
"""

from __future__ import annotations

import base64
import ssl
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

from gevent import socket

from loadgen.clients.backoff import Backoff
from loadgen.clients.dispatch import Dispatcher, Done
from loadgen.clients.net import (
    MILLISECONDS,
    NonceSource,
    Stamp,
    connect,
    latency_us,
    recv_stamped,
    send_all,
    sent_at,
)
from loadgen.clients.tls import for_scheme
from loadgen.flow.orders import LiveOrder
from loadgen.outcome import ERROR, OK, TIMEOUT, Outcome, read_back
from loadgen.protocol import errors, fix
from loadgen.protocol.clock import fix_time
from loadgen.protocol.fixsession import (
    ACTIVE,
    ROLLOVER_UTC,
    FixSession,
    last_rollover,
    rollover_second,
)
from loadgen.protocol.orderkinds import FIX_TIF, GTD_LIFETIME_S

PROTOCOL = "fix"
TARGET = "KRAKEN-TRD"
HEARTBEAT_S = 30
_POST_ONLY = "18=P\x01"  # ExecInst P: post-only (Kraken's FIX NewOrderSingle, facts)
UNKNOWN_ORDER = errors.UNKNOWN_ORDER


class FixFailure(Exception):
    """The session could not go on (closed, logged out, garbled beyond repair)."""


class FixClient(Dispatcher):
    protocol = PROTOCOL
    failures: tuple[type[BaseException], ...] = (OSError, FixFailure)

    def __init__(
        self,
        url: str,
        api_key: str,
        secret_b64: str,
        sender: str,
        next_id: Callable[[], str],
        timeout: float = 10.0,
        on_execution: Callable[[dict[int, str]], None] | None = None,
        on_reconnect: Callable[[], None] | None = None,
        tls: ssl.SSLContext | None = None,
        rollover: str = ROLLOVER_UTC,
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("tcp", "tls") or not parts.hostname or not parts.port:
            raise ValueError(f"FIX address {url!r}: expected tcp://HOST:PORT or tls://HOST:PORT")
        self.address = (parts.hostname, parts.port)
        self.tls = for_scheme(parts.scheme, tls)
        self.api_key = api_key
        self.secret = base64.b64decode(secret_b64)
        self.sender = sender
        self.next_id = next_id
        self.timeout = timeout
        self.on_execution = on_execution
        self.on_reconnect = on_reconnect
        self.session = FixSession(sender, TARGET, HEARTBEAT_S)
        self.sock: socket.socket | None = None
        self.reader = fix.FixReader()
        self.stamp = Stamp()  # when the last read arrived
        self._pending: dict[str, tuple[_Exchange, int, str]] = {}  # ClOrdID -> owed answer
        # The ClOrdID each live order answers to now (OrderID -> ClOrdID): Kraken's 35=G names
        # the order by both, 41 that ClOrdID and 37 its OrderID (facts 11). ClOrdIDs are drawn
        # when a message is written, not when the flow made the order, so they rise in the order
        # the session sends them, as Kraken requires of a pipelined sender too. An order leaves
        # when it closes.
        self.current_ids: dict[str, str] = {}
        self._by_seq: dict[str, str] = {}  # MsgSeqNum -> ClOrdID, while owed
        self._open = 0  # exchanges owed an answer
        self._logged_on_before = False
        self._logged_on_at = 0.0  # wall time of the last accepted Logon
        # the venue's day ends here (fixsession.ROLLOVER_UTC): a Logon after it starts afresh
        self.rollover = rollover_second(rollover) if rollover != "off" else None
        self.backoff = Backoff()
        self.logon_nonces = NonceSource.for_key(api_key, MILLISECONDS)

    # ---- session -------------------------------------------------------------------------------

    def _connect(self) -> None:
        self.sock = connect(self.address, self.timeout, self.backoff, self.tls)
        self.reader = fix.FixReader()
        session = self.session
        reset = not self._logged_on_before or self._new_day(time.time())
        if reset:
            session.next_out = 1
        nonce = str(self.logon_nonces.next())
        password = fix.logon_password(
            self.secret, session.next_out, self.sender, TARGET, self.api_key, nonce
        )
        session.state = "await_logon"
        session.closed = False
        session.start_logon(
            [(98, 0), (108, HEARTBEAT_S)]
            + ([(141, "Y")] if reset else [])
            + [(553, self.api_key), (554, password), (5025, nonce)],
            time.time(),
            reset=reset,
        )
        self._flush()
        while session.state != ACTIVE:
            self._read()  # the Logon reply is handled there (application messages: none yet)
        self._flush()
        if self._logged_on_before and self.on_reconnect is not None:
            self.on_reconnect()
        self._logged_on_before = True
        self._logged_on_at = time.time()

    def _new_day(self, now: float) -> bool:
        """Has the venue's FIX day rolled over since our last Logon? Its numbers start at 1."""
        return self.rollover is not None and last_rollover(now, self.rollover) > self._logged_on_at

    def _flush(self) -> None:
        """Send what the session has queued (its own messages: a logon, a heartbeat...)."""
        if self.session.outbox and self.sock is not None:
            send_all(self.sock, self.session.drain())

    def _read(self) -> list[dict[int, str]]:
        """Messages from one socket read, through the session (admin handled there)."""
        assert self.sock is not None
        self.stamp = Stamp()
        data = recv_stamped(self.sock, self.stamp)
        if not data:
            raise FixFailure("venue closed the connection")
        now = time.time()
        out: list[dict[int, str]] = []
        for item in self.reader.feed(data):
            if isinstance(item, fix.Garbled):
                raise FixFailure(f"garbled message from the venue: {item.reason}")
            fields = fix.decode(item)
            if self.session.state != ACTIVE:
                # The Logon reply. What follows it in the same read (a ResendRequest after a
                # reconnect, say) goes through the session like everything after it.
                if fields.get(35) == fix.LOGON:
                    self.session.logon_accepted(fields, now)
                elif fields.get(35) == fix.LOGOUT:
                    raise FixFailure(f"logon refused: {fields.get(58, '')}")
                continue
            out += self.session.receive(fields, now)
            if self.session.closed:
                raise FixFailure(f"session closed: {self.session.close_reason}")
        self.session.tick(now)
        self._flush()
        return out

    def close(self) -> None:
        self._stop_reader()
        self._pending.clear()  # the user stops: what it still awaited is not the venue's
        self._open = 0
        self._by_seq.clear()
        if self.sock is not None and self.session.state == ACTIVE:
            try:
                self.session.logout("", time.time())
                self._flush()
            except OSError:
                pass
        self._drop()

    def _drop(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        self.session.state = "await_logon"
        self.current_ids.clear()  # the session's orders are cancelled on disconnect (8674=0)

    # ---- exchanges: one at a time, or several on the wire at once (pipelined) ----------------

    def exchange(self, op: str, messages: list[tuple[str, str, str]], skip_unknown: bool = False,
                 post: Callable[[Outcome], Any] | None = None) -> Outcome | None:  # fmt: skip
        """Send (msg_type, ClOrdID, body) messages, wait for each one's answer: the Outcome
        (None when queued after begin()).

        The outcome is the first refusal, or ok; its detail lists, per message, the venue order
        id (37) of an accepted message or None. With `skip_unknown`, "unknown order" refusals
        do not count while any message was accepted (a batch cancel's ids already gone, as the
        venue treats them in CancelOrderBatch).
        """
        return self._submit((op, messages, skip_unknown, post))

    def _send(self, queued: list[Any], dones: list[Done] | None) -> list[_Exchange]:
        """Hand the queued exchanges' messages to the session and write them in one go; each
        message is owed an answer from here (`_pending`, by ClOrdID). `dones`: where each
        exchange's Outcome goes (open loop), None when flush() reads them itself."""
        session = self.session
        now = time.time()
        exchanges = []
        for n, (op, messages, skip_unknown, post) in enumerate(queued):
            ex = _Exchange(op, len(messages), skip_unknown, post, dones[n] if dones else None, 0)
            exchanges.append(ex)
            self._open += 1
            for i, (msg_type, cl_ord_id, body) in enumerate(messages):
                seq = str(session.next_out)
                self._pending[cl_ord_id] = (ex, i, seq)
                self._by_seq[seq] = cl_ord_id
                session.send(msg_type, body, now)
        data = session.drain()  # the session's bookkeeping (its resend store) first
        t0 = time.time_ns()  # just before the write
        for ex in exchanges:
            ex.t0 = t0
        if data and self.sock is not None:
            send_all(self.sock, data)
            sent = sent_at(self.sock, t0)
            for ex in exchanges:
                ex.t0 = sent
        return exchanges

    def flush(self) -> list[Outcome]:
        """Send every queued exchange's messages in one write and read every answer: the
        Outcomes in order, each with its latency to its last answer. A failure ends the
        session; the exchanges still unanswered get it as their outcome."""
        queued = self._take()
        exchanges: list[_Exchange] = []
        failure = kind = ""
        try:
            if self.sock is None or self.session.state != ACTIVE:
                self._connect()
            exchanges = self._send(queued, None)
            while any(ex.left for ex in exchanges):
                for fields in self._read():
                    self._answer(fields)
        except TimeoutError:
            failure, kind = f"timeout: no reply within {self.timeout} s", TIMEOUT
        except (OSError, FixFailure) as exc:
            failure, kind = f"transport: {exc}", ERROR
        if failure:
            self._pending.clear()
            self._open = 0
            self._by_seq.clear()
            self._drop()
            self.backoff.failed()
        else:
            self.backoff.succeeded()
        if not exchanges:  # the connection failed before anything went
            t0 = time.time_ns()
            exchanges = [_Exchange(q[0], len(q[1]), q[2], q[3], None, t0) for q in queued]
        end = Stamp(time.time_ns())
        return [ex.outcome(failure, kind, end) for ex in exchanges]

    def _answer(self, fields: dict[int, str]) -> None:
        """Match one message to the order message it answers, or route it (an execution)."""
        msg_type = fields.get(35)
        pending = self._pending
        if msg_type == fix.EXECUTION_REPORT or msg_type == fix.MASS_CANCEL_REPORT:
            hit = pending.pop(fields.get(11, ""), None)
            if msg_type == fix.EXECUTION_REPORT:
                txid = fields.get(37, "")
                if hit is not None and txid and fields.get(150) in fix.NAMES_ORDER:
                    self.current_ids[txid] = fields.get(11, "")
                if fields.get(39) in fix.CLOSED_STATUSES:
                    self.current_ids.pop(txid, None)
            if hit is None:
                if msg_type == fix.EXECUTION_REPORT and self.on_execution is not None:
                    self.on_execution(fields)
                return
            trade = msg_type == fix.EXECUTION_REPORT and fields.get(150) not in fix.NO_FILL
            if trade and self.on_execution is not None:
                self.on_execution(fields)
            self._answered(hit, fields.get(37) or fields.get(533), "")
        elif msg_type == fix.BUSINESS_REJECT:
            hit = pending.pop(fields.get(379, ""), None)
            if hit is None:
                hit = pending.pop(self._by_seq.get(fields.get(45, ""), ""), None)
            if hit is not None:
                self._answered(hit, None, fields.get(58, "business reject"))
        elif msg_type == "3":
            hit = pending.pop(self._by_seq.get(fields.get(45, ""), ""), None)
            if hit is not None:
                self._answered(hit, None, f"session reject: {fields.get(58, '')}")

    def _answered(self, hit: tuple[_Exchange, int, str], answer: Any, error: str) -> None:
        ex, index, seq = hit
        self._by_seq.pop(seq, None)
        ex.answers[index] = answer
        if error:
            ex.errors.append((index, error))
        ex.left -= 1
        if not ex.left:
            self._open -= 1
            ex.at = self.stamp
            if ex.done is not None:
                ex.done(ex.outcome("", "", self.stamp))

    # ---- open loop: send now, answers as they come (dispatch.Dispatcher) ---------------------------

    def dispatch(self, done: Done | list[Done]) -> None:
        """Send the queued exchanges in one write and return; each Outcome goes to `done`."""
        queued, dones = self._take_each(done)
        try:
            if self.sock is None or self.session.state != ACTIVE:
                self._connect()
        except (OSError, FixFailure) as exc:
            self._broken(f"transport: {exc}", ERROR)
            end = Stamp(time.time_ns())
            for (op, messages, skip_unknown, post), done_one in zip(queued, dones, strict=True):
                ex = _Exchange(op, len(messages), skip_unknown, post, done_one, end.ns)
                ex.fail(f"transport: {exc}", ERROR, end)
            return
        try:
            self._send(queued, dones)  # owed from before the write: failing it fails them too
        except (OSError, FixFailure) as exc:
            self._broken(f"transport: {exc}", ERROR)
            return
        self._start_reader()

    def in_flight(self) -> int:
        return self._open

    def _oldest(self) -> int:
        return next(iter(self._pending.values()))[0].t0 if self._pending else 0

    def _pump(self, sock: socket.socket) -> None:
        for fields in self._read():
            self._answer(fields)

    def _broken(self, failure: str, kind: str) -> None:
        """End the session; every exchange it owed gets `failure`."""
        owed = {id(hit[0]): hit[0] for hit in self._pending.values()}
        self._pending.clear()
        self._open = 0
        self._by_seq.clear()
        self._stop_reader()
        self._drop()
        self.backoff.failed()
        end = Stamp(time.time_ns())
        for ex in owed.values():
            ex.fail(failure, kind, end)

    # ---- the operations -------------------------------------------------------------------------

    def _new(self, order: LiveOrder) -> tuple[str, str, str]:
        m = order.market
        cl_ord_id = self.next_id()  # drawn as it is written: see current_ids
        return (
            "D",
            cl_ord_id,
            f"11={cl_ord_id}\x0154={fix.SIDE_CODES[order.side]}\x0155={m.symbol}\x01"
            f"38={m.qty_text(order.qty)}\x0140={order.kind.fix}\x01{_kind_tags(order)}"
            f"60={fix_time(time.time())}\x01{_POST_ONLY if order.post_only else ''}",
        )

    def _cancel(self, order: LiveOrder) -> tuple[str, str, str]:
        cancel_id = self.next_id()
        return (
            "F",
            cancel_id,
            f"11={cancel_id}\x0137={order.txid}\x0154={fix.SIDE_CODES[order.side]}\x01"
            f"55={order.market.symbol}\x0160={fix_time(time.time())}\x01",
        )

    def _replace(self, order: LiveOrder, price: int, qty: int) -> tuple[str, str, str]:
        m = order.market
        replace_id = self.next_id()
        current = self.current_ids.get(order.txid, order.cl_ord_id)
        body = (
            f"11={replace_id}\x0137={order.txid}\x0141={current}\x0154={fix.SIDE_CODES[order.side]}"
            f"\x0155={m.symbol}\x0140={order.kind.fix}\x0160={fix_time(time.time())}\x01"
        )
        if qty:
            body += f"38={m.qty_text(qty)}\x01"
        if price:
            body += f"44={m.price_text(price)}\x01"
        # the order's own TimeInForce, and post-only kept (facts 5: 35=G carries 59 and 18=P)
        body += f"59={FIX_TIF[order.kind.tif]}\x01{_POST_ONLY if order.post_only else ''}"
        return "G", replace_id, body

    def add(self, order: LiveOrder) -> Outcome | None:
        return self.exchange("add", [self._new(order)], post=_first_id)

    def batch_add(self, orders: list[LiveOrder]) -> Outcome | None:
        return self.exchange("batch_add", [self._new(o) for o in orders])

    def cancel(self, order: LiveOrder) -> Outcome | None:
        return self.exchange("cancel", [self._cancel(order)])

    def batch_cancel(self, orders: list[LiveOrder]) -> Outcome | None:
        return self.exchange("batch_cancel", [self._cancel(o) for o in orders], skip_unknown=True)

    def amend(self, order: LiveOrder, price: int = 0, qty: int = 0) -> Outcome | None:
        return self.exchange("amend", [self._replace(order, price, qty)])

    def edit(self, order: LiveOrder, price: int = 0, qty: int = 0) -> Outcome | None:
        """FIX has no legacy edit: a cancel-replace keeps the order id (detail: the same id)."""

        def same_id(outcome: Outcome) -> Any:
            return order.txid if outcome.ok else None

        return self.exchange("edit", [self._replace(order, price, qty)], post=same_id)

    def cancel_all(self) -> Outcome | None:
        mass_id = self.next_id()
        return self.exchange(
            "cancel_all",
            [("q", mass_id, f"11={mass_id}\x01530=7\x0160={fix_time(time.time())}\x01")],
            post=_mass_count,
        )


def _kind_tags(order: LiveOrder) -> str:
    """NewOrderSingle's tags for an order of its kind (orderkinds.py; facts 5): Price (44) for
    a limit, StopPx (99) for a trigger, TimeInForce (59) with ExpireTime (126) for GTD,
    DisplayQty (1138) for an iceberg."""
    m, kind = order.market, order.kind
    tags = f"44={m.price_text(order.price)}\x01" if kind.limit else ""
    if kind.trigger:
        tags += f"99={m.price_text(order.trigger)}\x01"
    tags += f"59={FIX_TIF[kind.tif]}\x01"
    if kind.tif == "gtd":
        tags += f"126={fix_time(time.time() + GTD_LIFETIME_S)}\x01"
    if order.display:
        tags += f"1138={m.qty_text(order.display)}\x01"
    return tags


def _first_id(outcome: Outcome) -> Any:
    """An add's detail: the order id its ExecutionReport gave (read_back: the Outcome's)."""
    return outcome.detail[0] if outcome.ok else None


def _mass_count(outcome: Outcome) -> Any:
    return int(outcome.detail[0] or 0) if outcome.ok else None


class _Exchange:
    """One operation's order messages and what has come back for them."""

    __slots__ = ("answers", "at", "done", "errors", "left", "op", "post", "skip_unknown", "t0")

    def __init__(self, op: str, n: int, skip_unknown: bool, post: Callable[[Outcome], Any] | None,
                 done: Done | None, t0: int) -> None:  # fmt: skip
        self.op = op
        self.answers: list[Any] = [None] * n
        self.errors: list[tuple[int, str]] = []
        self.left = n
        self.skip_unknown = skip_unknown
        self.post = post
        self.done = done
        self.t0 = t0
        self.at: Stamp | None = None

    def outcome(self, failure: str, kind: str, end: Stamp) -> Outcome:
        """The Outcome: timed to the last answer (or to `end`, with `failure`, if unanswered)."""
        stamp = self.at or end
        latency = latency_us(self.t0, stamp.ns)
        if self.left:
            outcome = Outcome(PROTOCOL, self.op, kind or ERROR, latency, failure or "no answer")
            outcome.sent_ns, outcome.answered_ns = self.t0, stamp.ns
            return outcome
        refusals = [err for _, err in self.errors]
        if self.skip_unknown and any(self.answers):
            refusals = [err for err in refusals if err != UNKNOWN_ORDER]
        if refusals:
            outcome = Outcome.from_error(PROTOCOL, self.op, latency, refusals[0])
        else:
            outcome = Outcome(PROTOCOL, self.op, OK, latency)
        outcome.detail = self.answers
        if len(self.answers) > 1:
            outcome.parts = [""] * len(self.answers)
            for index, error in self.errors:
                outcome.parts[index] = error
        if self.post is not None:
            read_back(outcome, self.post, outcome)
        outcome.sent_ns, outcome.answered_ns, outcome.stamp = self.t0, stamp.ns, stamp.source
        return outcome

    def fail(self, failure: str, kind: str, end: Stamp) -> None:
        if self.done is not None:
            self.done(self.outcome(failure, kind, end))
