"""`loadgen bench traders`: generator CPU microseconds per request for each trader.

The venue runs on one core (tier unlimited, so every request is real order entry), Locust runs
headless on the others with N users of one trader class (or of all three: Mixed) for T seconds;
the figure is the Locust process's CPU time (user + system) over the requests it made in the
steady part of the run, as loadgen.bench.meter samples them from inside Locust (start-up and the
final cancel-all are left out). Stock Locust FastHttpUser doing signed AddOrder/CancelOrder runs
the same way as the baseline, in the same rounds, and every trader is given as a ratio to it.
Targets (issue 6): REST and WS 30 us, FIX 40 us, and at least 3x cheaper than the baseline.
NAME+tls runs a trader against a second bench venue serving TLS only (https, wss, FIX tls://,
verified by the CA it wrote), in the same rounds: TLS's cost per request beside plain TCP's.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadgen.bench.venue import BENCH_PAIRS, BenchVenue
from loadgen.keys import RUN_KEYS
from loadgen.venue.process import core_split

ROOT = Path(__file__).resolve().parents[2]
LOCUSTFILE = ROOT / "locustfiles" / "exchange.py"
BASELINE = Path(__file__).with_name("fasthttp_baseline.py")
TRADERS = ("RestTrader", "WsTrader", "FixTrader")
TARGET_US = {"RestTrader": 30.0, "WsTrader": 30.0, "FixTrader": 40.0}
TARGET_RATIO = 1 / 3  # at least 3x cheaper than stock FastHttpUser on the same signed orders
BASELINE_CLASS = "FastHttpUser"


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--users", type=int, default=50, help="Locust users per run (default 50)")
    p.add_argument("--seconds", type=int, default=10, help="seconds per run (default 10)")
    p.add_argument("--runs", type=int, default=3, help="runs per trader, median taken (default 3)")
    p.add_argument(
        "--traders",
        default=",".join((*TRADERS, "Mixed")),
        help="comma list of RestTrader, WsTrader, FixTrader, Mixed (all three at once); "
        "NAME@N runs that one with --pipeline N, NAME+tls against a venue serving TLS",
    )
    p.add_argument(
        "--pipeline",
        type=int,
        default=1,
        help="requests each trader keeps on the wire per turn (the traders' --pipeline)",
    )


class RefusedRun(Exception):
    """A run whose requests the venue refused: its CPU figure would not be of order entry."""


METER = Path(__file__).with_name("meter.py")
WARMUP_SHARE = 0.2  # of a run's busy span, before the steady part the figure is taken from


@dataclass
class Sample:
    """The generator's cost over the steady part of one run."""

    us_per_request: float
    requests_per_s: float
    requests: int  # in the steady part


def steady(lines: list[str]) -> Sample | None:
    """The cost per request between 20% of the busy span and its last sample (meter lines)."""
    rows = [tuple(map(float, line.split(","))) for line in lines if line.count(",") == 2]
    busy = [r for r in rows if r[1] > 0]
    if len(busy) < 3:
        return None
    t0, t1 = busy[0][0], busy[-1][0]
    start = next(r for r in busy if r[0] >= t0 + (t1 - t0) * WARMUP_SHARE)
    last = busy[-1]
    requests = int(last[1] - start[1])
    if requests <= 0 or last[0] <= start[0]:
        return None
    cpu = last[2] - start[2]
    return Sample(cpu / requests * 1e6, requests / (last[0] - start[0]), requests)


def locust_target(cls: str, e: dict[str, str], pipeline: int) -> list[str]:
    """The -f argument and the options and classes for one trader (or the baseline, or Mixed)."""
    if cls == "FastHttpUser":
        return ["-f", f"{BASELINE},{METER}"]
    cls, _, depth = cls.partition("@")  # "RestTrader@1": that trader with --pipeline 1
    cls, tls, _ = cls.partition("+tls")  # "RestTrader+tls": against the TLS venue `e`
    ca = ["--ca-file", e["ca_file"]] if tls else []
    pipeline = int(depth) if depth else pipeline
    classes = list(TRADERS) if cls == "Mixed" else [cls]
    return ["-f", f"{LOCUSTFILE},{METER}", "--ws-url", e["ws"], "--fix-url", e["fix"],
            "--tier", "unlimited", "--pipeline", str(pipeline),
            "--max-rate", "0",  # a cost bench runs flat out: no default cap
            *ca, *classes]  # fmt: skip


def run_locust(
    cls: str, e: dict[str, str], args: argparse.Namespace, out: Path, cores: str
) -> Sample:
    """One headless Locust run of a class on `cores`; its steady cost (RefusedRun if over 1%
    of its requests broke)."""
    pin = ["taskset", "-c", cores] if cores else []
    meter = out / f"{cls}.meter"
    for old in out.glob(f"{cls}.meter.*"):
        old.unlink()
    cmd = [*pin, sys.executable, "-m", "locust", *locust_target(cls, e, args.pipeline),
           "--headless", "-u", str(args.users), "-r", str(args.users), "-t", f"{args.seconds}s",
           "--only-summary", "--host", e["rest"], "--csv", str(out / cls)]  # fmt: skip
    env = dict(os.environ, LOADGEN_BENCH_METER=str(meter))
    done = subprocess.run(
        cmd, capture_output=True, text=True, env=env, timeout=args.seconds + 120, check=False
    )
    with open(out / f"{cls}_stats.csv") as fh:
        rows = {row["Name"]: row for row in csv.DictReader(fh)}
    requests = int(rows["Aggregated"]["Request Count"]) if "Aggregated" in rows else 0
    # Business rejections ("[rejected:...]": an order filled before its cancel) are normal
    # trading and no Locust failure; errors and timeouts (and the baseline's failures) mean the
    # run measured something else.
    broken = sum(
        int(row["Failure Count"])
        for name, row in rows.items()
        if name != "Aggregated" and "[rejected:" not in name
    )
    files = sorted(out.glob(f"{cls}.meter.*"))
    sample = steady(files[0].read_text().splitlines()) if len(files) == 1 else None
    if not requests or broken > requests / 100 or sample is None:
        tail = done.stderr.strip().splitlines()[-3:]
        raise RefusedRun(f"{cls}: {broken} of {requests} requests were errors or timeouts "
                         f"(exit {done.returncode}; {' / '.join(tail)})")  # fmt: skip
    return sample


def measure(
    classes: list[str], args: argparse.Namespace, out: Path, log: Callable[[str], None] = print
) -> dict[str, list[Sample]]:
    """Rounds of one run per class (noise falls on every class alike) against one venue on its
    own core; Locust on the other cores."""
    results: dict[str, list[Sample]] = {c: [] for c in classes}
    split = core_split()
    cores = ",".join(map(str, split[0])) if split else ""
    venue = BenchVenue(tier="unlimited", keys=RUN_KEYS)
    secure = None
    try:
        if any("+tls" in c for c in classes):
            secure = BenchVenue(BENCH_PAIRS, "unlimited", RUN_KEYS, "--tls")
        for n in range(args.runs):
            for cls in classes:
                target = secure if secure is not None and "+tls" in cls else venue
                e = {**target.endpoints, "ca_file": target.ca_file}
                sample = run_locust(cls, e, args, out, cores)
                log(f"  run {n + 1}/{args.runs} {cls:<13}{sample.us_per_request:8.1f} us/request"
                    f"{sample.requests_per_s:9.0f} requests/s")  # fmt: skip
                results[cls].append(sample)
    finally:
        if secure is not None:
            secure.stop()  # first: each gives back the cores it found
        venue.stop()
    return results


def summarize(results: dict[str, list[Sample]]) -> dict[str, dict[str, Any]]:
    """Medians per class, with the ratio to the baseline and the targets."""
    base = statistics.median(s.us_per_request for s in results[BASELINE_CLASS])
    table: dict[str, dict[str, Any]] = {}
    for cls, samples in results.items():
        median = statistics.median(s.us_per_request for s in samples)
        target = TARGET_US.get(cls.partition("@")[0])  # none for NAME+tls
        table[cls] = {
            "median_us": round(median, 2),
            "runs_us": [round(s.us_per_request, 2) for s in samples],
            "median_requests_per_s": round(statistics.median(s.requests_per_s for s in samples)),
            "ratio_to_baseline": round(median / base, 3),
            "target_us": target,
            "meets_us": None if target is None else median <= target,
            "meets_ratio": None if cls == BASELINE_CLASS else median / base <= TARGET_RATIO,
        }
    return table


def table_lines(table: dict[str, dict[str, Any]]) -> list[str]:
    lines = [f"{'generator':<14}{'median us':>10}{'req/s':>9}{'x baseline':>11}{'target us':>10}"]
    for cls, row in table.items():
        target = "" if row["target_us"] is None else f"{row['target_us']:.0f}"
        lines.append(f"{cls:<14}{row['median_us']:>10.1f}{row['median_requests_per_s']:>9}"
                     f"{row['ratio_to_baseline']:>11.2f}{target:>10}")  # fmt: skip
    return lines


def _base_class(name: str) -> str:
    """RestTrader of RestTrader@1, RestTrader+tls, RestTrader+tls@1."""
    return name.partition("@")[0].partition("+tls")[0]


def main(args: argparse.Namespace) -> int:
    traders = [t.strip() for t in args.traders.split(",") if t.strip()]
    unknown = [t for t in traders if _base_class(t) not in (*TRADERS, "Mixed")]
    if unknown or args.users < 1 or args.seconds < 1 or args.runs < 1 or args.pipeline < 1:
        print(
            f"loadgen bench traders: traders are {', '.join(TRADERS)} and Mixed; users, "
            "seconds, runs and pipeline must be at least 1",
            file=sys.stderr,
        )
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        try:
            results = measure([BASELINE_CLASS, *traders], args, Path(tmp))
        except RefusedRun as exc:
            print(f"loadgen bench traders: {exc}; no figures reported", file=sys.stderr)
            return 1
    print(f"generator CPU per request, steady part of {args.runs} runs x {args.seconds} s, "
          f"{args.users} users, Locust and venue on separate cores")  # fmt: skip
    for line in table_lines(summarize(results)):
        print(line)
    return 0
