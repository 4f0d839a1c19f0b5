"""The WebSocket v2 gateway: RFC 6455 handshake and frames, v2 methods, the channels.

Kraken's two hosts are two ports, each at path /v2: the authenticated one (ws-auth.kraken.com/v2:
trading, executions, and the public channels too, as the venue has always served them there)
and the public one (ws.kraken.com/v2: book, ticker, trade, ohlc, instrument and ping; a private
method or the executions channel there is refused by name, facts 10.4).
Private methods authenticate by `params.token` (from GetWebSocketsToken);
an unknown or expired token gets `ESession:Invalid session`. A frame that breaks RFC 6455
closes the connection with the matching close code; a bad message (not JSON, unknown method,
wrong types) gets an error reply and the connection stays open.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any, Final

from loadgen.protocol import errors, ws, wsframe
from loadgen.protocol.messages import WS
from loadgen.protocol.wsframe import FrameParser, WsProtocolError
from loadgen.venue.conn import Connection
from loadgen.venue.engine import E_UNAVAILABLE, EV_NEW, Event, VenueError, check_deadline
from loadgen.venue.marketdata import CHANNELS, SLOW_GRACE_S, FeedKey
from loadgen.venue.ws_api import STATUS_ONLY, execution, order_snapshot, pending_new

if TYPE_CHECKING:
    from loadgen.venue.accounts import Account
    from loadgen.venue.context import ServerContext

MAX_HANDSHAKE: Final = 8 * 1024
MAX_MESSAGE: Final = 256 * 1024  # a 15-order batch_add is ~3 KiB
E_INVALID_SESSION: Final = errors.INVALID_SESSION
E_UNKNOWN_METHOD: Final = errors.UNKNOWN_METHOD
WS_DEADLINE_MIN_S: Final = 0.5  # "deadline: 500 ms to 60 s ahead" (facts 4.2)
_connection_ids = itertools.count(1)
# RFC 6455 7.4.1: a message that violates policy (here: reading too slowly)
CLOSE_POLICY: Final = 1008
MAX_SYMBOLS: Final = 200  # symbols one public subscribe may name (Kraken's level3 allows 200)


def _public_params_problem(symbols: Any, name: str | None, value: Any,
                           allowed: tuple[Any, ...], snapshot: Any) -> str:  # fmt: skip
    if not isinstance(symbols, list) or not symbols or not all(isinstance(s, str) for s in symbols):
        return 'symbol (a list of symbols, e.g. ["BTC/USD"])'
    if len(symbols) > MAX_SYMBOLS:
        return f"symbol (at most {MAX_SYMBOLS} a request)"
    if name and (type(value) is not type(allowed[0]) or value not in allowed):  # 10.0 is no depth
        return f"{name} (one of {', '.join(map(str, allowed))})"
    if not isinstance(snapshot, bool):
        return "snapshot (true or false)"
    return ""


def _http_error(status: str, text: str) -> bytes:
    body = text.encode()
    return b"HTTP/1.1 %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (
        status.encode(), len(body), body)  # fmt: skip


def _private_here(what: str) -> str:
    return (f"{E_UNKNOWN_METHOD}:{what} is served on the authenticated endpoint "
            "(ws-auth), not the public one")  # fmt: skip


class WsConnection(Connection):
    protocol_name = "ws"
    authenticated = True  # the ws-auth endpoint: trading, executions and the public channels

    def __init__(self, venue: ServerContext) -> None:
        super().__init__(venue)
        assert venue.ws_api is not None  # made with the context, before any connection
        self.api = venue.ws_api
        self.accounts = venue.accounts
        self.wall = venue.exchange.wall
        self.frames: FrameParser | None = None  # set once the handshake is done
        self._handshake = b""
        self.subscribed: list[Account] = []
        self.tokens: set[str] = set()  # tokens used here: held valid while it lives
        self.sequence = 0
        self.order_status = True  # the executions subscription's options (facts 10.3)
        self.ratecounter = False
        self.mono = venue.exchange.mono
        self.sent_since_tick = False  # heartbeats go only to connections that were quiet
        self.feeds: dict[FeedKey, Any] = {}  # public subscriptions: (channel, pair, parameter)
        self.instrument = False  # subscribed to the instrument channel

    def connection_lost(self, exc: Exception | None) -> None:
        for token in self.tokens:
            self.accounts.release_token(token, self.wall())
        self.tokens.clear()
        for account in self.subscribed:
            if self in account.listeners:
                account.listeners.remove(self)
        self.subscribed.clear()
        self._leave_feeds()
        super().connection_lost(exc)

    def _leave_feeds(self) -> None:
        market_data = self.venue.market_data
        for key in self.feeds:
            market_data.unsubscribe(self, key)
        self.feeds.clear()

    def on_data(self, data: bytes) -> None:
        if self.frames is None:
            self._on_handshake_bytes(data)
            return
        try:
            messages = self.frames.feed(data)
        except WsProtocolError as exc:
            self._close(exc.code, exc.reason)
            return
        for opcode, payload in messages:
            if opcode == wsframe.OP_TEXT:
                self._on_text(payload)
            elif opcode == wsframe.OP_PING:
                self.send(wsframe.encode_frame(wsframe.OP_PONG, payload))
            elif opcode == wsframe.OP_CLOSE:
                code, _ = wsframe.parse_close(payload)
                self._close(code if code < 5000 else wsframe.CLOSE_NORMAL, "")
            elif opcode == wsframe.OP_BINARY:
                self._close(wsframe.CLOSE_UNSUPPORTED, "binary frames are not served")
            if self.closed:
                return

    # ---- handshake -------------------------------------------------------------------------

    def _on_handshake_bytes(self, data: bytes) -> None:
        self._handshake += data
        end = self._handshake.find(b"\r\n\r\n")
        if end < 0:
            if len(self._handshake) > MAX_HANDSHAKE:
                self._refuse("431 Request Header Fields Too Large", "handshake too large")
            return
        head, rest = self._handshake[:end], self._handshake[end + 4 :]
        self._handshake = b""
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ")
        headers: dict[bytes, bytes] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep:
                self._refuse("400 Bad Request", "malformed header line")
                return
            headers[name.strip().lower()] = value.strip()
        if len(parts) != 3 or parts[0] != b"GET" or not parts[2].startswith(b"HTTP/1."):
            self._refuse("400 Bad Request", "expected GET /v2 HTTP/1.1")
            return
        if parts[1].split(b"?")[0] not in (b"/v2", b"/v2/"):
            self._refuse("404 Not Found", "WebSocket v2 is served at /v2")
            return
        key = headers.get(b"sec-websocket-key")
        if headers.get(b"upgrade", b"").lower() != b"websocket" or not key:
            self._refuse("426 Upgrade Required", "WebSocket upgrade expected")
            return
        if headers.get(b"sec-websocket-version") != b"13":
            self._refuse("426 Upgrade Required", "Sec-WebSocket-Version 13 expected")
            return
        self.frames = FrameParser(expect_masked=True, max_size=MAX_MESSAGE)
        self.send(wsframe.handshake_response(key))
        self._send_text(ws.status(next(_connection_ids)))
        if rest:
            self.on_data(rest)

    def _refuse(self, status: str, text: str) -> None:
        self.send(_http_error(status, text))
        self.close_after_write()
        self.closed = True

    def _close(self, code: int, reason: str) -> None:
        self.send(wsframe.encode_close(code, reason))
        self.close_after_write()
        self.closed = True

    # ---- messages --------------------------------------------------------------------------

    def _send_text(self, payload: bytes, delay: float = 0.0) -> None:
        self.sent_since_tick = True
        self.send(wsframe.encode_frame(wsframe.OP_TEXT, payload), delay)

    def _on_text(self, payload: bytes) -> None:
        time_in = self.wall()
        try:
            replies = self._dispatch(payload, time_in)
        except Exception as exc:  # a bug must cost one reply, never the venue
            self.venue.problems.report("WS handler", exc)
            replies = [ws.reply_error(None, None, errors.INTERNAL, time_in, self.wall())]
        if replies is None:  # dropped by the knob
            return
        delay = self.reply_delay()
        for reply in replies:
            self._send_text(reply, delay)
        self.venue.exchange.flush()

    def _dispatch(self, payload: bytes, time_in: float) -> list[bytes] | None:
        try:
            msg = ws.parse(payload, bounded=True)
        except ws.WsMessageError as exc:
            return [
                ws.reply_error(
                    None, exc.req_id, errors.invalid_arguments(str(exc)), time_in, self.wall()
                )
            ]
        method = msg.get("method")
        req_id = msg.get("req_id")
        if req_id is not None and (not isinstance(req_id, int) or isinstance(req_id, bool)):
            return [
                self._error(
                    None, None, errors.invalid_arguments("req_id must be an integer"), time_in
                )
            ]
        if not isinstance(method, str):
            return [self._error(None, req_id, errors.invalid_arguments("method"), time_in)]
        if method == "ping":
            return [ws.pong(req_id, time_in, self.wall())]
        params = msg.get("params", {})
        if not isinstance(params, dict):
            return [self._error(method, req_id, errors.invalid_arguments("params"), time_in)]
        if method in ("subscribe", "unsubscribe"):
            return self._subscription(method, params, req_id, time_in)
        if not self.authenticated:
            return [self._error(method, req_id, _private_here(method), time_in)]
        handler = self.api.methods.get(method)
        if handler is None:
            return [self._error(method, req_id, E_UNKNOWN_METHOD, time_in)]
        self.venue.served["ws"] += 1
        account = self._account(params)
        if account is None:
            return [self._error(method, req_id, E_INVALID_SESSION, time_in)]
        faults = self.faults
        if faults.drop_ratio and faults.drop():
            self.abort()
            return None
        if faults.unavailable_ratio and faults.unavailable():
            return [self._error(method, req_id, E_UNAVAILABLE, time_in)]
        try:
            if WS.deadline in params:
                check_deadline(params[WS.deadline], time_in, least=WS_DEADLINE_MIN_S)
            result = handler(account, params)
        except VenueError as refused:
            return [self._error(method, req_id, refused.message, time_in)]
        if method == "cancel_order":
            return [
                self._error(method, req_id, r.message, time_in)
                if isinstance(r, VenueError)
                else ws.reply_ok(method, req_id, r, time_in, self.wall())
                for r in result
            ]
        return [ws.reply_ok(method, req_id, result, time_in, self.wall())]

    def _error(self, method: str | None, req_id: Any, error: str, time_in: float) -> bytes:
        return ws.reply_error(method, req_id, error, time_in, self.wall())

    def _account(self, params: dict[str, Any]) -> Account | None:
        token = params.get("token")
        if not isinstance(token, str):
            return None
        account = self.accounts.by_token(token, self.wall())
        if account is not None and token not in self.tokens:
            # in use on this connection: valid while the connection lives (facts 4.1); a
            # trading connection past 15 minutes was refused ESession:Invalid session before
            self.tokens.add(token)
            self.accounts.hold_token(token)
        return account

    # ---- executions channel ------------------------------------------------------------------

    def _subscription(
        self, method: str, params: dict[str, Any], req_id: Any, time_in: float
    ) -> list[bytes]:
        channel = params.get("channel")
        if not isinstance(channel, str):
            return [self._error(method, req_id, errors.invalid_arguments("channel"), time_in)]
        if channel in CHANNELS:
            return self._public_subscription(method, params, req_id, time_in)
        if channel == "instrument":
            return self._instrument_subscription(method, params, req_id, time_in)
        if channel == "executions" and not self.authenticated:
            return [self._error(method, req_id, _private_here("executions"), time_in)]
        if channel != "executions":
            return [
                self._error(
                    method,
                    req_id,
                    f"{errors.INVALID_ARGUMENTS}:channel {channel!r} "
                    "is not served (only executions, book, ticker, trade, ohlc and instrument)",
                    time_in,
                )
            ]
        account = self._account(params)
        if account is None:
            return [self._error(method, req_id, E_INVALID_SESSION, time_in)]
        if method == "unsubscribe":
            if self in account.listeners:
                account.listeners.remove(self)
                self.subscribed.remove(account)
            return [ws.reply_ok(method, req_id, {"channel": "executions"}, time_in, self.wall())]
        options = {}
        for name, default in (("snap_orders", True), ("snap_trades", False),
                              ("order_status", True), ("ratecounter", False)):  # fmt: skip
            value = params.get(name, default)
            if not isinstance(value, bool):
                return [self._error(method, req_id, errors.invalid_arguments(name),
                                    time_in)]  # fmt: skip
            options[name] = value
        self.order_status, self.ratecounter = options["order_status"], options["ratecounter"]
        if self not in account.listeners:
            account.listeners.append(self)
            self.subscribed.append(account)
        result = {
            "channel": "executions",
            "maxratecount": account.tier.trade_threshold,
            "snap_orders": options["snap_orders"],
            "snap_trades": options["snap_trades"],
        }
        replies = [ws.reply_ok(method, req_id, result, time_in, self.wall())]
        snapshot = []
        if options["snap_orders"]:
            snapshot += [order_snapshot(o) for o in account.orders.values()]
        if options["snap_trades"]:
            snapshot += [execution(e, e.order.closetm or self.wall(), self._usd)
                         for e in account.fills]  # fmt: skip
        if options["snap_orders"] or options["snap_trades"]:
            self.sequence += 1
            replies.append(ws.channel("executions", "snapshot", snapshot, self.sequence))
        return replies

    # ---- public channels: book, ticker, trade, ohlc, instrument ------------------------------

    def _public_subscription(
        self, method: str, params: dict[str, Any], req_id: Any, time_in: float
    ) -> list[bytes]:
        """One answer per symbol (facts 10.1), each subscription's snapshot after its ack."""
        channel = params["channel"]
        spec = CHANNELS[channel]
        name = spec.param
        symbols: Any = params.get("symbol")
        snapshot = params.get("snapshot", spec.snapshot)
        value = params.get(name, spec.default) if name else None
        problem = _public_params_problem(symbols, name, value, spec.values, snapshot)
        if problem:
            return [self._error(method, req_id, errors.invalid_arguments(problem), time_in)]
        replies: list[bytes] = []
        for symbol in symbols:
            result: dict[str, Any] = {"channel": channel}
            if name:
                result[name] = value
            result |= {"snapshot": snapshot, "symbol": symbol}
            replies += self._public_symbol(method, symbol, value, result, req_id, time_in)
        return replies

    def _public_symbol(self, method: str, symbol: str, value: Any, result: dict[str, Any],
                       req_id: Any, time_in: float) -> list[bytes]:  # fmt: skip
        pair = self.venue.exchange.pairs.get(symbol)
        if pair is None:
            return [self._error(method, req_id, f"Currency pair not supported {symbol}", time_in)]
        key = (result["channel"], pair.altname, value)
        market_data = self.venue.market_data
        if method == "unsubscribe":
            if self.feeds.pop(key, None) is None:
                return [self._error(method, req_id, "Subscription Not Found", time_in)]
            market_data.unsubscribe(self, key)
            del result["snapshot"]
            return [ws.reply_ok(method, req_id, result, time_in, self.wall())]
        if key in self.feeds:
            return [self._error(method, req_id, "Already subscribed", time_in)]
        feed = self.feeds[key] = market_data.subscribe(self, key[0], pair, value)
        replies = [ws.reply_ok(method, req_id, result, time_in, self.wall())]
        if result["snapshot"]:
            replies.append(feed.snapshot(self.wall()))
        return replies

    def _instrument_subscription(
        self, method: str, params: dict[str, Any], req_id: Any, time_in: float
    ) -> list[bytes]:
        """The instrument channel: no symbol; its snapshot is every asset and pair."""
        snapshot = params.get("snapshot", True)
        if not isinstance(snapshot, bool):
            return [self._error(method, req_id, errors.invalid_arguments("snapshot"), time_in)]
        result: dict[str, Any] = {"channel": "instrument"}
        if method == "unsubscribe":
            if not self.instrument:
                return [self._error(method, req_id, "Subscription Not Found", time_in)]
            self.instrument = False
            return [ws.reply_ok(method, req_id, result, time_in, self.wall())]
        if self.instrument:
            return [self._error(method, req_id, "Already subscribed", time_in)]
        self.instrument = True
        result["snapshot"] = snapshot
        replies = [ws.reply_ok(method, req_id, result, time_in, self.wall())]
        if snapshot:
            replies.append(self.venue.market_data.instrument())
        return replies

    def feed_frame(self, frame: bytes) -> None:
        """A public feed's update, framed once for every subscriber of the feed."""
        transport = self.transport
        if self.closed or transport is None:
            return
        if transport.get_write_buffer_size() > self.venue.market_data.slow_bytes:
            self._too_slow()
            return
        self.sent_since_tick = True
        self.send(frame)

    def _too_slow(self) -> None:
        """Unread updates past SLOW_BYTES: no more of them; a named close behind the unread,
        and the connection cut if that is not read within SLOW_GRACE_S."""
        market_data = self.venue.market_data
        market_data.dropped += 1
        self._leave_feeds()
        self._close(CLOSE_POLICY, f"too slow: over {market_data.slow_bytes} bytes of book "
                    "updates unread")  # fmt: skip
        self.venue.exchange.call_later(SLOW_GRACE_S, self.abort)  # type: ignore[misc]

    def _usd(self, asset_id: str) -> float:
        return self.venue.exchange.rate(asset_id, "ZUSD")

    def on_events(self, events: list[Event]) -> None:
        now = self.wall()
        self.sequence += 1
        data = []
        for event in events:
            entry = execution(event, now, self._usd)
            if not self.order_status and entry["exec_type"] in STATUS_ONLY:
                continue
            if event.kind == EV_NEW and self.order_status:
                data.append(pending_new(event, now))
            if self.ratecounter:
                order = event.order
                level = order.account.trade_counter(order.pair.altname).level(self.mono())
                entry["ratecount"] = round(level, 2)
            data.append(entry)
        if data:
            self._send_text(ws.channel("executions", "update", data, self.sequence))
        else:
            self.sequence -= 1

    def heartbeat(self, now: float) -> None:
        """Called every second by the venue: a subscribed connection that heard nothing since
        the last tick gets a heartbeat, so it hears something at least every second."""
        listening = self.subscribed or self.feeds or self.instrument
        if listening and not self.closed and not self.sent_since_tick:
            self._send_text(ws.HEARTBEAT)
        self.sent_since_tick = False


class PublicWsConnection(WsConnection):
    """The public endpoint (ws.kraken.com/v2): the public channels and ping only."""

    authenticated = False
