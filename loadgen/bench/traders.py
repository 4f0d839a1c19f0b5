"""`loadgen bench traders`: generator CPU microseconds per request for each trader.

The venue runs on one core (tier unlimited, so every request is real order entry), Locust runs
headless on the other with N users of one trader class for T seconds; the figure is the Locust
process's CPU time (user + system) over the requests it reported. Stock Locust FastHttpUser
doing signed AddOrder/CancelOrder runs the same way as the baseline, in the same session, and
every trader is also given as a ratio to it (the targets are absolute on a reference machine:
REST and WS 30 us, FIX 40 us, against a baseline of about 80 us there).
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from loadgen.bench.venue import BenchVenue
from loadgen.keys import RUN_KEYS
from loadgen.venue.process import core_split

ROOT = Path(__file__).resolve().parents[2]
LOCUSTFILE = ROOT / "locustfiles" / "exchange.py"
BASELINE = Path(__file__).with_name("fasthttp_baseline.py")
TRADERS = ("RestTrader", "WsTrader", "FixTrader")
TARGET_US = {"RestTrader": 30.0, "WsTrader": 30.0, "FixTrader": 40.0}
REFERENCE_BASELINE_US = 80.0  # FastHttpUser signed requests on the reference machine


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--users", type=int, default=50, help="Locust users per run (default 50)")
    p.add_argument("--seconds", type=int, default=10, help="seconds per run (default 10)")
    p.add_argument("--runs", type=int, default=3, help="runs per trader, median taken (default 3)")
    p.add_argument("--traders", default=",".join(TRADERS), help="comma list (default all three)")


class RefusedRun(Exception):
    """A run whose requests the venue refused: its CPU figure would not be of order entry."""


def run_locust(cls: str, venue: BenchVenue, args: argparse.Namespace, out: Path) -> float:
    """CPU us per request of one headless Locust run (RefusedRun if over 1% broke)."""
    split = core_split()
    pin = ["taskset", "-c", str(split[0][0])] if split else []
    e = venue.endpoints
    if cls == "FastHttpUser":
        target = ["-f", str(BASELINE)]
    else:
        target = ["-f", str(LOCUSTFILE), "--ws-url", e["ws"], "--fix-url", e["fix"], cls]
    cmd = [
        *pin,
        sys.executable,
        "-m",
        "locust",
        *target,
        "--headless",
        "-u",
        str(args.users),
        "-r",
        str(args.users),
        "-t",
        f"{args.seconds}s",
        "--only-summary",
        "--host",
        e["rest"],
        "--csv",
        str(out / cls),
    ]
    before = os.times()
    subprocess.run(cmd, capture_output=True, timeout=args.seconds + 120, check=False)
    after = os.times()
    cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    with open(out / f"{cls}_stats.csv") as fh:
        rows = {row["Name"]: row for row in csv.DictReader(fh)}
    requests = int(rows["Aggregated"]["Request Count"])
    # Business rejections ("[rejected]": an order filled before its cancel) are normal trading;
    # errors and timeouts (and the baseline's failures) mean the run measured something else.
    broken = sum(
        int(row["Failure Count"])
        for name, row in rows.items()
        if name != "Aggregated" and "[rejected]" not in name
    )
    if not requests or broken > requests / 100:
        raise RefusedRun(f"{cls}: {broken} of {requests} requests were errors or timeouts")
    return cpu / requests * 1e6


def main(args: argparse.Namespace) -> int:
    traders = [t.strip() for t in args.traders.split(",") if t.strip()]
    unknown = [t for t in traders if t not in TRADERS]
    if unknown or args.users < 1 or args.seconds < 1 or args.runs < 1:
        print(
            f"loadgen bench traders: traders are {', '.join(TRADERS)}; users, seconds and "
            "runs must be at least 1",
            file=sys.stderr,
        )
        return 2
    classes = ["FastHttpUser", *traders]
    results: dict[str, list[float]] = {c: [] for c in classes}
    with tempfile.TemporaryDirectory() as tmp:
        venue = BenchVenue(tier="unlimited", keys=RUN_KEYS)
        try:
            for _ in range(args.runs):  # rounds, so noise falls on every class alike
                for cls in classes:
                    results[cls].append(run_locust(cls, venue, args, Path(tmp)))
        except RefusedRun as exc:
            print(f"loadgen bench traders: {exc}; no figures reported", file=sys.stderr)
            return 1
        finally:
            venue.stop()
    base = statistics.median(results["FastHttpUser"])
    print(
        f"generator CPU per request: {args.runs} runs x {args.seconds} s, {args.users} users, "
        f"Locust and venue on separate cores; baseline FastHttpUser {base:.1f} us"
    )
    print(f"{'trader':<14}{'median us':>10}{'ratio':>8}{'target':>9}{'target ratio':>14}")
    for cls in traders:
        median = statistics.median(results[cls])
        target = TARGET_US[cls] / REFERENCE_BASELINE_US
        print(f"{cls:<14}{median:>10.1f}{median / base:>8.2f}{TARGET_US[cls]:>9.0f}{target:>14.2f}")
    return 0
