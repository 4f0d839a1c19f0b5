"""`loadgen probe`: measure a rate limiter nobody documented, from the outside.

Given a target and a way to recognise a refusal, the probe finds the limiter's parameters as a
token bucket (capacity B, refill R per second), which is the same thing as a decaying counter
(threshold B x c, decay R x c per second, for a request of cost c):

1. burst: from idle, send as fast as the cap allows until the first refusal. The accepted count
   is B plus what refilled meanwhile (R x the burst's length), so B = accepted - R x length.
2. sustained: keep sending at the cap; the limiter now passes exactly its refill, so R is the
   accepted requests over the time between the first and last of them.
3. recovery: pause (half of B/R, within bounds), then burst again: R x pause should come back.
4. scope: exhaust the limiter, then send once on a new connection, once with another key and
   once on another pair (venue protocols): accepted means that dimension has its own limit.

Every phase is bounded: no request faster than --max-rate, no more than --max-requests, no
longer than --max-time; the probe stops and reports what it has when a bound is hit.
Targets: an HTTP endpoint answering a status (429 by default) or a body containing a string, or
the venue's own protocols (rest, ws, fix) through loadgen's traders, whose rate-limit refusals
are recognised by their error strings. Orders the probe places are far from the market and
cancelled at the end.
"""

from __future__ import annotations

import http.client
import json
import math
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadgen.safety import host_problem

ACCEPTED, REFUSED, FAILED = "accepted", "refused", "failed"


class ProbeError(Exception):
    """The probe cannot go on; the message says why."""


@dataclass
class Bounds:
    max_rate: float  # requests/s, never exceeded
    max_requests: int
    max_time: float  # seconds for the whole probe

    def __post_init__(self) -> None:
        if not 0 < self.max_rate <= 100_000:
            raise ProbeError(f"--max-rate must be in (0, 100000] requests/s, got {self.max_rate:g}")
        if self.max_requests < 10:
            raise ProbeError(f"--max-requests must be at least 10, got {self.max_requests}")
        if self.max_time <= 0:
            raise ProbeError(f"--max-time must be above 0 s, got {self.max_time:g}")


class OutOfBudget(Exception):
    pass


@dataclass
class Sender:
    """Paces and counts every request the probe sends: the bounds are enforced here."""

    send: Callable[[int, int, int], str]  # (key, connection, pair) -> ACCEPTED/REFUSED/FAILED
    bounds: Bounds
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    sent: int = 0
    failed: int = 0
    started: float = field(default=0.0)
    _next: float = 0.0

    def __post_init__(self) -> None:
        self.started = self.clock()

    def __call__(self, key: int = 0, conn: int = 0, pair: int = 0) -> tuple[str, float]:
        """One request; (result, its send time)."""
        now = self.clock()
        if self.sent >= self.bounds.max_requests:
            raise OutOfBudget(f"--max-requests {self.bounds.max_requests} reached")
        if now - self.started > self.bounds.max_time:
            raise OutOfBudget(f"--max-time {self.bounds.max_time:g} s reached")
        if self._next > now:
            self.sleep(self._next - now)
            now = self.clock()
        self._next = max(self._next, now - 1.0 / self.bounds.max_rate) + 1.0 / self.bounds.max_rate
        self.sent += 1
        result = self.send(key, conn, pair)
        if result == FAILED:
            self.failed += 1
            if self.failed > max(10, self.sent // 10):
                raise ProbeError(f"{self.failed} of {self.sent} requests failed (not a refusal)")
        return result, now

    def idle(self, seconds: float) -> None:
        if self.clock() + seconds - self.started > self.bounds.max_time:
            raise OutOfBudget(f"--max-time {self.bounds.max_time:g} s reached")
        self.sleep(seconds)
        self._next = 0.0


def until_refused(send: Sender, **where: int) -> tuple[int, float, float]:
    """Send until the first refusal: (accepted, first send time, last accepted send time)."""
    accepted, first, last = 0, None, None
    while True:
        result, t = send(**where)
        first = t if first is None else first
        if result == REFUSED:
            return accepted, first, last if last is not None else first
        if result == ACCEPTED:
            accepted, last = accepted + 1, t


def measure(send: Sender, *, pairs: int = 1, min_accepts: int = 20) -> dict[str, Any]:
    """The four phases; what was found, with its uncertainty."""
    out: dict[str, Any] = {"complete": False}
    try:
        n, t0, t1 = until_refused(send)
        if n == 0:
            raise ProbeError("the very first request was refused: the limiter is not idle")
        out["burst_raw"] = {"accepted": n, "seconds": t1 - t0}
        # sustained: the limiter passes its refill; keep going until enough accepts to time
        times: list[float] = []
        start = send.clock()
        while len(times) < min_accepts and send.clock() - start < send.bounds.max_time / 3:
            result, t = send()
            if result == ACCEPTED:
                times.append(t)
        if len(times) < 3:
            raise ProbeError(
                f"only {len(times)} requests were accepted in {send.clock() - start:.0f} s after "
                "the burst: the limiter refills too slowly to measure within --max-time"
            )
        span = times[-1] - times[0]
        rate = (len(times) - 1) / span
        quantum = 1.0 / send.bounds.max_rate  # a request's send time is known to a slot
        out["rate"] = {
            "value": rate,
            "uncertainty": rate * (2 * quantum / span + 1 / (len(times) - 1)),
            "accepted": len(times),
            "seconds": span,
        }
        burst = n - rate * (t1 - t0)
        out["burst"] = {"value": burst, "uncertainty": 1.0 + out["rate"]["uncertainty"] * (t1 - t0)}
        # recovery: half a refill, bounded
        full = burst / rate
        pause = min(max(full / 2, 10.0 / rate), full, 10.0)
        until_refused(send)  # empty again
        send.idle(pause)
        m, s0, s1 = until_refused(send)
        back = m - rate * (s1 - s0)
        out["recovery"] = {
            "pause_s": pause,
            "accepted": m,
            "rate": back / pause,
            "full_recovery_s": full,
            "model_expects": min(burst, rate * pause),
        }
        out["scope"] = scope(send, rate, pairs)
        out["complete"] = True
    except OutOfBudget as exc:
        out["stopped"] = str(exc)
    out["requests"] = send.sent
    out["failed"] = send.failed
    out["elapsed_s"] = send.clock() - send.started
    return out


def scope(send: Sender, rate: float, pairs: int) -> dict[str, Any]:
    """Which dimensions have their own limit: each tried 3 times on an exhausted limiter."""
    dims = {"connection": {"conn": 1}, "key": {"key": 1, "conn": 2}}
    if pairs > 1:
        dims["pair"] = {"pair": 1}
    found: dict[str, Any] = {}
    for name, where in dims.items():
        votes = 0
        for _ in range(3):
            until_refused(send)
            result, _ = send(**where)
            votes += result == ACCEPTED
            if result == ACCEPTED:  # that dimension's own limiter took one: give it back
                send.idle(min(2.0, 1.5 / rate))
        found[f"per_{name}"] = votes >= 2
    if found.get("per_connection"):
        words = "per connection"
    elif found.get("per_key"):
        words = "per key" + (" and pair" if found.get("per_pair") else "")
    else:
        words = "shared across keys and connections (per client address, or global)"
    found["summary"] = words
    return found


def verdicts(found: dict[str, Any], expect_burst: float | None, expect_rate: float | None,
             tolerance: float) -> list[dict[str, Any]]:  # fmt: skip
    out = []
    for name, expected in (("burst", expect_burst), ("rate", expect_rate)):
        if expected is None:
            continue
        got = found.get(name, {}).get("value")
        ok = got is not None and abs(got - expected) <= tolerance * expected
        out.append({"name": name, "expected": expected, "measured": got, "ok": ok})
    return out


def table(found: dict[str, Any], checks: list[dict[str, Any]]) -> list[str]:
    lines = []
    b, r = found.get("burst"), found.get("rate")
    if b:
        lines.append(
            f"  burst from idle   {b['value']:10.1f} requests  (+/- {b['uncertainty']:.1f})"
        )
    if r:
        lines.append(
            f"  sustained rate    {r['value']:10.2f} /s        (+/- {r['uncertainty']:.2f})"
        )
    rec = found.get("recovery")
    if rec:
        lines.append(
            f"  recovery          {rec['rate']:10.2f} /s        after a {rec['pause_s']:.1f} s "
            f"pause; full in {rec['full_recovery_s']:.1f} s"
        )
    sc = found.get("scope")
    if sc:
        lines.append(f"  scope             {sc['summary']}")
    if b and r:
        lines.append(
            f"  model             token bucket of {b['value']:.0f} refilled at {r['value']:.2f}/s "
            f"(a counter with threshold {b['value']:.0f}c decaying {r['value']:.2f}c/s, for a "
            "request of cost c)"
        )
    for c in checks:
        got = "none" if c["measured"] is None else f"{c['measured']:.2f}"
        lines.append(
            f"  expected {c['name']:<8} {c['expected']:10.2f}  measured {got}: "
            f"{'within' if c['ok'] else 'OUTSIDE'} tolerance"
        )
    lines.append(
        f"  {found['requests']} requests ({found['failed']} failed) in {found['elapsed_s']:.1f} s"
        + ("" if found["complete"] else f"; stopped early: {found.get('stopped', '')}")
    )
    return lines


# ---- targets -------------------------------------------------------------------------------------


class HttpTarget:
    """Any HTTP endpoint: a refusal is the given status, or a body containing a string."""

    def __init__(self, url: str, keys: list[str], key_header: str, reject_status: int,
                 reject_match: str, timeout: float = 5.0, tls: Any = None) -> None:  # fmt: skip
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ProbeError(f"--url {url!r}: an http(s)://HOST[:PORT]/PATH address is expected")
        self.tls = tls if parts.scheme == "https" else None
        self.host, self.port = parts.hostname, parts.port or (443 if self.tls else 80)
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.keys = keys or [""]
        self.key_header = key_header
        self.reject_status = reject_status
        self.reject_match = reject_match.encode()
        self.timeout = timeout
        self.conns: dict[int, http.client.HTTPConnection] = {}

    def __call__(self, key: int, conn: int, pair: int) -> str:
        headers = {}
        if self.key_header:
            if key >= len(self.keys):
                raise ProbeError("give at least two --keys to tell a per-key limit")
            headers[self.key_header] = self.keys[key]
        c = self.conns.get(conn)
        if c is None:
            c = self.conns[conn] = (
                http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout,
                                            context=self.tls)
                if self.tls else http.client.HTTPConnection(self.host, self.port,
                                                            timeout=self.timeout)
            )  # fmt: skip
        try:
            c.request("GET", self.path, headers=headers)
            resp = c.getresponse()
            body = resp.read()
        except (OSError, http.client.HTTPException):
            c.close()
            del self.conns[conn]
            return FAILED
        if resp.status == self.reject_status or (self.reject_match and self.reject_match in body):
            return REFUSED
        return ACCEPTED if resp.status < 400 else FAILED

    def close(self) -> None:
        for c in self.conns.values():
            c.close()


ProbeKey = tuple[str, str, list[str]]  # api key, secret, its FIX SenderCompIDs


class VenueTarget:
    """The venue's own protocols through loadgen's clients: a refusal is a rate-limit error.

    Each request places a small limit order far below the market (it rests, it never fills);
    every order is cancelled at the end with one CancelAll per key used.
    """

    def __init__(self, protocol: str, endpoints: dict[str, str], keys: list[ProbeKey],
                 pairs: list[str], timeout: float = 5.0, tls: Any = None) -> None:  # fmt: skip
        import itertools

        from loadgen.clients.rest import fetch_markets

        if len(keys) < 2:
            raise ProbeError("two API keys are needed (to tell a per-key limit)")
        self.protocol, self.endpoints, self.keys, self.timeout = protocol, endpoints, keys, timeout
        self.tls = tls  # https, wss and tls:// URLs verify with it (None: the system's CAs)
        try:
            self.markets = fetch_markets(endpoints["rest"], pairs, tls)
        except (ValueError, ConnectionError) as exc:
            raise ProbeError(str(exc).replace("--pairs", "--pair")) from None
        self.clients: dict[tuple[int, int], Any] = {}
        self.ids = itertools.count(1)
        self.used: set[int] = set()

    def _client(self, key: int, conn: int) -> Any:
        client = self.clients.get((key, conn))
        if client is not None:
            return client
        api_key, secret, comp_ids = self.keys[key]
        if self.protocol == "rest":
            from loadgen.clients.rest import RestClient

            client = RestClient(self.endpoints["rest"], api_key, secret, self.timeout, self.tls)
        elif self.protocol == "ws":
            from loadgen.clients.ws import connect_with_token

            try:
                client = connect_with_token(self.endpoints["rest"], self.endpoints["ws"], api_key,
                                            secret, self.timeout, tls=self.tls)  # fmt: skip
            except ConnectionError as exc:
                raise ProbeError(str(exc)) from None
        else:
            from loadgen.clients.fix import FixClient
            from loadgen.keys import COMP_IDS_FIELD, comp_id_for

            sender = comp_id_for(comp_ids, conn)
            if not sender:
                raise ProbeError(f"FIX connection {conn + 1} on key {api_key[:8]}... needs a "
                                 f"SenderCompID of its own (keys file field {COMP_IDS_FIELD})")  # fmt: skip
            client = FixClient(self.endpoints["fix"], api_key, secret, sender, self._next_id,
                               timeout=self.timeout, tls=self.tls)  # fmt: skip
        self.clients[(key, conn)] = client
        return client

    def _next_id(self) -> str:
        return f"{next(self.ids):018d}"

    def __call__(self, key: int, conn: int, pair: int) -> str:
        from loadgen.flow.orders import LiveOrder
        from loadgen.outcome import OK, RATE_LIMITED, REJECTED

        if pair >= len(self.markets):
            raise ProbeError("give a second --pair to tell a per-pair limit")
        m = self.markets[pair]
        price = max(1, int(m.mid * 0.5 * 10**m.price_decimals))  # far below: rests, never fills
        order = LiveOrder(self._next_id(), m, "buy", price, m.min_lots, time.monotonic())
        self.used.add(key)
        outcome = self._client(key, conn).add(order)
        if outcome.outcome == RATE_LIMITED:
            return REFUSED
        # a business refusal (open orders over the limit, say) still passed the limiter
        return ACCEPTED if outcome.outcome in (OK, REJECTED) else FAILED

    def close(self) -> None:
        from loadgen.clients.rest import RestClient

        for client in self.clients.values():
            client.close()
        for key in sorted(self.used):
            api_key, secret, _ = self.keys[key]
            rest = RestClient(self.endpoints["rest"], api_key, secret, self.timeout, self.tls)
            rest.cancel_all()
            rest.close()


def save(results: Path, found: dict[str, Any], meta: dict[str, Any]) -> Path:
    out = results / f"probe-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "probe.json.tmp"
    tmp.write_text(json.dumps({**meta, **found}, indent=1, default=_plain))
    tmp.replace(out / "probe.json")
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return str(value)


# ---- the command ---------------------------------------------------------------------------------


def add_args(p: Any) -> None:
    p.add_argument(
        "--target", choices=("http", "rest", "ws", "fix"), default="rest",
        help="http: any endpoint (--url); rest/ws/fix: the venue's protocols (default rest)",
    )  # fmt: skip
    p.add_argument("--url", default="", help="http: the endpoint; rest/ws/fix: a running "
                   "venue's REST URL (default: start the embedded venue)")  # fmt: skip
    p.add_argument("--allow-host", action="append", default=[], help="a non-loopback host "
                   "the probe may send to (repeat for several; default loopback only)")  # fmt: skip
    p.add_argument("--ws-url", default="", help="a running venue's WebSocket URL")
    p.add_argument("--fix-url", default="",
                   help="a running venue's FIX address tcp://HOST:PORT (tls://HOST:PORT: TLS)")  # fmt: skip
    p.add_argument("--ca-file", default="", help="PEM CAs that verify a running venue's TLS "
                   "certificates (https, wss, tls://; default the system's)")  # fmt: skip
    p.add_argument("--insecure", action="store_true",
                   help="verify no TLS certificate (said in the probe's output)")  # fmt: skip
    p.add_argument("--keys-file", default="", help="a running venue's keys file (JSON)")
    p.add_argument("--pair", action="append", default=[], help="market to probe on; give two "
                   "to tell a per-pair limit (default XBTUSD and ETHUSD)")  # fmt: skip
    p.add_argument("--key-header", default="", help="http: header carrying the API key")
    p.add_argument("--keys", default="", help="http: two or more key values, comma separated")
    p.add_argument("--reject-status", type=int, default=429, help="http: refusal status (429)")
    p.add_argument("--reject-match", default="", help="http: a refusal's body contains this")
    p.add_argument("--tier", default="pro", help="embedded venue: the keys' tier (default pro)")
    p.add_argument("--limit-threshold", type=float, default=None,
                   help="embedded venue: its trading-counter threshold, set on purpose")  # fmt: skip
    p.add_argument("--limit-decay", type=float, default=None,
                   help="embedded venue: its trading-counter decay per second")  # fmt: skip
    p.add_argument("--max-rate", type=float, default=500.0,
                   help="never send faster than this, requests/s (default 500)")  # fmt: skip
    p.add_argument("--max-requests", type=int, default=20_000, help="requests at most (20000)")
    p.add_argument("--max-time", type=float, default=120.0, help="seconds at most (default 120)")
    p.add_argument("--expect-burst", type=float, default=None, help="the burst you expect")
    p.add_argument("--expect-rate", type=float, default=None, help="the rate you expect, /s")
    p.add_argument("--tolerance", type=float, default=0.10, help="for the expectations (0.10)")
    p.add_argument("--results", default="results", help="write probe-<time>/probe.json here")


def main(args: Any) -> int:
    import sys

    try:
        bounds = Bounds(args.max_rate, args.max_requests, args.max_time)
        target, venue, pairs = _target(args)
    except ProbeError as exc:
        print(f"loadgen probe: {exc}", file=sys.stderr)
        return 2
    try:
        found = measure(Sender(target, bounds), pairs=pairs)
    except ProbeError as exc:
        print(f"loadgen probe: {exc}", file=sys.stderr)
        return 1
    finally:
        target.close()
        if venue is not None:
            venue.stop()
    checks = verdicts(found, args.expect_burst, args.expect_rate, args.tolerance)
    where = args.url or f"embedded venue ({args.tier})"
    where += ", TLS certificates NOT verified (--insecure)" if args.insecure else ""
    print(f"loadgen probe: {args.target} {where}, at most {args.max_rate:g} requests/s")
    for line in table(found, checks):
        print(line)
    meta = {"target": args.target, "url": args.url, "max_rate": args.max_rate, "checks": checks}
    out = save(Path(args.results), found, meta)
    print(f"loadgen probe: {out / 'probe.json'}")
    return 0 if all(c["ok"] for c in checks) and found["complete"] else 1


def _target(args: Any) -> tuple[Any, Any, int]:
    """(target, embedded venue process or None, pairs) for the arguments."""
    for name in ("url", "ws_url", "fix_url"):
        url = getattr(args, name)
        problem = host_problem(url, args.allow_host, "--allow-host")
        if problem:
            raise ProbeError(f"--{name.replace('_', '-')} {url}: {problem}")
    if args.target == "http":
        if not args.url:
            raise ProbeError("--target http needs --url")
        keys = [k for k in args.keys.split(",") if k]
        if args.key_header and len(keys) < 2:
            raise ProbeError("--key-header needs two or more --keys")
        target = HttpTarget(args.url, keys, args.key_header, args.reject_status, args.reject_match,
                            tls=_tls(args))  # fmt: skip
        return target, None, 1
    pairs = args.pair or ["XBTUSD", "ETHUSD"]
    venue = None
    if args.url:
        if not args.keys_file:
            raise ProbeError("a running venue (--url) needs --keys-file")
        from loadgen.keys import COMP_IDS_FIELD, KeysFileError, read_keys_file

        try:
            entries = read_keys_file(args.keys_file)
        except KeysFileError as exc:
            raise ProbeError(str(exc)) from None
        keys = [(k["api_key"], k["secret"], k.get(COMP_IDS_FIELD, [])) for k in entries]
        endpoints = {"rest": args.url, "ws": args.ws_url, "fix": args.fix_url}
    else:
        from loadgen.keys import DEFAULT_SEED, derive_comp_ids, derive_key
        from loadgen.venue.knobs import misset_flags
        from loadgen.venue.process import VenueProcess

        # limits are its subject, not the FIX day's end (22:00 UTC) in the middle of a probe
        flags = ["--keys", "4", "--tier", args.tier, "--pairs", "30", "--fix-rollover", "off"]
        flags += misset_flags(args.limit_threshold, args.limit_decay)
        venue = VenueProcess(*flags)
        endpoints = venue.endpoints
        keys = [
            (*k, derive_comp_ids(k[0])) for k in (derive_key(DEFAULT_SEED, i) for i in range(4))
        ]
    try:
        return VenueTarget(args.target, endpoints, keys, pairs, tls=_tls(args)), venue, len(pairs)
    except Exception:
        if venue is not None:
            venue.stop()
        raise


def _tls(args: Any) -> Any:
    """The context https, wss and tls:// targets verify with: --ca-file's CAs or the system's;
    none with --insecure."""
    from loadgen.clients.tls import context

    if args.ca_file and not Path(args.ca_file).is_file():
        raise ProbeError(f"--ca-file {args.ca_file}: no such file")
    return context(args.ca_file, args.insecure)
