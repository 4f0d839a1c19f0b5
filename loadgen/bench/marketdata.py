"""`loadgen bench marketdata`: the book feed's cost in the venue, and subscribers one worker holds.

Two parts (issue 18):

- fan-out cost: the venue pinned to its own core, one WebSocket trader resting and cancelling
  orders on one pair at a steady pace, and S raw subscribers of that pair's book (asyncio
  streams that count what they read). The venue's CPU seconds with S subscribers, less those
  with none under the same order flow, over the book messages delivered: the venue's cost of
  one update to one subscriber (µs). Each S runs `--runs` times; medians.
- held: `loadgen run` of traders (~1,000 req/s, open loop) and MarketDataUsers ramping to
  `--subscribers` in one Locust process; the subscribers that got their snapshots, the fan-out
  latency and checksum failures, from the run's summary. Target: 5,000 held with P99 fan-out
  under 50 ms and no checksum failure. The file-descriptor limit is raised to its hard limit
  first (both processes inherit it); a hard limit too low for the subscribers is said.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import multiprocessing
import random
import resource
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from loadgen.bench.runs import loadgen_run
from loadgen.protocol import ws, wsframe

if TYPE_CHECKING:
    from loadgen.bench.venue import BenchVenue

PAIR, SYMBOL = "XBTUSD", "BTC/USD"
SUBSCRIBERS = (0, 250, 1000)  # per fan-out run; 0 is the baseline
TICK_S = 0.005  # the trader's pace: one add and (once 20 rest) one cancel per tick
TARGET_HELD = 5000
TRADERS = 30  # the held part's order entry: 1,000 req/s over 30 open-loop traders
TARGET_P99_US = 50_000


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runs", type=int, default=3, help="runs of each fan-out figure, median (3)")
    p.add_argument("--seconds", type=int, default=10, help="seconds of each fan-out run (10)")
    p.add_argument("--subscribers", type=int, default=TARGET_HELD,
                   help=f"subscribers the held part ramps to (default {TARGET_HELD})")  # fmt: skip
    p.add_argument("--hold-seconds", type=int, default=20, help="seconds held at the top (20)")
    p.add_argument("--results", default="results", help="where bench-marketdata-*/ goes")


# ---- fan-out cost --------------------------------------------------------------------------


async def _subscriber(url: str, counts: list[int], ready: asyncio.Event, stop: asyncio.Event,
                      waiting: list[int]) -> None:  # fmt: skip
    from loadgen.bench.venue import _ws_open

    reader, writer = await _ws_open(url)
    params = {"channel": "book", "symbol": [SYMBOL], "depth": 10}
    writer.write(wsframe.encode_frame(wsframe.OP_TEXT, ws.request("subscribe", params, 1),
                                      mask=True))  # fmt: skip
    frames = wsframe.FrameParser(expect_masked=False)
    subscribed = False
    while not stop.is_set():
        try:
            data = await asyncio.wait_for(reader.read(1 << 16), 0.5)
        except TimeoutError:
            continue
        if not data:
            break
        for _, payload in frames.feed(data):
            if payload.startswith(b'{"channel":"book","type":"update"'):
                counts[0] += 1
            elif not subscribed and payload.startswith(b'{"channel":"book"'):
                subscribed = True
                waiting[0] -= 1
                if not waiting[0]:
                    ready.set()
    writer.close()


async def _trader(url: str, token: str, seconds: float) -> int:
    """Adds (and cancels) on PAIR at TICK_S for `seconds`: the requests sent."""
    from loadgen.bench.venue import _ws_open

    reader, writer = await _ws_open(url)
    frames, ids, open_ids, sent = (
        wsframe.FrameParser(expect_masked=False),
        itertools.count(1),
        [],
        0,
    )
    rng, end = random.Random(1), time.monotonic() + seconds

    def send(method: str, params: dict[str, Any]) -> None:
        payload = ws.request(method, {**params, "token": token}, next(ids))
        writer.write(wsframe.encode_frame(wsframe.OP_TEXT, payload, mask=True))

    while time.monotonic() < end:
        side = rng.choice(("buy", "sell"))
        price = 60000 + (-1 if side == "buy" else 1) * rng.randint(5, 60) * 0.1
        send("add_order", {"order_type": "limit", "side": side, "limit_price": round(price, 1),
                           "order_qty": 0.001, "symbol": SYMBOL})  # fmt: skip
        sent += 1
        if len(open_ids) > 20:
            send("cancel_order", {"order_id": [open_ids.pop(0)]})
            sent += 1
        await asyncio.sleep(TICK_S)
        while True:
            try:
                data = await asyncio.wait_for(reader.read(1 << 16), 0.0001)
            except TimeoutError:
                break
            for _, payload in frames.feed(data):
                if b'"method":"add_order"' in payload and b'"success":true' in payload:
                    open_ids.append(orjson.loads(payload)["result"]["order_id"])
    send("cancel_all", {})
    await asyncio.sleep(0.2)
    writer.close()
    return sent


def _trade_in_process(url: str, token: str, seconds: float) -> int:
    return asyncio.run(_trader(url, token, seconds))


async def _fanout_run(venue: BenchVenue, token: str, subscribers: int, seconds: float
                      ) -> dict[str, Any]:  # fmt: skip
    url = venue.endpoints["ws"]
    counts, ready, stop, waiting = [0], asyncio.Event(), asyncio.Event(), [subscribers]
    tasks = [asyncio.create_task(_subscriber(url, counts, ready, stop, waiting))
             for _ in range(subscribers)]  # fmt: skip
    if subscribers:
        await asyncio.wait_for(ready.wait(), 120)
    cpu = venue.cpu()
    # the trader in a process of its own, so the subscribers here cannot slow its pace: every
    # run has the same order flow, and only the subscribers differ
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        sent = await asyncio.get_running_loop().run_in_executor(
            pool, _trade_in_process, url, token, seconds)  # fmt: skip
    await asyncio.sleep(0.1)  # the last publish (10 ms after the last change)
    used = venue.cpu() - cpu
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {"subscribers": subscribers, "cpu_s": round(used, 4), "delivered": counts[0],
            "requests": sent}  # fmt: skip


def fanout(args: argparse.Namespace, log: Any) -> dict[str, Any]:
    from loadgen.bench.venue import BenchVenue, _tokens

    venue = BenchVenue(30, "unlimited", 8)
    try:
        token = next(iter(_tokens(venue).values()))
        loop = asyncio.new_event_loop()
        runs: dict[int, list[dict[str, Any]]] = {s: [] for s in SUBSCRIBERS}
        for _ in range(args.runs):
            for s in SUBSCRIBERS:  # each S in every round: a noisy moment weighs on all alike
                runs[s].append(loop.run_until_complete(_fanout_run(venue, token, s, args.seconds)))
        loop.close()
    finally:
        venue.stop()
    base = statistics.median(r["cpu_s"] for r in runs[0])  # the same flow, no subscriber
    per_request = statistics.median(r["cpu_s"] / r["requests"] for r in runs[0])
    rows = []
    for s in SUBSCRIBERS[1:]:
        costs = [(r["cpu_s"] - base) / r["delivered"] * 1e6 for r in runs[s] if r["delivered"]]
        per = statistics.median(costs) if costs else None
        delivered = statistics.median(r["delivered"] for r in runs[s])
        rows.append({"subscribers": s, "delivered": delivered,
                     "requests": statistics.median(r["requests"] for r in runs[s]),
                     "venue_cpu_s": statistics.median(r["cpu_s"] for r in runs[s]),
                     "per_subscriber_update_us": round(per, 3) if per is not None else None})  # fmt: skip
        log(f"  {s:,} subscribers: {delivered:,.0f} updates delivered, {per or 0:.2f} us of venue "
            "CPU an update a subscriber")  # fmt: skip
    return {"order_flow_us_per_request": round(per_request * 1e6, 2), "baseline_cpu_s": base,
            "requests": statistics.median(r["requests"] for r in runs[0]), "seconds": args.seconds,
            "rows": rows, "runs": runs}  # fmt: skip


# ---- held by one worker --------------------------------------------------------------------


def raise_fd_limit(wanted: int) -> str:
    """The soft file-descriptor limit raised to the hard one; a line when that is too few."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < wanted:
        return (f"the file-descriptor hard limit is {hard:,}, under the {wanted:,} the "
                "subscribers need (raise it: ulimit -Hn, or LimitNOFILE in systemd)")  # fmt: skip
    return ""


def ramp_seconds(subscribers: int) -> int:
    """The subscribers' ramp: 250 a second (each connects, subscribes, takes its snapshot)."""
    return max(3, subscribers // 250)


def held_profile(subscribers: int, hold_s: int) -> str:
    """TRADERS traders (a third on each API) at 1,000 req/s, and `subscribers` MarketDataUsers
    (class weights: md users = md weight * users / all weights)."""
    ramp_s = ramp_seconds(subscribers)
    users = subscribers + TRADERS
    return (
        'name = "md-held"\ndescription = "loadgen bench marketdata"\n[target]\n'
        'venue = "embedded"\ntier = "unlimited"\n[users]\n'
        f"rest = {TRADERS // 3}\nws = {TRADERS // 3}\nfix = {TRADERS // 3}\nmd = {subscribers}\n"
        '[flow]\npairs = { XBTUSD = 1 }\ncross_share = 0.2\n[load]\nloop = "open"\n'
        "max_rate = 2000\nspawn_rate = 500\n"
        f'[[stages]]\nkind = "ramp"\nduration = "{ramp_s}s"\nusers = {users}\nrate = 1000\n'
        f'[[stages]]\nkind = "step"\nduration = "{hold_s}s"\nusers = {users}\nrate = 1000\n'
    )


def held(args: argparse.Namespace, folder: Path, log: Any) -> dict[str, Any]:
    problem = raise_fd_limit(2 * args.subscribers + 200)  # the venue's end and the worker's
    path = folder / "md-held.toml"
    path.write_text(held_profile(args.subscribers, args.hold_seconds))
    seconds = ramp_seconds(args.subscribers) + args.hold_seconds
    run_dir, _ = loadgen_run(path, folder, "md-held", seconds)
    s = json.loads((run_dir / "summary.json").read_text())
    md = s.get("market_data") or {}
    lat = md.get("fanout_us") or {}
    got = md.get("snapshots", 0)  # one book each: the subscribers that were answered
    out = {"subscribers": args.subscribers, "held": got, "updates": md.get("updates", 0),
           "checksum_failures": md.get("checksum_failures", 0),
           "reconnects": md.get("reconnects", 0), "fanout_us": lat,
           "orders_rps": s["totals"]["throughput_rps"], "verdict": s["verdict"]["headline"],
           "run": str(run_dir), "fd_limit": problem}  # fmt: skip
    out["met"] = (got >= TARGET_HELD and lat.get("p99", 1 << 60) < TARGET_P99_US
                  and not out["checksum_failures"])  # fmt: skip
    log(f"  held {got:,} of {args.subscribers:,} subscribers; fan-out P99 "
        f"{lat.get('p99', 0) / 1000:.1f} ms; {out['checksum_failures']} checksum failures; "
        f"orders {out['orders_rps']:,.0f}/s")  # fmt: skip
    return out


def table_lines(r: dict[str, Any]) -> list[str]:
    lines = ["market data, venue fan-out (one pair, depth 10): venue CPU per update per "
             "subscriber, less its CPU under the same order flow with none "
             f"({r['fanout']['requests']:,.0f} requests)"]  # fmt: skip
    for row in r["fanout"]["rows"]:
        per = row["per_subscriber_update_us"]
        cost = "-" if per is None else f"{per} us"
        lines.append(f"  {row['subscribers']:>6,} subscribers: {cost}  ({row['delivered']:,.0f} "
                     f"updates delivered in {r['fanout']['seconds']} s)")  # fmt: skip
    h = r["held"]
    lat = h["fanout_us"]
    lines.append(
        f"market data, one worker: {h['held']:,} of {h['subscribers']:,} subscribers held, "
        f"fan-out P50 {lat.get('p50', 0) / 1000:.1f} ms P99 {lat.get('p99', 0) / 1000:.1f} ms, "
        f"{h['checksum_failures']} checksum failures, orders {h['orders_rps']:,.0f}/s (target "
        f"{TARGET_HELD:,} held, P99 < 50 ms, no failure: {'met' if h['met'] else 'NOT met'})"
    )
    if h["fd_limit"]:
        lines.append(f"  {h['fd_limit']}")
    return lines


def measure(args: argparse.Namespace, folder: Path, log: Any = print) -> dict[str, Any]:
    log("market data: fan-out cost in the venue")
    result = {"fanout": fanout(args, log)}
    log(f"market data: {args.subscribers:,} subscribers on one worker")
    result["held"] = held(args, folder, log)
    return result


def main(args: argparse.Namespace) -> int:
    if min(args.runs, args.seconds, args.subscribers, args.hold_seconds) < 1:
        print("loadgen bench marketdata: --runs, --seconds, --subscribers, --hold-seconds must "
              "be >= 1", file=sys.stderr)  # fmt: skip
        return 2
    out = Path(args.results)
    out.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="bench-marketdata-", dir=out))
    print(f"loadgen bench marketdata -> {folder}", flush=True)
    result = measure(args, folder)
    (folder / "marketdata.json").write_text(json.dumps(result, indent=1))
    print("\n".join(table_lines(result)), flush=True)
    return 0
