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
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

from gevent import socket

from loadgen.clients.backoff import Backoff
from loadgen.clients.net import (
    MILLISECONDS,
    NonceSource,
    Pipelined,
    Stamp,
    connect,
    latency_us,
    recv_stamped,
    send_stamped,
)
from loadgen.flow.orders import LiveOrder
from loadgen.outcome import ERROR, OK, TIMEOUT, Outcome
from loadgen.protocol import fix
from loadgen.protocol.clock import fix_time
from loadgen.protocol.fixsession import ACTIVE, FixSession

PROTOCOL = "fix"
TARGET = "KRAKEN-TRD"
HEARTBEAT_S = 30
_SIDE = {"buy": "1", "sell": "2"}
UNKNOWN_ORDER = "EOrder:Unknown order"


class FixFailure(Exception):
    """The session could not go on (closed, logged out, garbled beyond repair)."""


class FixClient(Pipelined):
    protocol = PROTOCOL

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
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "tcp" or not parts.hostname or not parts.port:
            raise ValueError(f"FIX address {url!r}: expected tcp://HOST:PORT")
        self.address = (parts.hostname, parts.port)
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
        self._logged_on_before = False
        self.backoff = Backoff()
        self.logon_nonces = NonceSource.for_key(api_key, MILLISECONDS)

    # ---- session -------------------------------------------------------------------------------

    def _connect(self) -> None:
        self.sock = connect(self.address, self.timeout, self.backoff)
        self.reader = fix.FixReader()
        session = self.session
        reset = not self._logged_on_before
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
            for fields in self._read():
                if fields.get(35) == fix.LOGON:
                    session.logon_accepted(fields, time.time())
                elif fields.get(35) == fix.LOGOUT:
                    raise FixFailure(f"logon refused: {fields.get(58, '')}")
        self._flush()
        if self._logged_on_before and self.on_reconnect is not None:
            self.on_reconnect()
        self._logged_on_before = True

    def _flush(self) -> int:
        """Send what the session has queued; when it went (wall-clock ns)."""
        if self.session.outbox and self.sock is not None:
            return send_stamped(self.sock, self.session.drain())
        return time.time_ns()

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
                out.append(fields)  # the Logon reply, handled by _connect
                continue
            out += self.session.receive(fields, now)
            if self.session.closed:
                raise FixFailure(f"session closed: {self.session.close_reason}")
        self.session.tick(now)
        self._flush()
        return out

    def close(self) -> None:
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

    # ---- exchanges: one at a time, or several on the wire at once (pipelined) ----------------

    def exchange(self, op: str, messages: list[tuple[str, str, str]], skip_unknown: bool = False,
                 post: Callable[[Outcome], None] | None = None) -> Outcome | None:  # fmt: skip
        """Send (msg_type, ClOrdID, body) messages, wait for each one's answer: the Outcome
        (None when queued after begin()).

        The outcome is the first refusal, or ok; its detail lists, per message, the venue order
        id (37) of an accepted message or None. With `skip_unknown`, "unknown order" refusals
        do not count while any message was accepted (a batch cancel's ids already gone, as the
        venue treats them in CancelOrderBatch).
        """
        return self._submit((op, messages, skip_unknown, post))

    def flush(self) -> list[Outcome]:
        """Send every queued exchange's messages in one write and read every answer: the
        Outcomes in order, each with its latency to its last answer. A failure ends the
        session; the exchanges still unanswered get it as their outcome."""
        queued = self._take()
        n = len(queued)
        answers: list[list[Any]] = [[None] * len(e[1]) for e in queued]
        errors: list[list[tuple[int, str]]] = [[] for _ in queued]
        left = [len(e[1]) for e in queued]
        unanswered = Stamp()
        at = [unanswered] * n
        failure = kind = ""
        t0 = time.time_ns()
        try:
            if self.sock is None or self.session.state != ACTIVE:
                self._connect()
                t0 = time.time_ns()
            now = time.time()
            pending: dict[str, tuple[int, int]] = {}
            by_seq: dict[str, str] = {}
            session = self.session
            for e, (_, messages, _, _) in enumerate(queued):
                for i, (msg_type, cl_ord_id, body) in enumerate(messages):
                    pending[cl_ord_id] = (e, i)
                    by_seq[str(session.next_out)] = cl_ord_id
                    session.send(msg_type, body, now)
            t0 = self._flush()
            while pending:
                for fields in self._read():
                    hit = self._answer(fields, pending, by_seq, answers, errors)
                    if hit is not None:
                        left[hit] -= 1
                        if not left[hit]:
                            at[hit] = self.stamp
        except TimeoutError:
            failure, kind = f"timeout: no reply within {self.timeout} s", TIMEOUT
        except (OSError, FixFailure) as exc:
            failure, kind = f"transport: {exc}", ERROR
        if failure:
            self._drop()
            self.backoff.failed()
        else:
            self.backoff.succeeded()
        unanswered.ns = time.time_ns()
        outcomes = []
        for e, (op, messages, skip_unknown, post) in enumerate(queued):
            stamp = at[e]
            latency = latency_us(t0, stamp.ns)
            if left[e]:
                outcome = Outcome(PROTOCOL, op, kind, latency, failure)
                outcome.sent_ns, outcome.answered_ns = t0, stamp.ns
                outcomes.append(outcome)
                continue
            refusals = [err for _, err in errors[e]]
            if skip_unknown and any(answers[e]):
                refusals = [err for err in refusals if err != UNKNOWN_ORDER]
            if refusals:
                outcome = Outcome.from_error(PROTOCOL, op, latency, refusals[0])
            else:
                outcome = Outcome(PROTOCOL, op, OK, latency)
            outcome.detail = answers[e]
            if len(messages) > 1:
                outcome.parts = [""] * len(messages)
                for index, error in errors[e]:
                    outcome.parts[index] = error
            if post is not None:
                post(outcome)
            outcome.sent_ns, outcome.answered_ns, outcome.stamp = t0, stamp.ns, stamp.source
            outcomes.append(outcome)
        return outcomes

    def _answer(
        self,
        fields: dict[int, str],
        pending: dict[str, tuple[int, int]],
        by_seq: dict[str, str],
        answers: list[list[Any]],
        errors: list[list[tuple[int, str]]],
    ) -> int | None:
        """Match one message to the exchange it answers (its index), or route it."""
        msg_type = fields.get(35)
        if msg_type == "8" or msg_type == "r":
            hit = pending.pop(fields.get(11, ""), None)
            if hit is None:
                if msg_type == "8" and self.on_execution is not None:
                    self.on_execution(fields)
                return None
            answers[hit[0]][hit[1]] = fields.get(37) or fields.get(533)
            if (
                msg_type == "8"
                and fields.get(150) not in ("0", "4", "5", "I")
                and self.on_execution is not None
            ):
                self.on_execution(fields)
            return hit[0]
        if msg_type == "j":
            hit = pending.pop(fields.get(379, ""), None)
            if hit is None:
                hit = pending.pop(by_seq.get(fields.get(45, ""), ""), None)
            if hit is not None:
                errors[hit[0]].append((hit[1], fields.get(58, "business reject")))
                return hit[0]
        elif msg_type == "3":
            hit = pending.pop(by_seq.get(fields.get(45, ""), ""), None)
            if hit is not None:
                errors[hit[0]].append((hit[1], f"session reject: {fields.get(58, '')}"))
                return hit[0]
        return None

    # ---- the operations -------------------------------------------------------------------------

    def _new(self, order: LiveOrder) -> tuple[str, str, str]:
        m = order.market
        return (
            "D",
            order.cl_ord_id,
            f"11={order.cl_ord_id}\x0154={_SIDE[order.side]}\x0155={m.symbol}\x01"
            f"38={m.qty_text(order.qty)}\x0140=2\x0144={m.price_text(order.price)}\x01"
            f"59=1\x0160={fix_time(time.time())}\x01",
        )

    def _cancel(self, order: LiveOrder) -> tuple[str, str, str]:
        cancel_id = self.next_id()
        return (
            "F",
            cancel_id,
            f"11={cancel_id}\x0137={order.txid}\x0154={_SIDE[order.side]}\x01"
            f"55={order.market.symbol}\x0160={fix_time(time.time())}\x01",
        )

    def _replace(self, order: LiveOrder, price: int, qty: int) -> tuple[str, str, str]:
        m = order.market
        replace_id = self.next_id()
        body = (
            f"11={replace_id}\x0137={order.txid}\x0154={_SIDE[order.side]}\x0155={m.symbol}"
            f"\x0140=2\x0160={fix_time(time.time())}\x01"
        )
        if qty:
            body += f"38={m.qty_text(qty)}\x01"
        if price:
            body += f"44={m.price_text(price)}\x01"
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

        def same_id(outcome: Outcome) -> None:
            outcome.detail = order.txid if outcome.ok else None

        return self.exchange("edit", [self._replace(order, price, qty)], post=same_id)

    def cancel_all(self) -> Outcome | None:
        mass_id = self.next_id()
        return self.exchange(
            "cancel_all",
            [("q", mass_id, f"11={mass_id}\x01530=7\x0160={fix_time(time.time())}\x01")],
            post=_mass_count,
        )


def _first_id(outcome: Outcome) -> None:
    outcome.detail = outcome.detail[0] if outcome.ok else None


def _mass_count(outcome: Outcome) -> None:
    outcome.detail = int(outcome.detail[0] or 0) if outcome.ok else None
