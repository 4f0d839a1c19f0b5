"""The WebSocket v2 trader's client: the shared RFC 6455 codec on a gevent socket, token auth.

Why not websocket-client: it reads a frame with several socket calls (header, length, payload)
and masks in Python; on this project's reference VM a WsTrader on it cost 292 us of generator
CPU per request, more than stock Locust's FastHttpUser (281 us). loadgen.protocol.wsframe is
the codec the venue already runs, so both ends share it (DESIGN); the tests' independent WS
client (the `websockets` library) checks it against another implementation.

A call sends {method, params, req_id} and reads until the reply with that req_id; after
begin(), calls queue instead and flush() sends them in one write and reads until every reply is
in (pipelining: the user keeps several requests on the wire per turn).
Channel messages met on the way (executions, heartbeats) are not lost: execution
updates go to `on_execution`, which the trader points at its flow model so fills are learned.
Foreign exceptions (the socket's, the codec's) become Outcomes here, never escape.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import os
import re
import ssl
import time
import urllib.parse
from collections import deque
from collections.abc import Callable
from typing import Any

from gevent import socket

from loadgen.clients.backoff import Backoff
from loadgen.clients.dispatch import Dispatcher, Done
from loadgen.clients.net import (
    Stamp,
    connect,
    latency_us,
    recv_stamped,
    send_all,
    send_stamped,
    sent_at,
)
from loadgen.clients.tls import for_scheme
from loadgen.flow.orders import LiveOrder
from loadgen.outcome import ERROR, OK, TIMEOUT, Outcome, read_back
from loadgen.protocol import messages, ws, wsframe
from loadgen.protocol.clock import rfc3339_seconds
from loadgen.protocol.messages import WS
from loadgen.protocol.operations import WS_METHOD
from loadgen.protocol.orderkinds import GTD_LIFETIME_S
from loadgen.protocol.wsframe import FrameParser, WsProtocolError

PROTOCOL = "ws"
W = WS.order  # how add_order names an order's parts (protocol/messages.py)


# An executions update that ends an order. One scan for the key and its three values: 0.55 us
# over an 800-byte pending_new+new message, where three `in` tests over it took 1.3 us.
_ENDS_ORDER = re.compile(
    b'"%s":\\s*"(?:%s)"'
    % (messages.EXEC_TYPE.encode(), "|".join(messages.ENDING_EXEC_TYPES).encode())
).search


def _req_id(msg: dict[str, Any] | None) -> int:
    """A reply's req_id (-1: none, or not an integer: it answers nothing this client sent)."""
    req_id = msg.get("req_id") if msg is not None else None
    return req_id if isinstance(req_id, int) else -1


def _ends_order(raw: bytes) -> bool:
    """Does this executions message report an order's end (without parsing it)?"""
    return _ENDS_ORDER(raw) is not None


_ids = itertools.count(1)


class WsClient(Dispatcher):
    protocol = PROTOCOL
    failures: tuple[type[BaseException], ...] = (OSError, WsProtocolError, ws.WsMessageError)

    def __init__(
        self,
        url: str,
        token: str,
        timeout: float = 10.0,
        on_execution: Callable[[dict[str, Any]], None] | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("ws", "wss") or not parts.hostname:
            raise ValueError(f"WebSocket URL {url!r}: expected ws(s)://HOST[:PORT]/v2")
        self.url = url
        self.tls = for_scheme(parts.scheme, tls)
        self.address = (parts.hostname, parts.port or (443 if self.tls else 80))
        self.path = parts.path or "/"
        self.host = parts.netloc
        self.token = token
        self.timeout = timeout
        self.on_execution = on_execution
        self.sock: socket.socket | None = None
        self.frames = FrameParser(expect_masked=False)
        self.inbox: deque[bytes] = deque()  # text messages read but not yet consumed
        self.stamp = Stamp()  # when the inbox's last read arrived
        self.backoff = Backoff()
        self._inflight: dict[int, tuple[str, Any, int, Done]] = {}  # open loop, by req_id

    # ---- connection ---------------------------------------------------------------------------

    def _connect(self) -> None:
        sock, rest = open_upgraded(self.address, self.path, self.host, self.timeout, self.backoff,
                                   self.tls)  # fmt: skip
        self.sock = sock
        self.frames = FrameParser(expect_masked=False)
        self.inbox = deque()
        self._feed(sock, rest)
        if self.on_execution is not None:
            params = {"channel": "executions", "token": self.token, "snap_orders": False}
            self._send("subscribe", params, 0)
            self._await(0)
        self.stamp = Stamp()  # not a request's: the handshake's last read

    def close(self) -> None:
        self._stop_reader()
        self._inflight.clear()  # the user stops: what it still awaited is not the venue's
        if self.sock is not None:
            with contextlib.suppress(OSError):  # closing a broken connection: nothing to save
                self.sock.sendall(wsframe.encode_close(wsframe.CLOSE_NORMAL, mask=True))
            self.sock.close()
            self.sock = None

    def _send(self, method: str, params: dict[str, Any], req_id: int) -> None:
        assert self.sock is not None
        payload = ws.request(method, params, req_id)
        self.sock.sendall(wsframe.encode_frame(wsframe.OP_TEXT, payload, mask=True))

    def _feed(self, sock: socket.socket, data: bytes) -> None:
        """The frames of a read: text to the inbox, a ping answered on `sock` (where it came)."""
        for opcode, payload in self.frames.feed(data):
            if opcode == wsframe.OP_TEXT:
                self.inbox.append(payload)
            elif opcode == wsframe.OP_PING:
                sock.sendall(wsframe.encode_frame(wsframe.OP_PONG, payload, mask=True))
            elif opcode == wsframe.OP_CLOSE:
                code, reason = wsframe.parse_close(payload)
                raise ConnectionError(f"venue closed the WebSocket ({code} {reason})")

    def _collect(self, waiting: dict[int, int], replies: list[Any], at: list[Stamp]) -> None:
        """Read until every req_id in `waiting` (req_id -> index) has its reply, filling
        replies[index] and at[index] (when the read that brought it arrived); channel
        messages met on the way go to on_execution."""
        assert self.sock is not None
        inbox = self.inbox
        stamp = self.stamp  # messages left in the inbox came with the last read
        while waiting:
            while not inbox:
                stamp = self.stamp = Stamp()
                data = recv_stamped(self.sock, stamp)
                if not data:
                    raise ConnectionError("venue closed the connection")
                self._feed(self.sock, data)
            msg = self._reply(inbox.popleft())
            index = waiting.pop(_req_id(msg), None)
            if index is not None:
                replies[index], at[index] = msg, stamp

    def _reply(self, raw: bytes) -> dict[str, Any] | None:
        """A method's reply (parsed), or None for a channel message, which goes on its way.

        Channel messages (executions, heartbeats) arrive about once per request; only an
        order's end matters to the flow, so only those are parsed."""
        if raw.startswith(b'{"channel"'):
            if self.on_execution is not None and _ends_order(raw):
                for update in ws.parse(raw).get("data", ()):
                    self.on_execution(update)
            return None
        msg = ws.parse(raw)
        if "method" in msg:
            return msg
        if msg.get("channel") == "executions" and self.on_execution is not None:
            for update in msg.get("data", ()):
                self.on_execution(update)
        return None

    def _await(self, req_id: int) -> dict[str, Any]:
        """Read until the reply to req_id; route channel messages met on the way."""
        replies: list[Any] = [None]
        self._collect({req_id: 0}, replies, [self.stamp])
        return replies[0]

    # ---- requests: one at a time, or several on the wire at once (pipelined) -------------------

    def _request(self, op: str, params: dict[str, Any],
                 post: Callable[[Any], Any] | None = None) -> Outcome | None:  # fmt: skip
        """One operation (its WS v2 method from protocol/operations.py): done at once (its
        Outcome), or queued after begin() (None)."""
        params["token"] = self.token
        return self._submit((op, WS_METHOD[op], params, post))

    def flush(self) -> list[Outcome]:
        """Send the queued requests in one write and read every reply: Outcomes in order.

        Each latency runs from the write to the read that brought its reply. A transport
        failure or timeout ends the connection; the requests still unanswered get it as
        their outcome (those answered before keep theirs).
        """
        queued = self._take()
        n = len(queued)
        replies: list[Any] = [None] * n
        unanswered = Stamp()
        at = [unanswered] * n
        failure = ""
        t0 = time.time_ns()
        try:
            if self.sock is None:
                self._connect()
                t0 = time.time_ns()  # the connect is not these requests' latency
            waiting: dict[int, int] = {}
            frames = []
            for i, (_, method, params, _) in enumerate(queued):
                req_id = next(_ids)
                waiting[req_id] = i
                payload = ws.request(method, params, req_id)
                frames.append(wsframe.encode_frame(wsframe.OP_TEXT, payload, mask=True))
            t0 = send_stamped(self.sock, frames[0] if n == 1 else b"".join(frames))
            self._collect(waiting, replies, at)
        except TimeoutError:
            failure = f"timeout: no reply within {self.timeout} s"
        except (WsProtocolError, OSError, ws.WsMessageError) as exc:
            failure = f"transport: {exc or exc.__class__.__name__}"
        if failure:
            self.close()
            self.backoff.failed()
        else:
            self.backoff.succeeded()
        unanswered.ns = time.time_ns()
        return [
            _outcome(op, post, reply, t0, stamp, failure)
            for (op, _, _, post), reply, stamp in zip(queued, replies, at, strict=True)
        ]

    # ---- open loop: send now, answers as they come (dispatch.Dispatcher) ---------------------------

    def dispatch(self, done: Done | list[Done]) -> None:
        """Send the queued requests in one write and return; each Outcome goes to `done`."""
        queued, dones = self._take_each(done)
        try:
            if self.sock is None:
                self._connect()
        except self.failures as exc:
            _refused(queued, dones, f"transport: {exc or exc.__class__.__name__}")
            self.close()
            self.backoff.failed()
            return
        frames, ids = [], []
        for _, method, params, _ in queued:
            ids.append(next(_ids))
            payload = ws.request(method, params, ids[-1])
            frames.append(wsframe.encode_frame(wsframe.OP_TEXT, payload, mask=True))
        t0 = time.time_ns()  # just before the write, the encoding done
        inflight = self._inflight
        for req_id, (op, _, _, post), done_one in zip(ids, queued, dones, strict=True):
            # in flight before the write: a reply read while sendall waits finds its entry
            inflight[req_id] = (op, post, t0, done_one)
        try:
            send_all(self.sock, frames[0] if len(frames) == 1 else b"".join(frames))
        except self.failures as exc:
            self._broken(f"transport: {exc or exc.__class__.__name__}", ERROR)
            return
        sent = sent_at(self.sock, t0)
        if sent != t0:  # the kernel's stamp: the entries still owed take it
            for req_id in ids:
                entry = inflight.get(req_id)
                if entry is not None:
                    inflight[req_id] = (entry[0], entry[1], sent, entry[3])
        self._start_reader()

    def in_flight(self) -> int:
        return len(self._inflight)

    def _oldest(self) -> int:
        return next(iter(self._inflight.values()))[2] if self._inflight else 0

    def _pump(self, sock: socket.socket) -> None:
        stamp = Stamp()
        data = recv_stamped(sock, stamp)
        if not data:
            raise ConnectionError("venue closed the connection")
        self._feed(sock, data)
        inbox, inflight = self.inbox, self._inflight
        while inbox:
            msg = self._reply(inbox.popleft())
            entry = inflight.pop(_req_id(msg), None)
            if entry is not None:
                op, post, t0, done = entry
                done(_outcome(op, post, msg, t0, stamp, ""))

    def _broken(self, failure: str, kind: str) -> None:
        """End the connection; every request it owed gets `failure`."""
        owed = list(self._inflight.values())
        self._inflight.clear()
        self.close()
        self.backoff.failed()
        now = Stamp(time.time_ns())
        for op, post, t0, done in owed:
            done(_outcome(op, post, None, t0, now, failure))

    # ---- the operations ------------------------------------------------------------------------

    @staticmethod
    def _order_params(order: LiveOrder) -> dict[str, Any]:
        """add_order's params for an order of its kind (orderkinds.py; facts 4.2; the names
        protocol/messages.py's)."""
        m, kind = order.market, order.kind
        # int / 10**n is correctly rounded: the same float as parsing the decimal text
        params: dict[str, Any] = {W.type: kind.type, W.side: order.side}
        if kind.limit:
            params[W.limit] = order.price / 10**m.price_decimals
        params[W.qty] = order.qty / 10**m.lot_decimals
        params[W.cl_ord_id] = order.cl_ord_id
        if kind.trigger:
            params[W.trigger_in] = {W.trigger_ref: "last", W.trigger_price_type: "static",
                                    W.trigger: order.trigger / 10**m.price_decimals}  # fmt: skip
        if kind.tif != "gtc":
            params[W.tif] = kind.tif
            if kind.tif == "gtd":
                params[W.expire] = rfc3339_seconds(time.time() + GTD_LIFETIME_S)
        if order.display:
            params[W.display] = order.display / 10**m.lot_decimals
        if order.post_only:
            params[W.post_only] = True
        return params

    def add(self, order: LiveOrder) -> Outcome | None:
        params = self._order_params(order)
        params[W.pair] = order.market.symbol
        return self._request("add", params, messages.ws_added)

    def amend(self, order: LiveOrder, price: int = 0, qty: int = 0) -> Outcome | None:
        m, words = order.market, WS.amend
        params: dict[str, Any] = {words.order_id: order.txid}
        if price:
            params[words.limit] = price / 10**m.price_decimals
        if qty:
            params[words.qty] = qty / 10**m.lot_decimals
        if order.post_only:  # a re-price that would take is refused, not filled
            params[words.post_only] = True
        return self._request("amend", params)

    def edit(self, order: LiveOrder, price: int = 0, qty: int = 0) -> Outcome | None:
        m, words = order.market, WS.edit
        params: dict[str, Any] = {words.order_id: order.txid, W.pair: m.symbol}
        if price:
            params[words.limit] = price / 10**m.price_decimals
        if qty:
            params[words.qty] = qty / 10**m.lot_decimals
        return self._request("edit", params, messages.ws_edited)

    def cancel(self, order: LiveOrder) -> Outcome | None:
        return self._request("cancel", {WS.cancel_id: [order.txid]})

    def cancel_all(self) -> Outcome | None:
        return self._request("cancel_all", {}, messages.ws_count)

    def batch_add(self, orders: list[LiveOrder]) -> Outcome | None:
        params = {W.pair: orders[0].market.symbol,
                  WS.batch: [self._order_params(o) for o in orders]}  # fmt: skip
        return self._request("batch_add", params, messages.ws_batch_added)

    def batch_cancel(self, orders: list[LiveOrder]) -> Outcome | None:
        return self._request("batch_cancel", {WS.batch_cancel: [o.txid for o in orders]},
                             messages.ws_count)  # fmt: skip


def _refused(queued: list[Any], dones: list[Done], failure: str) -> None:
    """Requests that never went (the connection could not be made): each gets `failure`."""
    now = Stamp(time.time_ns())
    for (op, _, _, post), done in zip(queued, dones, strict=True):
        done(_outcome(op, post, None, now.ns, now, failure))


def _outcome(op: str, post: Any, reply: dict[str, Any] | None, t0: int, stamp: Stamp,
             failure: str) -> Outcome:  # fmt: skip
    """One request's Outcome: its reply (None: `failure`), timed from t0 to the stamp."""
    latency = latency_us(t0, stamp.ns)
    if reply is None:
        kind = TIMEOUT if failure.startswith("timeout") else ERROR
        outcome = Outcome(PROTOCOL, op, kind, latency, failure or "transport: no reply")
    else:
        error, result = ws.read_reply(reply)
        if error is not None:
            outcome = Outcome.from_error(PROTOCOL, op, latency, error)
        else:
            outcome = Outcome(PROTOCOL, op, OK, latency)
            if post is not None:  # what the trader reads back (messages.py's reader)
                read_back(outcome, post, result)
    outcome.sent_ns, outcome.answered_ns, outcome.stamp = t0, stamp.ns, stamp.source
    return outcome


def open_upgraded(address: tuple[str, int], path: str, host: str, timeout: float,
                  backoff: Backoff, tls: ssl.SSLContext | None) -> tuple[Any, bytes]:  # fmt: skip
    """A connection (clients/net.connect) past the WebSocket handshake, and what followed it."""
    sock = connect(address, timeout, backoff, tls)
    try:
        return sock, upgrade(sock, path, host)
    except BaseException:
        sock.close()
        raise


def upgrade(sock: Any, path: str, host: str) -> bytes:
    """The WebSocket opening handshake on a connected socket (RFC 6455 section 4); what came
    after the 101 answer. ConnectionError with the status line when it is refused."""
    key = base64.b64encode(os.urandom(16))
    sock.sendall(
        b"GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
        % (path.encode(), host.encode(), key)
    )
    head = b""
    while b"\r\n\r\n" not in head:
        data = sock.recv(4096)
        if not data:
            raise ConnectionError("closed during the WebSocket handshake")
        head += data
    head, _, rest = head.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 101") or wsframe.accept_key(key) not in head:
        status = head.split(b"\r\n", 1)[0].decode("latin-1")
        raise ConnectionError(f"WebSocket upgrade of {path} refused: {status}")
    return rest


def connect_with_token(rest_url: str, ws_url: str, api_key: str, secret: str, timeout: float,
                       on_execution: Callable[[dict[str, Any]], None] | None = None,
                       tls: ssl.SSLContext | None = None) -> WsClient:  # fmt: skip
    """A WsClient for a key: its token from REST GetWebSocketsToken first (ConnectionError if
    the venue will not give one)."""
    from loadgen.clients.rest import RestClient

    rest = RestClient(rest_url, api_key, secret, timeout=timeout, tls=tls)
    _, errors, result, failure = rest.call("GetWebSocketsToken", "")
    rest.close()
    if failure or errors:
        raise ConnectionError(f"GetWebSocketsToken: {failure or errors[0]}")
    return WsClient(ws_url, result["token"], timeout=timeout, on_execution=on_execution, tls=tls)
