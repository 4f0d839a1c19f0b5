"""`loadgen bench venue`: the venue's CPU microseconds per order request, per protocol.

The venue runs as its own process (pinned to one core when the machine has two or more); this
process drives it from another core with pre-built requests (signed, numbered, ready to write)
over several pipelined connections, so the driver's own cost stays out of the venue's figure.
Each run sends N order requests, half AddOrder and half CancelOrder of those same orders, and
divides the venue process's CPU time (user + system, from the OS) by N. Runs go in rounds, one
per protocol, so machine noise falls on all protocols alike; the figure reported is the median
over the rounds, after one warm-up round.

Keys and pairs are spread so that no request hits a rate limit or the open-order cap: every
request is a real accepted order entry, charged to the real Kraken counters.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import json
import os
import statistics
import sys
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httptools
import psutil

from loadgen import native
from loadgen.keys import COMP_IDS_FIELD
from loadgen.protocol import fix, rest, wsframe
from loadgen.protocol.clock import fix_time
from loadgen.venue.pairs import catalog
from loadgen.venue.process import VenueProcess, core_split

# Targets from the issue: venue CPU per request (REST 40 us, WS and FIX 30 us).
TARGET_US = {"rest": 40.0, "ws": 30.0, "fix": 30.0}
BENCH_KEYS = 200
BENCH_PAIRS = 720
# One increasing nonce source (microseconds) for every signed call the bench makes, so a key's
# nonces only ever grow whichever call comes first.
_nonces = itertools.count(time.time_ns() // 1000)


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--protocols", default="rest,ws,fix", help="comma list (default rest,ws,fix)")
    p.add_argument(
        "--requests",
        type=int,
        default=20000,
        help="order requests per run, half adds and half cancels (default 20000)",
    )
    p.add_argument("--runs", type=int, default=5, help="measured runs per protocol (default 5)")
    p.add_argument("--connections", type=int, default=8, help="client connections (default 8)")
    p.add_argument(
        "--window", type=int, default=32, help="requests in flight per connection (default 32)"
    )
    p.add_argument(
        "--pairs",
        type=int,
        default=BENCH_PAIRS,
        help=f"markets the venue lists and the bench spreads orders over (default "
        f"{BENCH_PAIRS}); compare e.g. 20 and 720 to see the cost of many pairs",
    )
    p.add_argument(
        "--tier",
        default="pro",
        help="tier of the bench keys (default pro; 'unlimited' lifts the rate limits, "
        "e.g. to compare --pairs 20 with --pairs 720 on equal terms)",
    )
    p.add_argument("--json", type=Path, default=None, help="also write the results here as JSON")


@dataclass
class RunResult:
    protocol: str
    requests: int
    errors: int
    cpu_s: float
    wall_s: float
    limited: int = 0  # of the errors, refusals for a rate limit

    @property
    def us_per_request(self) -> float:
        return self.cpu_s / self.requests * 1e6


# ---- the venue under test ------------------------------------------------------------------------


# A bench measures speed: a FIX rollover (22:00 UTC) in the middle of one is not its subject.
NO_ROLLOVER = ("--fix-rollover", "off")


class BenchVenue(VenueProcess):
    """The venue under test, pinned to the last core (the driver keeps the others)."""

    def __init__(
        self, pairs: int = BENCH_PAIRS, tier: str = "pro", keys: int = BENCH_KEYS, *flags: str
    ) -> None:
        split = core_split()
        self.pinned = split is not None
        self._affinity = os.sched_getaffinity(0) if split is not None else None
        cpu = None
        if split is not None:
            load, cpu = split
            os.sched_setaffinity(0, load)
        super().__init__(
            "--keys",
            str(keys),
            "--pairs",
            str(pairs),
            "--tier",
            tier,
            *NO_ROLLOVER,
            *flags,
            cpu=cpu,
        )
        self.ps = psutil.Process(self.pid)

    def stop(self) -> list[str]:
        """Stop the venue and give this process back the cores it had (a later part of
        `loadgen bench` must not inherit the driver's single core)."""
        try:
            return super().stop()
        finally:
            if self._affinity is not None:
                os.sched_setaffinity(0, self._affinity)

    def cpu(self) -> float:
        times = self.ps.cpu_times()
        return times.user + times.system


def _hostport(url: str) -> tuple[str, int]:
    parts = urllib.parse.urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 0


# ---- request builders (one list of payload bytes per connection) ---------------------------------


def _plan(requests: int, connections: int, keys: list[dict], offset: int, pair_count: int):
    """(connection, key, pair, order number) for each add; the cancel follows its add.

    Each connection cycles through its own keys, then moves to the next pair; each run starts
    where the last one stopped, so successive runs charge fresh (key, pair) counters.
    """
    pairs = catalog(pair_count)
    per_conn_keys = [keys[c::connections] for c in range(connections)]
    per_conn = requests // 2 // connections + 1
    for i in range(requests // 2):
        conn = i % connections
        mine = per_conn_keys[conn]
        j = i // connections + offset * per_conn
        key = mine[j % len(mine)]
        pair = pairs[(j // len(mine)) % len(pairs)]
        yield conn, key, pair, i + offset * 1_000_000


def _price(pair) -> str:
    """Far below the reference price: bench orders rest and never meet each other."""
    return pair.fmt_price(max(1, round(pair.ref_price * pair.price_scale * 0.5)))


Plan = list[tuple[int, dict, Any, int]]  # what _plan yields, listed


def rest_payloads(plan: Plan, connections: int) -> list[list[bytes]]:
    out: list[list[bytes]] = [[] for _ in range(connections)]
    for conn, key, pair, n in plan:
        secret = base64.b64decode(key["secret"])
        for path, fields in (
            (
                "/0/private/AddOrder",
                f"pair={pair.altname}&type=buy&ordertype=limit&price="
                f"{_price(pair)}&volume={pair.ordermin}&cl_ord_id=b{n}",
            ),
            ("/0/private/CancelOrder", f"cl_ord_id=b{n}"),
        ):
            nonce = str(next(_nonces))
            body = f"nonce={nonce}&{fields}".encode()
            sign = rest.sign(secret, path.encode(), nonce.encode(), body)
            out[conn].append(
                b"POST %s HTTP/1.1\r\nHost: venue\r\nAPI-Key: %s\r\nAPI-Sign: %s\r\n"
                b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s"
                % (path.encode(), key["api_key"].encode(), sign, len(body), body)
            )
    return out


def ws_payloads(plan: Plan, connections: int, tokens: dict[str, str]) -> list[list[bytes]]:
    out: list[list[bytes]] = [[] for _ in range(connections)]
    for conn, key, pair, n in plan:
        token = tokens[key["api_key"]]
        add = {
            "method": "add_order",
            "req_id": n,
            "params": {
                "order_type": "limit",
                "side": "buy",
                "symbol": pair.symbol,
                "limit_price": float(_price(pair)),
                "order_qty": float(pair.ordermin),
                "cl_ord_id": f"b{n}",
                "token": token,
            },
        }
        cancel = {
            "method": "cancel_order",
            "req_id": n,
            "params": {"cl_ord_id": [f"b{n}"], "token": token},
        }
        for msg in (add, cancel):
            out[conn].append(
                wsframe.encode_frame(wsframe.OP_TEXT, json.dumps(msg).encode(), mask=True)
            )
    return out


def fix_payloads(plan: Plan, connections: int, sessions: list[dict]) -> list[list[bytes]]:
    """FIX trades one key per session: `plan` must be made with the sessions' keys in order."""
    out: list[list[bytes]] = [[] for _ in range(connections)]
    now = fix_time(time.time())
    for conn, _key, pair, n in plan:
        s = sessions[conn]
        for msg_type, body in (
            (
                "D",
                f"11={2 * n + 1}\x0154=1\x0155={pair.symbol}\x0138={pair.ordermin}\x0140=2"
                f"\x0144={_price(pair)}\x0159=1\x0160={now}\x01",
            ),
            # ClOrdIDs: Kraken's ever-increasing numbers (facts 11), an order's then its cancel's
            ("F", f"11={2 * n + 2}\x0141={2 * n + 1}\x0154=1\x0155={pair.symbol}\x0160={now}\x01"),
        ):
            head = fix.header(s["sender"], "KRAKEN-TRD", s["seq"], now)
            s["seq"] += 1
            out[conn].append(fix.encode(msg_type, head, body))
    return out


# ---- reply counters (bytes in -> (replies, errors)) -----------------------------------------------


LIMITED = "Rate limit exceeded"  # in each API's refusal for a rate limit (EOrder:, EAPI:)


class RestCounter:
    def __init__(self) -> None:
        self.replies = 0
        self.errors = 0
        self.limited = 0
        self.parser = httptools.HttpResponseParser(self)

    def on_body(self, body: bytes) -> None:
        if not body.startswith(b'{"error":[]'):
            self.errors += 1
            self.limited += LIMITED.encode() in body

    def on_message_complete(self) -> None:
        self.replies += 1

    def feed(self, data: bytes) -> None:
        self.parser.feed_data(data)


class WsCounter:
    def __init__(self) -> None:
        self.replies = 0
        self.errors = 0
        self.limited = 0
        self.frames = wsframe.FrameParser(expect_masked=False)

    def feed(self, data: bytes) -> None:
        for _, payload in self.frames.feed(data):
            if b'"method"' in payload:
                self.replies += 1
                if b'"success":true' not in payload:
                    self.errors += 1
                    self.limited += LIMITED.encode() in payload


class FixCounter:
    def __init__(self) -> None:
        self.replies = 0
        self.errors = 0
        self.limited = 0
        self.reader = fix.FixReader()

    def feed(self, data: bytes) -> None:
        for msg in self.reader.feed(data):
            if isinstance(msg, str) and "\x0135=8\x01" in msg:
                self.replies += 1
            elif isinstance(msg, str) and "\x0135=0\x01" in msg:
                continue  # heartbeat
            else:
                self.replies += 1
                self.errors += 1
                self.limited += isinstance(msg, str) and LIMITED in msg


# ---- driving ---------------------------------------------------------------------------------------


async def _pump(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    payloads: list[bytes],
    counter,
    window: int,
) -> None:
    total = len(payloads)
    sent = 0
    while counter.replies < total:
        if sent < total and sent - counter.replies < window:
            upto = min(total, counter.replies + window)
            writer.write(b"".join(payloads[sent:upto]))
            sent = upto
        data = await asyncio.wait_for(reader.read(1 << 16), 30)
        if not data:
            raise ConnectionError("venue closed the connection")
        counter.feed(data)


async def _open(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(*_hostport(url))


async def _ws_open(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await _open(url)
    key = base64.b64encode(os.urandom(16))
    writer.write(
        b"GET /v2 HTTP/1.1\r\nHost: venue\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % key
    )
    await reader.readuntil(b"\r\n\r\n")
    frames = wsframe.FrameParser(expect_masked=False)
    while not frames.feed(await _read_some(reader, "the WebSocket status message")):
        pass
    return reader, writer


async def _fix_open(url: str, session: dict) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await _open(url)
    key = session["key"]
    nonce = str(int(time.time() * 1000))
    password = fix.logon_password(
        base64.b64decode(key["secret"]), 1, session["sender"], "KRAKEN-TRD", key["api_key"], nonce
    )
    head = fix.header(session["sender"], "KRAKEN-TRD", 1, fix_time(time.time()))
    writer.write(
        fix.encode(
            "A",
            head,
            [(98, 0), (108, 30), (141, "Y"), (553, key["api_key"]), (554, password), (5025, nonce)],
        )
    )
    session["seq"] = 2
    fr = fix.FixReader()
    while not fr.feed(await _read_some(reader, "the FIX Logon reply")):
        pass
    return reader, writer


async def _read_some(reader: asyncio.StreamReader, awaited: str) -> bytes:
    """The next bytes of a handshake; a venue that closes or stalls instead is an error (a
    refused logon used to spin here on empty reads)."""
    data = await asyncio.wait_for(reader.read(4096), 30)
    if not data:
        raise ConnectionError(f"venue closed the connection before {awaited}")
    return data


async def _run(
    protocol: str, venue: BenchVenue, args: argparse.Namespace, offset: int, state: dict
) -> RunResult:
    url = venue.endpoints[protocol]
    conns = state.setdefault("conns", [])
    if not conns:
        for c in range(args.connections):
            if protocol == "rest":
                conns.append(await _open(url))
            elif protocol == "ws":
                conns.append(await _ws_open(url))
            else:
                conns.append(await _fix_open(url, state["sessions"][c]))
    plan = list(_plan(args.requests, args.connections, state["keys"], offset, args.pairs))
    if protocol == "rest":
        payloads = rest_payloads(plan, args.connections)
        counter_type: Callable = RestCounter
    elif protocol == "ws":
        payloads = ws_payloads(plan, args.connections, state["tokens"])
        counter_type = WsCounter
    else:
        payloads = fix_payloads(plan, args.connections, state["sessions"])
        counter_type = FixCounter
    counters = [counter_type() for _ in conns]
    sent = sum(len(p) for p in payloads)
    cpu0, t0 = venue.cpu(), time.perf_counter()
    await asyncio.gather(
        *(
            _pump(r, w, p, k, args.window)
            for (r, w), p, k in zip(conns, payloads, counters, strict=True)
        )
    )
    cpu1, t1 = venue.cpu(), time.perf_counter()
    errors = sum(k.errors for k in counters)
    limited = sum(k.limited for k in counters)
    return RunResult(protocol, sent, errors, cpu1 - cpu0, t1 - t0, limited)


def key_groups(keys: list[dict], connections: int) -> dict[str, list[dict]]:
    """Disjoint keys per protocol: FIX gets one key per session, REST and WS share the rest
    half and half, so one protocol's rate-limit counters never carry another's charges."""
    fix_keys, others = keys[-connections:], keys[:-connections]
    half = len(others) // 2
    return {"rest": others[:half], "ws": others[half:], "fix": fix_keys}


def _tokens(venue: VenueProcess) -> dict[str, str]:
    import http.client

    host, port = _hostport(venue.endpoints["rest"])
    conn = http.client.HTTPConnection(host, port)
    tokens = {}
    for key in venue.keys:
        nonce = str(next(_nonces))
        body = f"nonce={nonce}".encode()
        sign = rest.sign(
            base64.b64decode(key["secret"]), b"/0/private/GetWebSocketsToken", nonce.encode(), body
        )
        conn.request(
            "POST",
            "/0/private/GetWebSocketsToken",
            body,
            {"API-Key": key["api_key"], "API-Sign": sign.decode()},
        )
        tokens[key["api_key"]] = json.loads(conn.getresponse().read())["result"]["token"]
    conn.close()
    return tokens


def bench_all(
    protocols: list[str], venue: BenchVenue, args: argparse.Namespace
) -> dict[str, list[RunResult]]:
    """Rounds of one run per protocol, so a noisy neighbour on a shared machine weighs on all
    protocols alike instead of on whichever happened to run at the time. Round 0 warms up."""
    groups = key_groups(venue.keys, args.connections)
    states: dict[str, dict] = {p: {"keys": groups[p]} for p in protocols}
    if "ws" in states:
        states["ws"]["tokens"] = _tokens(venue)
    if "fix" in states:
        states["fix"]["sessions"] = [
            {"key": key, "sender": key[COMP_IDS_FIELD][0], "seq": 1} for key in groups["fix"]
        ]
    results: dict[str, list[RunResult]] = {p: [] for p in protocols}
    loop = asyncio.new_event_loop()
    try:
        for run in range(args.runs + 1):
            for protocol in protocols:
                result = loop.run_until_complete(_run(protocol, venue, args, run, states[protocol]))
                if run:
                    results[protocol].append(result)
        for state in states.values():
            for _, writer in state.get("conns", []):
                writer.close()
        return results
    finally:
        loop.close()


def main(args: argparse.Namespace) -> int:
    protocols = [p.strip() for p in args.protocols.split(",") if p.strip()]
    for p in protocols:
        if p not in TARGET_US:
            print(
                f"loadgen bench venue: unknown protocol {p!r} (use rest, ws, fix)", file=sys.stderr
            )
            return 2
    max_connections = (
        BENCH_KEYS // 3
    )  # FIX takes one key per connection, REST and WS share the rest
    if not 1 <= args.connections <= max_connections:
        print(f"loadgen bench venue: --connections must be 1..{max_connections}", file=sys.stderr)
        return 2
    from loadgen.ratelimit import TIERS

    if args.tier not in TIERS:
        print(
            f"loadgen bench venue: --tier {args.tier!r} unknown ({', '.join(TIERS)})",
            file=sys.stderr,
        )
        return 2
    if args.pairs < 1:
        print("loadgen bench venue: --pairs must be at least 1", file=sys.stderr)
        return 2
    if args.requests < 2 or args.runs < 1 or args.window < 1:
        print(
            "loadgen bench venue: --requests >= 2, --runs, --connections, --window >= 1",
            file=sys.stderr,
        )
        return 2
    venue = BenchVenue(args.pairs, args.tier)
    try:
        report = bench_all(protocols, venue, args)
    except (ConnectionError, TimeoutError) as exc:
        print(f"loadgen bench venue: {exc or type(exc).__name__}; no figures reported",
              file=sys.stderr)  # fmt: skip
        return 1
    finally:
        venue.stop()
    return _print_report(report, args, venue.pinned)


def summarize(report: dict[str, list[RunResult]]) -> dict[str, dict[str, Any]]:
    """Per protocol: the median and every run's us per request, the target, the median rate
    and the errors (refusals) over all runs."""
    return {
        protocol: {
            "median_us": statistics.median(r.us_per_request for r in runs),
            "runs_us": [r.us_per_request for r in runs],
            "target_us": TARGET_US[protocol],
            "median_req_per_s": statistics.median(r.requests / r.wall_s for r in runs),
            "errors": sum(r.errors for r in runs),
            "rate_limited": sum(r.limited for r in runs),
        }
        for protocol, runs in report.items()
    }


def _print_report(
    report: dict[str, list[RunResult]], args: argparse.Namespace, pinned: bool
) -> int:
    where = "venue and driver pinned to separate cores" if pinned else "NOT pinned (one core)"
    where += f"; {args.pairs} pairs, tier {args.tier}; venue modules {native.running()}"
    print(
        f"venue CPU per order request: {args.runs} runs x {args.requests} requests "
        f"(adds + cancels), {args.connections} connections x {args.window} in flight; {where}"
    )
    print(
        f"{'protocol':<9}{'median us':>10}{'min':>8}{'max':>8}{'target':>8}{'req/s':>10}"
        f"{'errors':>8}"
    )
    out = summarize(report)
    failed_targets = []
    for protocol, row in out.items():
        per, median, target = row["runs_us"], row["median_us"], row["target_us"]
        if median > target:
            failed_targets.append(protocol)
        print(
            f"{protocol:<9}{median:>10.1f}{min(per):>8.1f}{max(per):>8.1f}{target:>8.0f}"
            f"{row['median_req_per_s']:>10.0f}{row['errors']:>8}"
        )
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    if failed_targets:
        print(f"over target: {', '.join(failed_targets)}")
    if any(v["errors"] for v in out.values()):
        print("some requests were refused: the figures are not of accepted order entry")
        limited = sum(v["rate_limited"] for v in out.values())
        if limited:  # the bench keys' per-pair counters ran out of room: the bench's doing
            print(
                f"  {limited} of them for a rate limit (each cancel of an order it refused is "
                f"refused too, as unknown): {args.runs} runs x {args.requests} requests charge "
                f"the bench keys' per-pair counters past tier {args.tier}'s threshold; use fewer "
                "--runs or --requests, or --tier unlimited"
            )
        return 1
    return 0
