"""The WebSocket v2 trader's client: websocket-client on a gevent socket, token auth.

One request in flight: a call sends {method, params, req_id} and reads until the reply with
that req_id. Channel messages met on the way (executions, heartbeats) are not lost: execution
updates go to `on_execution`, which the trader points at its flow model so fills are learned.
Foreign exceptions (websocket-client's, the socket's) become Outcomes here, never escape.
"""

from __future__ import annotations

import contextlib
import itertools
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

import orjson
import websocket
from gevent import socket

from loadgen.flow.orders import LiveOrder
from loadgen.outcome import ERROR, OK, TIMEOUT, Outcome

PROTOCOL = "ws"
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
        self.token = token
        self.timeout = timeout
        self.on_execution = on_execution
        self.ws: websocket.WebSocket | None = None
        self.subscribed = False

    # ---- connection ---------------------------------------------------------------------------

    def _connect(self) -> websocket.WebSocket:
        sock = socket.create_connection(self.address, timeout=self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        ws = websocket.create_connection(
            self.url, socket=sock, timeout=self.timeout, skip_utf8_validation=True
        )
        self.ws = ws
        if self.on_execution is not None:
            self._send(
                {
                    "method": "subscribe",
                    "req_id": 0,
                    "params": {"channel": "executions", "token": self.token, "snap_orders": False},
                }
            )
            self._await(0)
        return ws

    def close(self) -> None:
        if self.ws is not None:
            with contextlib.suppress(Exception):  # closing a broken connection: nothing to save
                self.ws.close(timeout=1)
            self.ws = None

    def _send(self, message: dict[str, Any]) -> None:
        assert self.ws is not None
        self.ws.send(orjson.dumps(message).decode())

    def _await(self, req_id: int) -> dict[str, Any]:
        """Read until the reply to req_id; route channel messages met on the way."""
        assert self.ws is not None
        while True:
            msg = orjson.loads(self.ws.recv())
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
            if self.ws is None:
                self._connect()
                t0 = _perf_ns()  # the connect is not this request's latency
            self._send({"method": method, "params": params, "req_id": req_id})
            reply = self._await(req_id)
        except websocket.WebSocketTimeoutException:
            self.close()
            return (_perf_ns() - t0) // 1000, None, f"timeout: no reply within {self.timeout} s"
        except (websocket.WebSocketException, OSError, orjson.JSONDecodeError) as exc:
            self.close()
            return (_perf_ns() - t0) // 1000, None, f"transport: {exc or exc.__class__.__name__}"
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
            "limit_price": float(m.price_text(order.price)),
            "order_qty": float(m.qty_text(order.qty)),
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
            params["limit_price"] = float(m.price_text(price))
        if qty:
            params["order_qty"] = float(m.qty_text(qty))
        return self._outcome("amend", "amend_order", params)[0]

    def edit(self, order: LiveOrder, price: int = 0, qty: int = 0) -> Outcome:
        m = order.market
        params: dict[str, Any] = {"order_id": order.txid, "symbol": m.symbol}
        if price:
            params["limit_price"] = float(m.price_text(price))
        if qty:
            params["order_qty"] = float(m.qty_text(qty))
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
        return self._outcome("batch_cancel", "batch_cancel", {"orders": [o.txid for o in orders]})[
            0
        ]
