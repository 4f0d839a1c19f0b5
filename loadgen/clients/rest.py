"""The REST trader's client: signed Kraken private calls over one keep-alive connection.

Lean by design (the trader's budget is tens of microseconds a request): the request head for
each method is built once, the HMAC key schedule once per key (protocol.rest.keyed), and a call
is a few string operations, one signature, one write and one httptools parse.

Nonces are microseconds since the epoch, strictly increasing per key across every client of
that key in this process (net.NonceSource). Users sharing a key over separate connections
can still reach the venue out of order; give each user its own key (the default) or a key a
nonce window.
"""

from __future__ import annotations

import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from collections.abc import Callable
from typing import Any

import httptools

from loadgen.clients.dispatch import Dispatcher, Done
from loadgen.clients.http import HttpConnection, TransportError, TransportTimeout
from loadgen.clients.net import (
    NonceSource,
    latency_us,
    recv_stamped,
    send_all,
    sent_at,
)
from loadgen.clients.tls import VERIFY_ADVICE, for_scheme
from loadgen.flow.market import Market
from loadgen.flow.orders import LiveOrder
from loadgen.outcome import ERROR, OK, TIMEOUT, Outcome, read_back
from loadgen.protocol import assets, messages, rest
from loadgen.protocol.messages import REST
from loadgen.protocol.operations import REST_METHOD
from loadgen.protocol.orderkinds import GTD_LIFETIME_S, REST_TIF

PROTOCOL = "rest"
W = REST.order  # how AddOrder names an order's parts (protocol/messages.py)


class RestClient(Dispatcher):
    protocol = PROTOCOL
    failures: tuple[type[BaseException], ...] = (OSError, TransportError, httptools.HttpParserError)

    def __init__(
        self,
        base_url: str,
        api_key: str,
        secret_b64: str,
        timeout: float = 10.0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        url = urllib.parse.urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"REST URL {base_url!r}: expected http(s)://HOST[:PORT]")
        context = for_scheme(url.scheme, tls)
        port = url.port or (443 if context else 80)
        self.conn = HttpConnection(url.hostname, port, timeout, context)
        # The URL's path, if any, comes before Kraken's /0/private/<Method> (a gateway that
        # serves it under a prefix); the signature covers the path as sent.
        self.prefix = url.path.rstrip("/")
        self.timeout = timeout
        self.signer = rest.keyed(rest.decode_secret(secret_b64))
        self.nonces = NonceSource.for_key(api_key)
        self._fifo: deque[tuple[str, Any, int, Done]] = deque()  # open loop: owed, in order
        host = f"{url.hostname}:{url.port}" if url.port else url.hostname
        self._heads: dict[str, tuple[bytes, bytes]] = {}
        self._head_tail = (
            f"Host: {host}\r\nUser-Agent: loadgen\r\nAPI-Key: {api_key}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
        ).encode()

    def close(self) -> None:
        self._stop_reader()
        self._fifo.clear()  # the user stops: what it still awaited is not the venue's
        self.conn.close()

    # ---- one call, or several pipelined ------------------------------------------------------

    def _encode(self, method: str, fields: str) -> bytes:
        """A signed private call, ready to write."""
        head = self._heads.get(method)
        if head is None:
            path = f"{self.prefix}/0/private/{method}".encode()
            head = self._heads[method] = (
                path,
                b"POST " + path + b" HTTP/1.1\r\n" + self._head_tail,
            )
        path, start = head
        nonce = str(self.nonces.next()).encode()
        body = b"nonce=" + nonce + (b"&" + fields.encode() if fields else b"")
        sign = rest.sign(self.signer, path, nonce, body)
        return b"%sAPI-Sign: %s\r\nContent-Length: %d\r\n\r\n%s" % (start, sign, len(body), body)

    def call(self, method: str, fields: str) -> tuple[int, list[str], Any, str]:
        """(latency us, errors, result, transport failure) for one private call."""
        return self._calls([self._encode(method, fields)])[0][:4]

    def _calls(self, requests: list[bytes]) -> list[tuple[int, list[str], Any, str, int, str]]:
        """Pipelined calls: (latency us, errors, result, transport failure, when answered in
        wall-clock ns, who stamped it: net.Stamp) for each."""
        failure = ""
        try:
            replies = self.conn.roundtrips(requests)
        except TransportError as exc:
            kind = "timeout" if isinstance(exc, TransportTimeout) else "transport"
            failure = f"{kind}: {exc}"
            replies = exc.partial
        end = time.time_ns()
        t0 = self.conn.sent_at  # after a reconnect: a connect is never part of a latency
        out: list[tuple[int, list[str], Any, str, int, str]] = []
        for i in range(len(requests)):
            if i >= len(replies):
                out.append((latency_us(t0, end), [], None, failure, end, ""))
                continue
            status, payload, at, source = replies[i]
            latency = latency_us(t0, at)
            try:
                errors, result = rest.parse_reply(payload)
            except rest.RestProtocolError:
                failure_text = f"HTTP {status}: not a Kraken reply"
                out.append((latency, [], None, failure_text, at, source))
                continue
            out.append((latency, errors, result, "", at, source))
        return out

    def _request(self, op: str, fields: str,
                 post: Callable[[Any], Any] | None = None) -> Outcome | None:  # fmt: skip
        """One operation (its REST method from protocol/operations.py): done at once (its
        Outcome), or queued after begin() (None)."""
        return self._submit((op, self._encode(REST_METHOD[op], fields), post))

    def flush(self) -> list[Outcome]:
        """Send the queued calls pipelined on the connection; their Outcomes in order."""
        queued = self._take()
        calls = self._calls([request for _, request, _ in queued])
        sent = self.conn.sent_at
        return [_outcome(op, post, sent, *call) for (op, _, post), call in zip(queued, calls,
                                                                                strict=True)]  # fmt: skip

    # ---- open loop: send now, answers as they come (dispatch.Dispatcher) ---------------------------

    def _socket(self) -> Any:
        return self.conn.sock

    def dispatch(self, done: Done | list[Done]) -> None:
        """Send the queued calls pipelined in one write and return; each Outcome goes to
        `done` as its reply comes (HTTP/1.1 answers in order: a slow reply holds the replies
        behind it, never the next send)."""
        queued, dones = self._take_each(done)
        conn = self.conn
        if conn.sock is None:
            try:
                conn._connect()
            except TransportError as exc:
                now = time.time_ns()
                for (op, _, post), done_one in zip(queued, dones, strict=True):
                    done_one(_outcome(op, post, now, 0, [], None, f"transport: {exc}", now, ""))
                return
            conn._replies = []
        t0 = time.time_ns()  # just before the write; owed from here (a reply may come in it)
        for (op, _, post), done_one in zip(queued, dones, strict=True):
            self._fifo.append((op, post, t0, done_one))
        data = queued[0][1] if len(queued) == 1 else b"".join(q[1] for q in queued)
        try:
            send_all(conn.sock, data)
        except OSError as lost:
            self._broken(f"transport: {lost or lost.__class__.__name__}", ERROR)
            return
        sent = sent_at(conn.sock, t0)
        fifo = self._fifo
        for i in range(max(0, len(fifo) - len(queued)), len(fifo)):
            if fifo[i][2] == t0:  # still owed: the kernel's stamp, when it gave one
                fifo[i] = (fifo[i][0], fifo[i][1], sent, fifo[i][3])
        self._start_reader()

    def in_flight(self) -> int:
        return len(self._fifo)

    def _oldest(self) -> int:
        return self._fifo[0][2] if self._fifo else 0

    def _pump(self, sock: Any) -> None:
        conn = self.conn
        data = recv_stamped(sock, conn._stamp)
        if not data:
            raise TransportError("venue closed the connection")
        conn.parser.feed_data(data)
        replies, conn._replies = conn._replies, []
        for status, payload, at, source in replies:
            if not self._fifo:
                raise TransportError(f"HTTP {status}: a reply to no request")
            op, post, t0, done = self._fifo.popleft()
            try:
                errors, result = rest.parse_reply(payload)
                failure = ""
            except rest.RestProtocolError:
                errors, result, failure = [], None, f"HTTP {status}: not a Kraken reply"
            done(_outcome(op, post, t0, latency_us(t0, at), errors, result, failure, at, source))

    def _broken(self, failure: str, kind: str) -> None:
        """Drop the connection; every call it owed gets `failure`."""
        owed = list(self._fifo)
        self._fifo.clear()
        self._stop_reader()
        self.conn.drop()
        now = time.time_ns()
        for op, post, t0, done in owed:
            done(_outcome(op, post, t0, latency_us(t0, now), [], None, failure, now, ""))

    # ---- the operations ----------------------------------------------------------------------

    def add(self, order: LiveOrder) -> Outcome | None:
        fields = "&".join(f"{k}={v}" for k, v in _order_fields(order).items())
        fields = f"{W.pair}={order.market.name}&{fields}"
        return self._request("add", fields, messages.rest_added)

    def amend(self, order: LiveOrder, price: int = 0, qty: int = 0) -> Outcome | None:
        m, words = order.market, REST.amend
        fields = f"{words.order_id}={order.txid}"
        if price:
            fields += f"&{words.limit}={m.price_text(price)}"
        if qty:
            fields += f"&{words.qty}={m.qty_text(qty)}"
        if order.post_only:  # a re-price that would take is refused, not filled (facts S21)
            fields += f"&{words.post_only}=true"
        return self._request("amend", fields)

    def edit(self, order: LiveOrder, price: int = 0, qty: int = 0) -> Outcome | None:
        m, words = order.market, REST.edit
        fields = f"{words.order_id}={order.txid}&{W.pair}={m.name}"
        if price:
            fields += f"&{words.limit}={m.price_text(price)}"
        if qty:
            fields += f"&{words.qty}={m.qty_text(qty)}"
        return self._request("edit", fields, messages.rest_edited)

    def cancel(self, order: LiveOrder) -> Outcome | None:
        return self._request("cancel", f"{REST.cancel_id}={order.txid}")

    def cancel_all(self) -> Outcome | None:
        return self._request("cancel_all", "", messages.rest_count)

    def batch_add(self, orders: list[LiveOrder]) -> Outcome | None:
        m = orders[0].market
        body = rest.encode_form(
            {W.pair: m.name, REST.batch: [_order_fields(o, raw=False) for o in orders]}
        )
        return self._request("batch_add", body.decode(), messages.rest_batch_added)

    def batch_cancel(self, orders: list[LiveOrder]) -> Outcome | None:
        ids = [{REST.cancel_id: o.txid} for o in orders]
        body = rest.encode_form({REST.batch_cancel: ids})
        return self._request("batch_cancel", body.decode(), messages.rest_count)


def _order_fields(order: LiveOrder, raw: bool = True) -> dict[str, str]:
    """AddOrder's fields for an order of its kind (orderkinds.py; facts 9): `price` is the
    limit, or the trigger of a stop or take-profit, whose -limit variants put the limit in
    `price2` (messages.py). `raw`: the values as they go in a form written by hand (names and
    decimals need no encoding; expiretm's '+' does), else as encode_form takes them."""
    m, kind = order.market, order.kind
    fields = {W.side: order.side, W.type: kind.type}
    if kind.trigger:
        fields[W.trigger] = m.price_text(order.trigger)
        if kind.limit:
            fields[W.trigger_limit] = m.price_text(order.price)
    elif kind.limit:
        fields[W.limit] = m.price_text(order.price)
    fields[W.qty] = m.qty_text(order.qty)
    fields[W.cl_ord_id] = order.cl_ord_id
    if REST_TIF[kind.tif]:
        fields[W.tif] = REST_TIF[kind.tif]
    if kind.tif == "gtd":  # relative: `+<seconds>` (its '+' form-encoded: the only one)
        fields[W.expire] = f"%2B{GTD_LIFETIME_S}" if raw else f"+{GTD_LIFETIME_S}"
    if order.display:
        fields[W.display] = m.qty_text(order.display)
    if order.post_only:
        fields[W.flags] = W.post_only
    return fields


def _outcome(op: str, post: Any, sent: int, latency: int, errors: list[str], result: Any,
             failure: str, answered: int, source: str) -> Outcome:  # fmt: skip
    """One call's Outcome, from its reply (errors, result) or its transport failure."""
    if failure:
        kind = TIMEOUT if failure.startswith("timeout") else ERROR
        outcome = Outcome(PROTOCOL, op, kind, latency, failure)
    elif errors:
        outcome = Outcome.from_error(PROTOCOL, op, latency, errors[0])
    else:
        outcome = Outcome(PROTOCOL, op, OK, latency)
        if post is not None:  # what the trader reads back (messages.py's reader)
            read_back(outcome, post, result)
    outcome.sent_ns, outcome.answered_ns, outcome.stamp = sent, answered, source
    return outcome


def public(host: str, method: str, tls: ssl.SSLContext | None = None, timeout: float = 10.0) -> Any:
    """The result of a public GET /0/public/<method> (ConnectionError naming the URL and the
    cause: unreachable, an HTTP status, not a Kraken reply, or the venue's error)."""
    url = f"{host.rstrip('/')}/0/public/{method}"
    context = for_scheme(urllib.parse.urlsplit(url).scheme, tls)
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as resp:
            errors, result = rest.parse_reply(resp.read())
    except urllib.error.HTTPError as exc:
        raise ConnectionError(f"GET {url}: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as unreachable:
        raise ConnectionError(f"GET {url}: {_reason(unreachable.reason)}") from None
    except OSError as broken:
        raise ConnectionError(f"GET {url}: {_reason(broken)}") from None
    except rest.RestProtocolError as foreign:
        raise ConnectionError(f"GET {url}: not a Kraken reply ({foreign})") from None
    if errors:
        raise ConnectionError(f"GET {url}: {errors[0]}")
    return result


def _reason(exc: Any) -> str:
    """An OS error as one plain phrase ("Connection refused"), a TLS one with its advice."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            f"TLS certificate does not verify: {exc.verify_message or exc.reason} ({VERIFY_ADVICE})"
        )
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or exc.__class__.__name__


def asset_pairs(host: str, tls: ssl.SSLContext | None = None) -> dict[str, dict[str, Any]]:
    """The venue's public AssetPairs, each under every name a profile may give it: the pair
    ID (`XXBTZUSD`), `altname` (`XBTUSD`), WS v1 `wsname` (`XBT/USD`) and WS v2 symbol
    (`BTC/USD`). Each entry gains `pair_id`, its key."""
    listing = public(host, "AssetPairs", tls)
    if not isinstance(listing, dict) or not all(isinstance(v, dict) for v in listing.values()):
        raise ConnectionError(f"GET {host}/0/public/AssetPairs: not a Kraken pair listing")
    by_name: dict[str, dict[str, Any]] = {}
    for key, info in listing.items():
        info = {**info, "pair_id": key}
        names = [key, info.get("altname")]
        if isinstance(info.get("wsname"), str):
            names += [info["wsname"], assets.v2_symbol(info["wsname"])]
        for name in names:
            if isinstance(name, str):
                by_name.setdefault(name, info)
    return by_name


def last_prices(host: str, ids: list[str], tls: ssl.SSLContext | None = None) -> dict[str, float]:
    """Each market's last trade price from public Ticker (`c[0]`), or the mid of its best bid
    and ask (`a`, `b`) where it has not traded; by pair ID. 0 where it has neither."""
    if not ids:
        return {}
    listing = public(host, "Ticker?pair=" + ",".join(ids), tls)
    if not isinstance(listing, dict):
        raise ConnectionError(f"GET {host}/0/public/Ticker: not a Kraken ticker")
    out = {}
    for key, tick in listing.items():
        out[key] = _ticker_price(tick)
    return out


def _ticker_price(tick: Any) -> float:
    try:
        last = float(tick["c"][0])
        if last > 0:
            return last
        ask, bid = float(tick["a"][0]), float(tick["b"][0])
    except (KeyError, IndexError, TypeError, ValueError):
        return 0.0
    return (ask + bid) / 2 if ask > 0 and bid > 0 else 0.0


def priced_markets(host: str, by_name: dict[str, dict[str, Any]], names: list[str],
                   tls: ssl.SSLContext | None = None) -> list[Market]:  # fmt: skip
    """The named markets of an asset_pairs() listing, each starting at its last price from
    the venue's Ticker; ValueError names a market Ticker gives no price."""
    ids = list(dict.fromkeys(by_name[name]["pair_id"] for name in names))
    prices = last_prices(host, ids, tls)
    markets = []
    for name in names:
        info = by_name[name]
        mid = prices.get(info["pair_id"], 0.0)
        if not mid > 0:
            raise ValueError(f"market {name!r} has no last price or quotes in Ticker")
        markets.append(Market.from_asset_pair(info, mid))
    return markets


def fetch_markets(host: str, names: list[str], tls: ssl.SSLContext | None = None) -> list[Market]:
    """The named markets (any of Kraken's names for them) from the venue's public AssetPairs,
    each starting at its last price from Ticker."""
    by_name = asset_pairs(host, tls)
    for name in names:
        if name not in by_name:
            raise ValueError(f"--pairs: the venue has no market {name!r}")
    try:
        return priced_markets(host, by_name, names, tls)
    except ValueError as exc:
        raise ValueError(f"--pairs: {exc}") from None
