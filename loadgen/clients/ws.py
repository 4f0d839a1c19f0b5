"""The WebSocket v2 trader's client: the shared RFC 6455 codec on a gevent socket, token auth.

Why not websocket-client: it reads a frame with several socket calls (header, length, payload)
and masks in Python; on this project's reference VM a WsTrader on it cost 292 us of generator
CPU per request, more than stock Locust's FastHttpUser (281 us). loadgen.protocol.wsframe is
the codec the venue already runs, so both ends share it (DESIGN); the tests' independent WS
client (the `websockets` library) checks it against another implementation.

One request in flight: a call sends {method, params, req_id} and reads until the reply with
that req_id. Channel messages met on the way (executions, heartbeats) are not lost: execution
updates go to `on_execution`, which the trader points at its flow model so fills are learned.
Foreign exceptions (the socket's, the codec's) become Outcomes here, never escape.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import os
import time
import urllib.parse
from collections import deque
from collections.abc import Callable
from typing import Any

from gevent import socket

from loadgen.clients.backoff import Backoff
from loadgen.clients.net import connect, wait_readable
from loadgen.flow.orders import LiveOrder
from loadgen.outcome import ERROR, OK, TIMEOUT, Outcome
from loadgen.protocol import ws, wsframe
from loadgen.protocol.wsframe import FrameParser, WsProtocolError

PROTOCOL = "ws"


def _ends_order(raw: bytes) -> bool:
    """Does this executions message report an order's end (without parsing it)?"""
    return b'"filled"' in raw or b'"canceled"' in raw or b'"expired"' in raw


_perf_ns = time.perf_counter_ns
_ids = itertools.count(1)


class WsClient:
    protocol = PROTOCOL

    def __init__(
        self,
        url: str,
        token: str,
        timeout: float = 10.0,
        on_execution: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "ws" or not parts.hostname:
            raise ValueError(f"WebSocket URL {url!r}: expected ws://HOST:PORT/v2")
        self.url = url
        self.address = (parts.hostname, parts.port or 80)
        self.path = parts.path or "/"
        self.host = parts.netloc
        self.token = token
        self.timeout = timeout
        self.on_execution = on_execution
        self.sock: socket.socket | None = None
        self.frames = FrameParser(expect_masked=False)
        self.inbox: deque[bytes] = deque()  # text messages read but not yet consumed
        self.backoff = Backoff()

    # ---- connection ---------------------------------------------------------------------------

    def _connect(self) -> None:
        sock = connect(self.address, self.timeout, self.backoff)
        key = base64.b64encode(os.urandom(16))
        sock.sendall(
            b"GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
            % (self.path.encode(), self.host.encode(), key)
        )
        head = b""
        while b"\r\n\r\n" not in head:
            data = sock.recv(4096)
            if not data:
                raise ConnectionError("closed during the WebSocket handshake")
            head += data
        head, _, rest = head.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101") or wsframe.accept_key(key) not in head:
            status = head.split(b"\r\n", 1)[0]
            raise ConnectionError(f"WebSocket handshake refused: {status!r}")
        self.sock = sock
        self.frames = FrameParser(expect_masked=False)
        self.inbox = deque()
        self._feed(rest)
        if self.on_execution is not None:
            params = {"channel": "executions", "token": self.token, "snap_orders": False}
            self._send("subscribe", params, 0)
            self._await(0)

    def close(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):  # closing a broken connection: nothing to save
                self.sock.sendall(wsframe.encode_close(wsframe.CLOSE_NORMAL, mask=True))
            self.sock.close()
            self.sock = None

    def _send(self, method: str, params: dict[str, Any], req_id: int) -> None:
        assert self.sock is not None
        payload = ws.request(method, params, req_id)
        self.sock.sendall(wsframe.encode_frame(wsframe.OP_TEXT, payload, mask=True))

    def _feed(self, data: bytes) -> None:
        for opcode, payload in self.frames.feed(data):
            if opcode == wsframe.OP_TEXT:
                self.inbox.append(payload)
            elif opcode == wsframe.OP_PING:
                self.sock.sendall(wsframe.encode_frame(wsframe.OP_PONG, payload, mask=True))
            elif opcode == wsframe.OP_CLOSE:
                code, reason = wsframe.parse_close(payload)
                raise ConnectionError(f"venue closed the WebSocket ({code} {reason})")

    def _await(self, req_id: int) -> dict[str, Any]:
        """Read until the reply to req_id; route channel messages met on the way."""
        assert self.sock is not None
        inbox = self.inbox
        while True:
            while not inbox:
                wait_readable(self.sock)
                data = self.sock.recv(65536)
                if not data:
                    raise ConnectionError("venue closed the connection")
                self._feed(data)
            raw = inbox.popleft()
            if raw.startswith(b'{"channel"'):
                # Channel messages (executions, heartbeats) arrive about once per request;
                # only an order's end matters to the flow, so only those are parsed.
                if self.on_execution is not None and _ends_order(raw):
                    for update in ws.parse(raw).get("data", ()):
                        self.on_execution(update)
                continue
            msg = ws.parse(raw)
            if msg.get("req_id") == req_id and "method" in msg:
                return msg
            if msg.get("channel") == "executions" and self.on_execution is not None:
                for update in msg.get("data", ()):
                    self.on_execution(update)

    def call(self, method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any] | None, str]:
        """(latency us, reply, failure) for one request; failure is '' when a reply came."""
        req_id = next(_ids)
        params["token"] = self.token
        t0 = _perf_ns()
        try:
            if self.sock is None:
                self._connect()
                t0 = _perf_ns()  # the connect is not this request's latency
            self._send(method, params, req_id)
            reply = self._await(req_id)
        except TimeoutError:
            self.close()
            self.backoff.failed()
            return (_perf_ns() - t0) // 1000, None, f"timeout: no reply within {self.timeout} s"
        except (WsProtocolError, OSError, ws.WsMessageError) as exc:
            self.close()
            self.backoff.failed()
            return (_perf_ns() - t0) // 1000, None, f"transport: {exc or exc.__class__.__name__}"
        self.backoff.succeeded()
        return (_perf_ns() - t0) // 1000, reply, ""

    def _outcome(self, op: str, method: str, params: dict[str, Any]) -> tuple[Outcome, Any]:
        latency, reply, failure = self.call(method, params)
        if failure:
            kind = TIMEOUT if failure.startswith("timeout") else ERROR
            return Outcome(PROTOCOL, op, kind, latency, failure), None
        assert reply is not None
        if not reply.get("success"):
            return Outcome.from_error(PROTOCOL, op, latency, str(reply.get("error"))), None
        return Outcome(PROTOCOL, op, OK, latency), reply.get("result")

    # ---- the operations ------------------------------------------------------------------------

    @staticmethod
    def _order_params(order: LiveOrder) -> dict[str, Any]:
        m = order.market
        return {
            "order_type": "limit",
            "side": order.side,
            # int / 10**n is correctly rounded: the same float as parsing the decimal text
            "limit_price": order.price / 10**m.price_decimals,
            "order_qty": order.qty / 10**m.lot_decimals,
            "cl_ord_id": order.cl_ord_id,
        }

    def add(self, order: LiveOrder) -> Outcome:
        params = self._order_params(order)
        params["symbol"] = order.market.symbol
        outcome, result = self._outcome("add", "add_order", params)
        if result is not None:
            outcome.detail = result["order_id"]
        return outcome

    def amend(self, order: LiveOrder, price: int = 0, qty: int = 0) -> Outcome:
        m = order.market
        params: dict[str, Any] = {"order_id": order.txid}
        if price:
            params["limit_price"] = price / 10**m.price_decimals
        if qty:
            params["order_qty"] = qty / 10**m.lot_decimals
        return self._outcome("amend", "amend_order", params)[0]

    def edit(self, order: LiveOrder, price: int = 0, qty: int = 0) -> Outcome:
        m = order.market
        params: dict[str, Any] = {"order_id": order.txid, "symbol": m.symbol}
        if price:
            params["limit_price"] = price / 10**m.price_decimals
        if qty:
            params["order_qty"] = qty / 10**m.lot_decimals
        outcome, result = self._outcome("edit", "edit_order", params)
        if result is not None:
            outcome.detail = result["order_id"]
        return outcome

    def cancel(self, order: LiveOrder) -> Outcome:
        return self._outcome("cancel", "cancel_order", {"order_id": [order.txid]})[0]

    def cancel_all(self) -> Outcome:
        outcome, result = self._outcome("cancel_all", "cancel_all", {})
        if result is not None:
            outcome.detail = result["count"]
        return outcome

    def batch_add(self, orders: list[LiveOrder]) -> Outcome:
        params = {
            "symbol": orders[0].market.symbol,
            "orders": [self._order_params(o) for o in orders],
        }
        outcome, result = self._outcome("batch_add", "batch_add", params)
        if result is not None:
            outcome.detail = [entry.get("order_id") for entry in result]
        return outcome

    def batch_cancel(self, orders: list[LiveOrder]) -> Outcome:
        params = {"orders": [o.txid for o in orders]}
        outcome, result = self._outcome("batch_cancel", "batch_cancel", params)
        if isinstance(result, dict) and isinstance(result.get("count"), int):
            outcome.detail = result["count"]  # how many were still open (the rate limit's cost)
        return outcome


def connect_with_token(rest_url: str, ws_url: str, api_key: str, secret: str, timeout: float,
                       on_execution: Callable[[dict[str, Any]], None] | None = None) -> WsClient:  # fmt: skip
    """A WsClient for a key: its token from REST GetWebSocketsToken first (ConnectionError if
    the venue will not give one)."""
    from loadgen.clients.rest import RestClient

    rest = RestClient(rest_url, api_key, secret, timeout=timeout)
    _, errors, result, failure = rest.call("GetWebSocketsToken", "")
    rest.close()
    if failure or errors:
        raise ConnectionError(f"GetWebSocketsToken: {failure or errors[0]}")
    return WsClient(ws_url, result["token"], timeout=timeout, on_execution=on_execution)
