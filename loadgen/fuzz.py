"""`loadgen fuzz`: a bounded mutational fuzzer of the venue's three ports (issue 13).

Each case starts from a valid request of the Kraken dialect (an AddOrder, a batch, a cancel, a
WS `add_order`, a FIX NewOrderSingle, a Logon...) and breaks it the ways an attacker or a buggy
client would: values swapped for Unicode digits, 5,000-digit numbers, deep nesting, wrong
types, fields dropped or doubled, bytes flipped, frames cut; about two thirds are signed
correctly so they get past authentication into the parsers behind it.

A case fails the run when the venue answers with an internal error or an HTTP 5xx, hangs (a
REST request ended by EOF and not answered in HANG_S; a FIX Logon neither answered nor closed),
or stops answering a valid request sent after a broken one (a WS ping, a FIX TestRequest).
After the budget, valid requests on every port must still work, the venue's log must hold no
handler failure, and its memory must not have grown past a bound. Everything else (a named
refusal, a closed connection, a FIX Reject) is the venue doing its job, and is counted by class.

Bounded: every case has a time limit, every port a time budget, and the bodies a size limit.
"""

from __future__ import annotations

import base64
import json
import random
import re
import socket
import time
import urllib.parse
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import websockets.sync.client as ws_client
from websockets.exceptions import ConnectionClosed

from loadgen.keys import FIX_SESSIONS_PER_KEY, derive_comp_ids
from loadgen.protocol import fix, rest
from loadgen.protocol.clock import fix_time

HANG_S = 3.0  # a request ended by EOF, or a Logon, gets an answer (or a close) within this
REPLY_S = 1.0  # a WS reply or FIX message is awaited this long before the liveness probe
ALIVE_EVERY = 8  # FIX: a TestRequest after this many cases
MAX_EXAMPLES = 10  # failures kept per port, with the case that caused them
TARGET = "KRAKEN-TRD"

FAILURE_CLASSES = frozenset(("internal", "server_error", "hung", "unresponsive", "unanswered"))

# Values that have broken parsers: Unicode digits ("²".isdigit() is True, int("²") raises),
# integers past int64 and past Python's 4,300-digit limit, floats past a double, NaN, empty,
# control bytes, deep brackets, huge strings.
SPECIALS: tuple[str, ...] = (
    "\u00b2", "\u0663", "\uff11", "9" * 20, "9" * 50, "9" * 5000, "-1", "0", "-0", "1e400",
    "-1e400", "NaN", "inf", "", " ", "\x00", "\r\n", "0x10", "1_000", "+5", "１２", "%",
    "%C2%B2", "[", "]", "[x]" * 1100, "a" * 70_000, "true", "null", "{}", "\ud7ff",
)  # fmt: skip


@dataclass
class PortTally:
    cases: int = 0
    classes: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    def count(self, cls: str, case: Any) -> None:
        self.cases += 1
        self.classes[cls] += 1
        if cls in FAILURE_CLASSES and len(self.failures) < MAX_EXAMPLES:
            self.failures.append(f"{cls}: {str(case)[:300]}")

    @property
    def failed(self) -> int:
        return sum(n for cls, n in self.classes.items() if cls in FAILURE_CLASSES)


@dataclass
class Key:
    api_key: str
    secret: str  # base64

    @property
    def raw(self) -> bytes:
        return base64.b64decode(self.secret)


class Nonces:
    """Increasing nonces, ms-scaled so FIX's 'within 5 s of the server clock' holds."""

    def __init__(self) -> None:
        self.last = 0

    def next(self) -> int:
        self.last = max(self.last + 1, time.time_ns() // 1000)
        return self.last

    def ms(self) -> int:
        """A FIX Logon nonce: ms since the epoch, above every one before."""
        self.last = max(self.last + 1000, time.time_ns() // 1000)
        return self.last // 1000


# ---- mutation --------------------------------------------------------------------------------


class Mutator:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def special(self) -> str:
        return self.rng.choice(SPECIALS)

    def json_value(self) -> Any:
        rng = self.rng
        return rng.choice([
            self.special(), 10**30, -(2**70), 1.5, True, None, [], {}, [1, [2, [3]]],
            {"a": {"b": 1}}, "x" * 300, f"{DEEP}{rng.randint(10, 1100)}", 2**63, -1,
        ])  # fmt: skip

    def fields(self, fields: dict[str, Any], json_body: bool) -> dict[str, Any]:
        """One to three changes to a dict of request fields."""
        out = dict(fields)
        rng = self.rng
        for _ in range(rng.randint(1, 3)):
            roll = rng.random()
            keys = list(out)
            if roll < 0.4 and keys:
                out[rng.choice(keys)] = self.json_value() if json_body else self.special()
            elif roll < 0.55 and keys:
                out.pop(rng.choice(keys))
            elif roll < 0.7:
                out[
                    rng.choice(("orders", "a", "close", "cl_ord_ids"))
                    + "".join(f"[{self.special()[:8]}]" for _ in range(rng.randint(1, 5)))
                ] = "1"
            elif roll < 0.8:
                out["a" + "[x]" * rng.choice((5, 50, 1100))] = "1"
            elif roll < 0.9:
                for i in range(rng.choice((100, 1100, 3000))):
                    out[f"f{i}"] = "1"
            else:
                out[self.special()[:20] or "k"] = self.special()
        return out

    def bytes_(self, data: bytes) -> bytes:
        """Byte-level damage: flips, cuts, insertions, duplications."""
        rng = self.rng
        buf = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            if not buf:
                break
            at = rng.randrange(len(buf))
            roll = rng.random()
            if roll < 0.3:
                buf[at] = rng.randrange(256)
            elif roll < 0.5:
                del buf[at : at + rng.randint(1, 16)]
            elif roll < 0.7:
                buf[at:at] = rng.choice((b"\r\n", b"\x01", b"=", b"\x00", b"\xff\xfe", b"%", b"["))
            elif roll < 0.85:
                buf[at:at] = buf[at : at + rng.randint(1, 64)]
            else:
                del buf[at:]
        return bytes(buf)


DEEP = "\u2063deep"  # a placeholder dumps() writes as a list nested that deep
_DEEP_TEXT = re.compile(r'"\\u2063deep(\d+)"')


def dumps(value: Any) -> str:
    """JSON text, placeholders turned into deep nesting (json.dumps would recurse)."""
    text = json.dumps(value, default=str)
    return _DEEP_TEXT.sub(lambda g: "[" * int(g.group(1)) + "1" + "]" * int(g.group(1)), text)


# ---- REST ----------------------------------------------------------------------------------


def _order(rng: random.Random) -> dict[str, Any]:
    return {"pair": rng.choice(("XBTUSD", "ETHUSD", "NOPE")), "type": rng.choice(("buy", "sell")),
            "ordertype": "limit", "price": f"{rng.uniform(1000, 90000):.1f}", "volume": "0.01"}  # fmt: skip


REST_TEMPLATES: dict[str, Callable[[random.Random], dict[str, Any]]] = {
    "AddOrder": _order,
    "AddOrderBatch": lambda rng: {"pair": "XBTUSD", "orders": [_order(rng), _order(rng)]},
    "CancelOrder": lambda rng: {"txid": "OABCDE-FGHIJ-KLMNOP"},
    "AmendOrder": lambda rng: {"txid": "OABCDE-FGHIJ-KLMNOP", "order_qty": "0.02"},
    "EditOrder": lambda rng: {"txid": "OABCDE-FGHIJ-KLMNOP", "pair": "XBTUSD", "volume": "0.02"},
    "CancelAll": lambda rng: {},
    "CancelAllOrdersAfter": lambda rng: {"timeout": "60"},
    "CancelOrderBatch": lambda rng: {"orders": [{"txid": "OABCDE-FGHIJ-KLMNOP"}]},
    "OpenOrders": lambda rng: {},
}


def _form(fields: dict[str, Any]) -> bytes:
    """A form body as a hostile client writes one: unlike `rest.encode_form`, a plain key is
    escaped (a mutated key may hold '&' or '='), and nested keys keep literal brackets."""
    parts = []
    for key, value in fields.items():
        if isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, dict):
                    parts += [
                        f"{key}[{i}][{k}]={urllib.parse.quote(str(v))}" for k, v in item.items()
                    ]
                else:
                    parts.append(f"{key}[{i}]={urllib.parse.quote(str(item))}")
        else:
            parts.append(f"{urllib.parse.quote(key, safe='[]')}={urllib.parse.quote(str(value))}")
    return "&".join(parts).encode()


def rest_case(m: Mutator, key: Key, nonces: Nonces) -> bytes:
    """One whole HTTP request (sometimes two, pipelined), damaged somewhere."""
    rng = m.rng
    method = rng.choice(list(REST_TEMPLATES))
    as_json = rng.random() < 0.3
    nonce = str(nonces.next())
    fields = {"nonce": nonce, **m.fields(REST_TEMPLATES[method](rng), as_json)}
    if as_json:
        body = dumps(fields).encode()
        ctype = "application/json"
    else:
        body = _form(fields)
        ctype = rng.choice(("application/x-www-form-urlencoded",) * 4 + ("text/plain", ""))
    path = f"{rest.PRIVATE_PREFIX}{method}"
    roll = rng.random()
    api_key, sign = key.api_key, rest.sign(key.raw, path.encode(), nonce.encode(), body).decode()
    if roll < 0.1:
        sign = base64.b64encode(rng.randbytes(64)).decode()
    elif roll < 0.2:
        api_key = "nokey" + m.special()[:10]
    length = len(body) if rng.random() < 0.9 else rng.choice((0, len(body) // 2, 10**9))
    request = _post(path, api_key, sign, ctype, length, body)
    if rng.random() < 0.15:
        request = m.bytes_(request)
    if rng.random() < 0.1:
        request += b"GET /0/public/Time HTTP/1.1\r\nHost: venue\r\nConnection: close\r\n\r\n"
    return request


def _post(path: str, api_key: str, sign: str, ctype: str, length: int, body: bytes) -> bytes:
    head = (f"POST {path} HTTP/1.1\r\nHost: venue\r\nAPI-Key: {api_key}\r\nAPI-Sign: {sign}\r\n"
            f"Content-Type: {ctype}\r\nContent-Length: {length}\r\n\r\n")  # fmt: skip
    return head.encode("utf-8", "surrogatepass") + body


def signed_post(key: Key, method: str, fields: dict[str, Any], nonces: Nonces) -> bytes:
    """A valid private call: a form body with a fresh nonce, signed."""
    nonce = str(nonces.next())
    body = _form({"nonce": nonce, **fields})
    path = f"{rest.PRIVATE_PREFIX}{method}"
    sign = rest.sign(key.raw, path.encode(), nonce.encode(), body).decode()
    return _post(path, key.api_key, sign, rest.FORM, len(body), body)


_STATUS = re.compile(rb"HTTP/1\.1 (\d{3})")


def rest_send(address: tuple[str, int], request: bytes) -> bytes | None:
    """Send, end our side (EOF), read to the venue's close; None when it hung."""
    with socket.create_connection(address, timeout=HANG_S) as sock:
        try:
            sock.sendall(request)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the venue closed on us mid-send (a 413, a 400): read what it said
        chunks = []
        deadline = time.monotonic() + HANG_S
        while time.monotonic() < deadline:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                return None
            except OSError:
                return b"".join(chunks)  # reset after its last words (or before any)
            if not data:
                return b"".join(chunks)
            chunks.append(data)
        return None


def rest_class(reply: bytes | None) -> str:
    if reply is None:
        return "hung"
    if not reply:
        return "closed"
    status = _STATUS.match(reply)
    if status is None:
        return "not_http"
    code = int(status.group(1))
    if code >= 500:
        return "server_error"
    if b"Internal error" in reply:
        return "internal"
    if code != 200:
        return f"http_{code}"
    errors = re.search(rb'"error":\["([^":]*:[^":]*)', reply)
    return errors.group(1).decode(errors="replace") if errors else "ok"


def fuzz_rest(address: tuple[str, int], keys: list[Key], m: Mutator, until: float) -> PortTally:
    tally, nonces = PortTally(), Nonces()
    while time.monotonic() < until:
        request = rest_case(m, m.rng.choice(keys), nonces)
        tally.count(rest_class(rest_send(address, request)), request[:200])
    return tally


# ---- WebSocket v2 ----------------------------------------------------------------------------


def _ws_order(rng: random.Random) -> dict[str, Any]:
    return {"order_type": "limit", "side": rng.choice(("buy", "sell")), "order_qty": 0.01,
            "symbol": rng.choice(("BTC/USD", "ETH/USD", "NO/PE")),
            "limit_price": round(rng.uniform(1000, 90000), 1)}  # fmt: skip


WS_TEMPLATES: dict[str, Callable[[random.Random], dict[str, Any]]] = {
    "add_order": _ws_order,
    "batch_add": lambda rng: {"symbol": "BTC/USD", "orders": [
        {k: v for k, v in _ws_order(rng).items() if k != "symbol"} for _ in range(2)]},
    "cancel_order": lambda rng: {"order_id": ["OABCDE-FGHIJ-KLMNOP"]},
    "amend_order": lambda rng: {"order_id": "OABCDE-FGHIJ-KLMNOP", "order_qty": 0.02},
    "edit_order": lambda rng: {"order_id": "OABCDE-FGHIJ-KLMNOP", "symbol": "BTC/USD"},
    "batch_cancel": lambda rng: {"orders": ["OABCDE-FGHIJ-KLMNOP", "1"]},
    "cancel_all": lambda rng: {},
    "cancel_all_orders_after": lambda rng: {"timeout": 60},
    "subscribe": lambda rng: {"channel": "executions"},
}  # fmt: skip


def ws_case(m: Mutator, token: str, req_id: int) -> tuple[str | bytes, int | None]:
    """The frame, and the req_id its answer carries (None: one the venue could not read)."""
    rng = m.rng
    method = rng.choice(list(WS_TEMPLATES))
    params = {**WS_TEMPLATES[method](rng), "token": token}
    params = m.fields(params, json_body=True)
    message: dict[str, Any] = {"method": method, "params": params, "req_id": req_id}
    expected: int | None = req_id
    roll = rng.random()
    if roll < 0.1:
        message["req_id"] = m.json_value()
        expected = None
    elif roll < 0.15:
        message["method"] = m.json_value()
    text = dumps(message)
    if rng.random() < 0.15:
        return m.bytes_(text.encode()).decode("utf-8", "replace"), None
    if rng.random() < 0.03:
        return m.bytes_(text.encode()), None  # a binary frame
    return text, expected


def ws_token(rest_address: tuple[str, int], key: Key, nonces: Nonces) -> str:
    reply = rest_send(rest_address, signed_post(key, "GetWebSocketsToken", {}, nonces)) or b""
    found = re.search(rb'"token":"([^"]+)"', reply)
    if not found:
        raise RuntimeError(f"no WebSocket token from the venue: {reply[-300:]!r}")
    return found.group(1).decode()


def _ws_reply(conn: Any, req_id: Any, timeout: float) -> dict[str, Any] | None:
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            raw = conn.recv(timeout=left)
        except TimeoutError:
            return None
        try:
            message = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(message, dict) or not (
            "success" in message or message.get("method") == "pong"
        ):
            continue  # a channel message (status, executions), not an answer
        # ours, or an error answering a frame too broken to carry a readable req_id
        if req_id is None or message.get("req_id") in (req_id, None):
            return message
    return None


def ws_class(reply: dict[str, Any]) -> str:
    error = str(reply.get("error") or "")
    if "Internal error" in error:
        return "internal"
    if reply.get("success") is True or not error:
        return "ok"
    return ":".join(error.split(":")[:2])


def fuzz_ws(
    url: str, rest_address: tuple[str, int], keys: list[Key], m: Mutator, until: float
) -> PortTally:
    tally = PortTally()
    token = ws_token(rest_address, keys[0], Nonces())  # one for all: valid 15 min, reusable
    req_ids = iter(range(1, 10**9))
    while time.monotonic() < until:
        with ws_client.connect(url, open_timeout=HANG_S, max_size=2**22) as conn:
            _ws_cases(conn, token, req_ids, m, tally, until)
    return tally


def _ws_cases(conn: Any, token: str, req_ids: Iterator[int], m: Mutator, tally: PortTally,
              until: float) -> None:  # fmt: skip
    """Cases on one connection until the venue closes it or the time is up."""
    while time.monotonic() < until:
        case, expected = ws_case(m, token, next(req_ids))
        try:
            conn.send(case)
            reply = _ws_reply(conn, expected, REPLY_S)
            if reply is not None:
                tally.count(ws_class(reply), case)
                continue
            ping = next(req_ids)  # no answer (to a req_id it could not read): still there?
            conn.send(json.dumps({"method": "ping", "req_id": ping}))
            tally.count("no_reply" if _ws_reply(conn, ping, HANG_S) else "unresponsive", case)
        except _CLOSED as exc:
            tally.count("closed", f"{case!s:.200} ({exc})")
            return


_CLOSED = (ConnectionClosed, OSError)  # the venue closed the WS connection on a case


# ---- FIX 4.4 ---------------------------------------------------------------------------------


class FixPeer:
    """A raw FIX connection: our own sequence numbers, nothing answered on our side."""

    def __init__(self, address: tuple[str, int], key: Key, nonces: Nonces, sender: str) -> None:
        self.sock = socket.create_connection(address, timeout=HANG_S)
        self.key, self.sender, self.nonces = key, sender, nonces
        self.seq = 1
        self.reader = fix.FixReader()
        self.closed = False
        self.history: deque[str] = deque(maxlen=6)  # what went each way, for a failure's story

    def frame(self, msg_type: str, body: list[tuple[int, Any]], seq: int | None = None) -> bytes:
        seq = self.seq if seq is None else seq
        self.seq += 1
        head = fix.header(self.sender, TARGET, seq, fix_time(time.time()))
        return fix.encode(msg_type, head, "".join(f"{t}={v}\x01" for t, v in body))

    def logon_body(self) -> list[tuple[int, Any]]:
        nonce = str(self.nonces.ms())
        password = fix.logon_password(self.key.raw, self.seq, self.sender, TARGET,
                                      self.key.api_key, nonce)  # fmt: skip
        return [(98, 0), (108, 30), (141, "Y"), (553, self.key.api_key), (554, password),
                (5025, nonce)]  # fmt: skip

    def send(self, data: bytes) -> None:
        self.history.append(f">{data[:160]!r}")
        try:
            self.sock.sendall(data)
        except OSError:
            self.closed = True

    def read(self, timeout: float, enough: Callable[[dict[int, str]], bool] | None = None
             ) -> list[dict[int, str]]:  # fmt: skip
        """Messages that arrive within `timeout`; early at a close or at one that is `enough`."""
        out: list[dict[int, str]] = []
        deadline = time.monotonic() + timeout
        while not self.closed and (left := deadline - time.monotonic()) > 0:
            if enough is not None and any(enough(message) for message in out):
                break
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                break
            except OSError:
                self.closed = True
                break
            if not data:
                self.closed = True
                break
            for item in self.reader.feed(data):
                if isinstance(item, str):
                    out.append(fix.decode(item))
                    self.history.append(f"<{out[-1].get(35)} {out[-1].get(58, '')[:60]}")
        return out

    def close(self) -> None:
        self.sock.close()


def _fix_order(rng: random.Random) -> list[tuple[int, Any]]:
    return [(11, f"c{rng.randrange(10**9)}"), (54, rng.choice("12")), (55, "XBT/USD"),
            (38, "0.01"), (40, "2"), (44, f"{rng.uniform(1000, 90000):.1f}"), (59, "1"),
            (60, fix_time(time.time()))]  # fmt: skip


FIX_TEMPLATES: dict[str, Callable[[random.Random], list[tuple[int, Any]]]] = {
    "D": _fix_order,
    "F": lambda rng: [(11, "x1"), (41, "c1"), (37, "OABCDE-FGHIJ-KLMNOP"), (54, "1"),
                      (55, "XBT/USD"), (60, fix_time(time.time()))],
    "G": lambda rng: [(11, "x2"), (41, "c1"), (54, "1"), (55, "XBT/USD"), (38, "0.02"),
                      (40, "2"), (44, "50000"), (60, fix_time(time.time()))],
    "q": lambda rng: [(11, "m1"), (530, "7")],
    "2": lambda rng: [(7, "1"), (16, "0")],
    "4": lambda rng: [(123, "Y"), (36, "5")],
    "1": lambda rng: [(112, "t")],
    "Z": lambda rng: [(1, "x")],
}  # fmt: skip


def fix_fields(m: Mutator, body: list[tuple[int, Any]]) -> list[tuple[int, Any]]:
    rng = m.rng
    out = list(body)
    for _ in range(rng.randint(1, 3)):
        roll = rng.random()
        if roll < 0.45 and out:
            i = rng.randrange(len(out))
            out[i] = (out[i][0], m.special().replace("\x01", "")[:5000])
        elif roll < 0.65 and out:
            out.pop(rng.randrange(len(out)))
        elif roll < 0.8 and out:
            out.append(rng.choice(out))
        else:
            out.append(
                (rng.choice((1, 7, 16, 34, 36, 108, 5025, 9999, 123456789)), m.special()[:50])
            )
    return out


def _fix_class(messages: list[dict[int, str]], closed: bool) -> str:
    for message in messages:
        text = message.get(58, "").lower()
        if "internal" in text:
            return "internal"
    kinds = sorted({message.get(35, "?") for message in messages} - {"0", "1"})
    if kinds:
        return "fix_" + "+".join(kinds)
    return "closed" if closed else "silent"


def _fix_session(address: tuple[str, int], keys: list[Key], m: Mutator, nonces: Nonces,
                 n: int) -> FixPeer | None:  # fmt: skip
    key = m.rng.choice(keys)  # sessions take slots 0..6 in turn; broken logons take the last
    peer = FixPeer(
        address, key, nonces, derive_comp_ids(key.api_key)[n % (FIX_SESSIONS_PER_KEY - 1)]
    )
    peer.send(peer.frame("A", peer.logon_body()))
    if not any(msg.get(35) == "A" for msg in peer.read(HANG_S, _logon_answer)):
        peer.close()
        return None
    return peer


def _logon_answer(message: dict[int, str]) -> bool:
    return message.get(35) in ("A", "5", "3")


def fuzz_fix(address: tuple[str, int], keys: list[Key], m: Mutator, until: float) -> PortTally:
    tally, nonces = PortTally(), Nonces()
    peer: FixPeer | None = None
    sessions = 0
    while time.monotonic() < until:
        rng = m.rng
        if rng.random() < 0.08:
            _fix_logon_case(address, keys, m, nonces, tally, sessions)
            sessions += 1
            continue
        if peer is None or peer.closed:
            if peer is not None:
                peer.close()
            sessions += 1
            peer = _fix_session(address, keys, m, nonces, sessions)
            if peer is None:
                tally.count("unanswered", "a valid Logon got no Logon back")
                continue
        msg_type = rng.choice(list(FIX_TEMPLATES))
        body = fix_fields(m, FIX_TEMPLATES[msg_type](rng))
        seq = None if rng.random() < 0.9 else rng.choice((0, 1, 10**6, peer.seq - 1))
        data = peer.frame(msg_type, body, seq)
        damaged = rng.random() < 0.15
        if damaged:
            data = m.bytes_(data)
        peer.send(data)
        answers = peer.read(0.05)
        tally.count(_fix_class(answers, peer.closed), data[:200])
        if damaged or seq is not None or any(a.get(35) == "2" for a in answers):
            # Our numbers are off (a gap the venue wants filled) or the frame was cut (the
            # venue reads on for its BodyLength): that session is spent, as the FIX rules say.
            # The next case logs on anew, which shows the venue is there.
            peer.closed = True
        elif tally.cases % ALIVE_EVERY == 0:
            _fix_alive(peer, tally, data)
    if peer is not None:
        peer.close()
    return tally


def _fix_alive(peer: FixPeer, tally: PortTally, after: bytes) -> None:
    """A TestRequest: the answer is a Heartbeat naming it, or the session ends with a reason."""
    if peer.closed:
        return
    test_id = f"alive{peer.seq}"
    peer.send(peer.frame("1", [(112, test_id)]))
    deadline = time.monotonic() + HANG_S
    while time.monotonic() < deadline and not peer.closed:
        for message in peer.read(0.2, lambda message: message.get(112) == test_id):
            if message.get(112) == test_id or message.get(35) == "5":
                return
            if message.get(35) == "2":  # a resend request: our numbers are off; start anew
                peer.closed = True
                return
    if not peer.closed:
        tally.count("unresponsive", f"TestRequest {test_id} unanswered: {' '.join(peer.history)}")


def _fix_logon_case(address: tuple[str, int], keys: list[Key], m: Mutator, nonces: Nonces,
                    tally: PortTally, n: int) -> None:  # fmt: skip
    """A broken Logon on a fresh connection: answered (Logout, Reject) or closed, never ignored."""
    key = m.rng.choice(keys)
    peer = FixPeer(address, key, nonces, derive_comp_ids(key.api_key)[-1])
    data = peer.frame("A", fix_fields(m, peer.logon_body()))
    if m.rng.random() < 0.3:
        data = m.bytes_(data)
    peer.send(data)
    try:  # a whole frame (good or garbled) is answerable; so is a stream that is no FIX
        framed = bool(fix.FixReader().feed(data))
    except fix.FixFramingError:
        framed = True
    if not framed:  # cut short: the venue waits for the rest; our EOF must end it
        peer.sock.shutdown(socket.SHUT_WR)
    messages = peer.read(HANG_S, lambda message: True)
    cls = _fix_class(messages, peer.closed)
    if cls == "silent":
        cls = "unanswered" if framed else "hung"
    tally.count(cls if cls != "fix_A" else "logon_accepted", data[:200])
    peer.close()


# ---- the whole run ------------------------------------------------------------------------


def host_port(url: str) -> tuple[str, int]:
    parts = urllib.parse.urlsplit(url)
    return parts.hostname or "127.0.0.1", int(parts.port or 80)


def fuzz_all(
    endpoints: dict[str, str], keys: list[Key], seconds: float, seed: int, ports: tuple[str, ...]
) -> dict[str, PortTally]:
    """`seconds` of cases on each port in turn, reproducible from `seed`."""
    m = Mutator(random.Random(seed))
    rest_address = host_port(endpoints["rest"])
    out: dict[str, PortTally] = {}
    for port in ports:
        until = time.monotonic() + seconds
        # keys[0] is kept for the checks after; REST fuzzing spends its keys' call counters,
        # so the WS tokens come from keys of their own
        if port == "rest":
            out[port] = fuzz_rest(rest_address, keys[4:], m, until)
        elif port == "ws":
            out[port] = fuzz_ws(endpoints["ws"], rest_address, keys[1:4], m, until)
        else:
            out[port] = fuzz_fix(host_port(endpoints["fix"]), keys[4:], m, until)
    return out


def valid_requests_work(endpoints: dict[str, str], key: Key) -> list[str]:
    """After the fuzzing: a valid AddOrder on REST, a WS ping, a FIX Logon; what failed."""
    problems = []
    nonces = Nonces()
    order = {**_order(random.Random(0)), "pair": "XBTUSD"}
    request = signed_post(key, "AddOrder", order, nonces)
    if rest_class(rest_send(host_port(endpoints["rest"]), request)) != "ok":
        problems.append("REST: a valid AddOrder was not accepted")
    try:
        with ws_client.connect(endpoints["ws"], open_timeout=HANG_S) as conn:
            conn.send(json.dumps({"method": "ping", "req_id": 1}))
            if _ws_reply(conn, 1, HANG_S) is None:
                problems.append("WS: a ping got no pong")
    except (OSError, TimeoutError) as exc:
        problems.append(f"WS: {exc}")
    peer = _fix_session(host_port(endpoints["fix"]), [key], Mutator(random.Random(0)), nonces, 0)
    if peer is None:
        problems.append("FIX: a valid Logon got no Logon back")
    else:
        peer.close()
    return problems


def table(tallies: dict[str, PortTally]) -> Iterator[str]:
    for port, tally in tallies.items():
        top = ", ".join(f"{cls} {n}" for cls, n in tally.classes.most_common(12))
        yield f"{port:4} {tally.cases:6d} cases, {tally.failed} failed: {top}"
        for example in tally.failures:
            yield f"       {example}"


# ---- `loadgen fuzz` ---------------------------------------------------------------------------

RSS_BOUND_MB = 64.0  # the venue may grow this much over a fuzz run (its books, its counters)
FAILED_LINE = re.compile(r"handler failed: ")


@dataclass
class Result:
    tallies: dict[str, PortTally]
    problems: list[str]
    rss_mb: tuple[float, float]
    seconds: float

    @property
    def ok(self) -> bool:
        return not self.problems and not any(t.failed for t in self.tallies.values())


def run(seconds: float, seed: int, ports: tuple[str, ...], log_dir: Any) -> Result:
    """An embedded venue in a process of its own, fuzzed for `seconds` per port."""
    import psutil

    from loadgen.venue.process import VenueProcess

    # no FIX rollover (22:00 UTC): its refused Logons would read as the venue not answering
    venue = VenueProcess("--keys", "16", "--fix-rollover", "off", log_dir=log_dir)
    started = time.monotonic()
    try:
        proc = psutil.Process(venue.pid)
        before = proc.memory_info().rss / 2**20
        keys = [Key(k["api_key"], k["secret"]) for k in venue.keys]
        tallies = fuzz_all(venue.endpoints, keys, seconds, seed, ports)
        problems = valid_requests_work(venue.endpoints, keys[0])
        after = proc.memory_info().rss / 2**20
        if venue.proc.poll() is not None:
            problems.append(f"the venue died (exit {venue.proc.returncode})")
    finally:
        words = venue.stop()
    failed = [line for line in venue.log_path.read_text(errors="replace").splitlines()
              if FAILED_LINE.search(line)]  # fmt: skip
    problems += [f"venue log: {line[:300]}" for line in failed[:MAX_EXAMPLES]]
    # the venue logs nothing but its failures: any other line (asyncio's "Fatal error" for an
    # exception outside the handlers) is one the fuzzer's classes may have missed
    problems += [w for w in words if "handler failure" in w or "other log lines" in w]
    if after - before > RSS_BOUND_MB:
        problems.append(f"venue RSS grew {after - before:.1f} MB (bound {RSS_BOUND_MB:g})")
    return Result(tallies, problems, (before, after), time.monotonic() - started)


def main(args: Any) -> int:
    import tempfile
    from pathlib import Path

    ports = tuple(p.strip() for p in args.ports.split(",") if p.strip())
    unknown = set(ports) - {"rest", "ws", "fix"}
    if unknown or not ports:
        print(f"loadgen fuzz: --ports {args.ports}: name rest, ws and/or fix", flush=True)
        return 2
    with tempfile.TemporaryDirectory(prefix="loadgen-fuzz-") as tmp:
        log_dir = Path(args.log_dir) if args.log_dir else Path(tmp)
        log_dir.mkdir(parents=True, exist_ok=True)
        result = run(args.seconds, args.seed, ports, log_dir)
        for line in table(result.tallies):
            print(line)
        print(f"venue RSS {result.rss_mb[0]:.1f} MB before, {result.rss_mb[1]:.1f} MB after "
              f"({result.rss_mb[1] - result.rss_mb[0]:+.1f} MB); {result.seconds:.0f} s")  # fmt: skip
        for problem in result.problems:
            print(f"problem: {problem}")
        print("loadgen fuzz: " + ("no failure" if result.ok else "FAILED (see above)"), flush=True)
    return 0 if result.ok else 1
