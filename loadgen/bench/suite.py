"""`loadgen bench`: the whole yardstick in one command, for capacity planning.

Four parts, each a median of several runs where it is a cost, written to
results/bench-<timestamp>/ as bench.json (every run's figure) and table.txt (what is printed):

1. venue cost: the venue's CPU microseconds per order request, per protocol (bench venue);
2. generator cost: Locust's CPU microseconds per request for each trader, pipelined as the
   throughput profile runs them and one at a time, for the three at once (Mixed), and for stock
   Locust FastHttpUser sending the same signed REST orders, in the same rounds (bench traders);
   the venue has its own core, so its cost stays out of the figure; and each trader again
   over TLS (NAME+tls: https, wss, FIX tls:// to a second venue serving TLS only);
3. scaling: profiles/throughput.toml from 1 and 2 Locust worker processes (more where the
   machine has the cores), the venue and the workers sharing every core (`--no-pin`);
4. end to end: the same profile with its 60 s hold, from the worker count that scaled best:
   sustained requests per minute and P50/P99 at that rate.
5. wire truth: loadgen's latency percentiles held against a tcpdump capture of the same run,
   quiet, with a CPU hog beside the venue, and at 5,000 requests/s (bench wire; skipped, and
   said so, where tcpdump cannot run);
6. open loop: one worker's P99 at 1,000 requests/s and its ceiling (bench openloop);
7. the master's limit: one Locust master's CPU and write lag with 10 to 500 simulated
   workers, and how many workers it takes (bench master);
8. market data: the venue's CPU per book update per subscriber, and the subscribers one worker
   holds with their fan-out latency (bench marketdata).

Then the capacity line: generator and venue cores needed for 1,000,000 requests/min at the
measured costs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from loadgen import native
from loadgen.bench import marketdata, openloop, traders, venue
from loadgen.bench import master as master_bench
from loadgen.bench import wire as wire_bench
from loadgen.bench.runs import loadgen_run
from loadgen.wire import capture

ROOT = Path(__file__).resolve().parents[2]
THROUGHPUT = ROOT / "profiles" / "throughput.toml"
GOAL_RPS = 1_000_000 / 60
PIPELINE = 16  # as profiles/throughput.toml runs the traders
GENERATORS = ("FastHttpUser", "RestTrader@1", "RestTrader", "WsTrader", "FixTrader", "Mixed",
              "RestTrader+tls", "WsTrader+tls", "FixTrader+tls")  # fmt: skip
# The venue's budgets hold on the machine where stock FastHttpUser costs ~280 us a request
# (issue 14); on another machine they scale by the baseline measured in the same run.
FASTHTTP_REFERENCE_US = 280.0
VENUE_BUDGET_US = {"rest": 30.0, "ws": 20.0, "fix": 20.0}


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runs", type=int, default=3, help="runs of each cost, median taken (3)")
    p.add_argument("--seconds", type=int, default=10, help="seconds per generator run (10)")
    p.add_argument("--hold", type=int, default=60, help="end-to-end seconds held (default 60)")
    p.add_argument(
        "--scale-seconds", type=int, default=20, help="seconds of each scaling run (default 20)"
    )
    p.add_argument(
        "--workers",
        default="",
        help="worker counts to scale over, e.g. 1,2,4 (default 1,2, and up to the cores "
        "less one on a bigger machine)",
    )
    p.add_argument("--results", default="results", help="where bench-<timestamp>/ goes")
    p.add_argument(
        "--quick",
        action="store_true",
        help="one short run of everything (a check that it all works, not figures to quote)",
    )


def worker_counts(spec: str) -> list[int]:
    if spec:
        counts = sorted({int(w) for w in spec.split(",") if w.strip()})
        if not counts or counts[0] < 1:
            raise ValueError("--workers: a comma list of counts from 1")
        return counts
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 2
    counts, n = [1, 2], 4
    while n <= cores - 1:
        counts.append(n)
        n *= 2
    return counts


def throughput_run(workers: int, seconds: int, out: Path, log: Any) -> dict[str, Any]:
    """One `loadgen run profiles/throughput.toml`: its held stage's figures."""
    stages = 4 + seconds  # the profile's 4 s ramp, then the hold
    run_dir, done = loadgen_run(THROUGHPUT, out, "throughput", stages, "--workers", str(workers),
                                "--no-pin", "--duration", f"{stages}s")  # fmt: skip
    summary = json.loads((run_dir / "summary.json").read_text())
    hold = summary["levels"][-1]
    meta = json.loads((run_dir / "run.json").read_text()) if (run_dir / "run.json").exists() else {}
    row = {
        "workers": workers,
        "seconds": hold["seconds"],
        "requests_per_s": hold["throughput_rps"],
        "requests_per_min": round(hold["throughput_rps"] * 60),
        "p50_us": hold["p50"],
        "p99_us": hold["p99"],
        "error_share": hold["error_share"],
        "rate_limited_share": hold["rate_limited_share"],
        "rejected_share": _rejected_share(summary),
        "generator_cpu_s": meta.get("generator_cpu_s"),
        "exit": done.returncode,
        "verdict": summary["verdict"]["status"],  # a throughput hold is generator-bound by design
        "run_dir": str(run_dir),
    }
    log(
        f"  {workers} worker(s): {row['requests_per_s']:,.0f} requests/s held {row['seconds']} s"
        f", P50 {row['p50_us'] / 1000:.1f} ms, P99 {row['p99_us'] / 1000:.1f} ms"
    )
    return row


def _rejected_share(summary: dict[str, Any]) -> float:
    totals = summary["totals"]
    return round(totals["outcomes"]["rejected"] / totals["count"], 4) if totals["count"] else 0.0


def venue_costs(args: argparse.Namespace) -> dict[str, Any]:
    ns = argparse.Namespace(
        requests=4000 if args.quick else 20000, runs=args.runs, connections=8, window=32,
        pairs=venue.BENCH_PAIRS, tier="pro",
    )  # fmt: skip
    bv = venue.BenchVenue(ns.pairs, ns.tier)
    try:
        report = venue.bench_all(list(venue.TARGET_US), bv, ns)
    finally:
        bv.stop()
    return venue.summarize(report)


def main(args: argparse.Namespace) -> int:
    if args.quick:
        args.runs, args.seconds, args.hold, args.scale_seconds = 1, 5, 8, 6
    try:
        counts = worker_counts(args.workers)
    except ValueError as exc:
        print(f"loadgen bench: {exc}", file=sys.stderr)
        return 2
    if min(args.runs, args.seconds, args.hold, args.scale_seconds) < 1:
        print("loadgen bench: --runs, --seconds, --hold, --scale-seconds must be >= 1",
              file=sys.stderr)  # fmt: skip
        return 2
    out = Path(args.results) / f"bench-{time.strftime('%Y%m%d-%H%M%S')}"
    (out / "runs").mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"started": time.time(), "quick": args.quick,
                              "machine": {"cores": os.cpu_count(), "modules": native.running()},
                              "goal_rps": GOAL_RPS}  # fmt: skip

    def log(line: str) -> None:
        print(line, flush=True)

    log(f"loadgen bench -> {out}")
    log("venue cost (bench venue)")
    result["venue"] = venue_costs(args)
    log("generator cost (bench traders)")
    gen_args = argparse.Namespace(users=48, seconds=args.seconds, runs=args.runs, pipeline=PIPELINE)
    try:
        samples = traders.measure(list(GENERATORS), gen_args, out / "runs", log=log)
    except traders.RefusedRun as exc:
        print(f"loadgen bench: {exc}; no figures reported", file=sys.stderr)
        return 1
    result["generator"] = traders.summarize(samples)
    log("scaling (profiles/throughput.toml, --no-pin)")
    result["scaling"] = [throughput_run(w, args.scale_seconds, out / "runs", log) for w in counts]
    best = max(result["scaling"], key=lambda r: r["requests_per_s"])["workers"]
    log(f"end to end ({best} workers, {args.hold} s held)")
    result["end_to_end"] = throughput_run(best, args.hold, out / "runs", log)
    result["capacity"] = capacity(result)
    result["wire"] = wire_part(args, out / "runs", log)
    log("open loop (bench openloop)")
    ol_args = argparse.Namespace(runs=args.runs, seconds=5 if args.quick else 20,
                                 step_seconds=3 if args.quick else 10)  # fmt: skip
    result["open_loop"] = openloop.measure(ol_args, out / "runs", log)
    log("the master's limit (bench master)")
    m_args = argparse.Namespace(counts="10" if args.quick else ",".join(map(str, master_bench.COUNTS)),
                                seconds=3 if args.quick else 10)  # fmt: skip
    try:
        result["master"] = master_bench.measure(m_args, out / "runs", log)
    except (
        RuntimeError,
        OSError,
        ValueError,
        subprocess.SubprocessError,
    ) as exc:  # the rest stands
        log(f"the master's limit: not measured ({exc})")
        result["master"] = str(exc)
    log("market data (bench marketdata)")
    md_args = argparse.Namespace(runs=args.runs, seconds=2 if args.quick else 10,
                                 subscribers=100 if args.quick else marketdata.TARGET_HELD,
                                 hold_seconds=4 if args.quick else 20)  # fmt: skip
    try:
        result["market_data"] = marketdata.measure(md_args, out / "runs", log)
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:  # the rest stands
        log(f"market data: not measured ({exc})")
        result["market_data"] = str(exc)
    result["finished"] = time.time()
    lines = table(result)
    (out / "bench.json").write_text(json.dumps(result, indent=1))
    (out / "table.txt").write_text("\n".join(lines) + "\n")
    print()
    for line in lines:
        print(line)
    return 0


def wire_part(args: argparse.Namespace, folder: Path, log: Any) -> list[dict[str, Any]] | str:
    """The wire-truth cases, or why they could not run here."""
    problem = capture.available() or ("" if os.geteuid() == 0 else "capturing needs root")
    if problem:
        log(f"wire truth: skipped ({problem})")
        return problem
    cases = []
    for name, case in wire_bench.CASES.items():
        if args.quick and name != "quiet":
            continue  # --quick: a check that it works, one case
        log(f"wire truth: {case.name}")
        seconds = 5 if args.quick else 15
        cases.append(wire_bench.run_case(case, seconds, folder / f"wire-{name}", log))
    return cases


def capacity(result: dict[str, Any]) -> dict[str, Any]:
    """Cores for 1M requests/min at the measured costs (Mixed generator; the venue's mean)."""
    gen_us = result["generator"]["Mixed"]["median_us"]
    venue_us = statistics.mean(v["median_us"] for v in result["venue"].values())
    return {
        "generator_us_per_request": gen_us,
        "venue_us_per_request": round(venue_us, 2),
        "generator_cores": round(GOAL_RPS * gen_us / 1e6, 2),
        "venue_cores": round(GOAL_RPS * venue_us / 1e6, 2),
        "worker_cores_needed": math.ceil(GOAL_RPS * gen_us / 1e6),
        "requests_per_s_per_worker_core": round(1e6 / gen_us),
    }


def table(r: dict[str, Any]) -> list[str]:
    runs = "1 run (--quick: not figures to quote)" if r["quick"] else "medians"
    modules = r["machine"].get("modules", "")
    lines = [f"loadgen bench: {r['machine']['cores']} cores, {runs}; modules {modules}", ""]
    lines.append(f"{'venue':<14}{'us/request':>11}{'target':>8}")
    for protocol, row in r["venue"].items():
        lines.append(f"{protocol:<14}{row['median_us']:>11.1f}{row['target_us']:>8.0f}")
    lines.append("")
    lines.append(f"generator (pipeline {PIPELINE} unless @1; venue on its own core)")
    lines += traders.table_lines(r["generator"])
    lines.append("")
    lines.append(f"{'workers':<9}{'requests/min':>14}{'P50 ms':>8}{'P99 ms':>8}{'errors':>8}"
                 f"{'rejected':>10}")  # fmt: skip
    for row in r["scaling"]:
        lines.append(_run_line(str(row["workers"]), row))
    e = r["end_to_end"]
    lines.append(_run_line(f"{e['workers']} (e2e)", e) + f"  held {e['seconds']} s")
    c = r["capacity"]
    met = "met" if e["requests_per_min"] >= 1_000_000 and e["error_share"] <= 0.001 else "not met"
    lines += [
        "",
        f"end to end: {e['requests_per_min']:,} requests/min sustained for {e['seconds']} s, venue "
        f"included (goal 1,000,000: {met})",
        f"capacity: at {c['generator_us_per_request']:.1f} us/request a worker core sends "
        f"{c['requests_per_s_per_worker_core']:,}/s; 1M requests/min needs "
        f"{c['worker_cores_needed']} worker core(s) ({c['generator_cores']:.2f}) plus "
        f"{c['venue_cores']:.2f} venue core(s) at {c['venue_us_per_request']:.1f} us/request",
    ]
    lines.append("")
    if isinstance(r["wire"], str):
        lines.append(f"wire truth: not measured ({r['wire']})")
    else:
        lines += wire_bench.table_lines(r["wire"])
    lines.append("")
    lines += openloop.table_lines(r["open_loop"])
    lines.append("")
    if isinstance(r["master"], str):
        lines.append(f"the master's limit: not measured ({r['master']})")
    else:
        lines += master_bench.table_lines(r["master"])
    lines.append("")
    md = r.get("market_data")
    if isinstance(md, dict):
        lines += marketdata.table_lines(md)
    elif md:
        lines.append(f"market data: not measured ({md})")
    lines += ["", *targets(r)]
    if isinstance(md, dict):
        h = md["held"]
        lines += ["targets (issue 18)",
                  f"  {'met' if h['met'] else 'NOT met':<8} one worker holds >= "
                  f"{marketdata.TARGET_HELD:,} book subscribers, fan-out P99 < 50 ms, no checksum "
                  f"failure, orders at 1,000 req/s: {h['held']:,} held, P99 "
                  f"{h['fanout_us'].get('p99', 0) / 1000:.1f} ms, {h['checksum_failures']} "
                  f"failures, {h['orders_rps']:,.0f} req/s"]  # fmt: skip
    return lines


def targets(r: dict[str, Any]) -> list[str]:
    """Issue 14's targets, each met or not, from this run's figures."""
    base = r["generator"][traders.BASELINE_CLASS]["median_us"]
    scale = base / FASTHTTP_REFERENCE_US  # slower machines: the venue's budget scales with it
    mixed = r["generator"]["Mixed"]["median_us"] / base
    e = r["end_to_end"]
    rows = [
        ("generator Mixed <= 0.15x FastHttpUser", f"{mixed:.2f}x", mixed <= 0.15),
        (
            "end to end >= 1,000,000 requests/min, errors <= 0.1%",
            f"{e['requests_per_min']:,}/min, {e['error_share']:.2%}",
            e["requests_per_min"] >= 1_000_000 and e["error_share"] <= 0.001,
        ),
    ]
    for protocol, row in r["venue"].items():
        budget = VENUE_BUDGET_US.get(protocol, 20.0) * scale
        rows.append((f"venue {protocol} <= {budget:.0f} us (scaled x{scale:.2f} by FastHttpUser)",
                     f"{row['median_us']:.1f} us", row["median_us"] <= budget))  # fmt: skip
    if not isinstance(r["wire"], str):
        for case in r["wire"]:
            busy = case.get("generator")
            where = "within" if case["met"] else "outside"
            if busy and not case["met"]:  # what the generator was doing: the likely cause
                where += f" (generator {wire_bench.generator_text(busy)})"
            rows.append((f"wire truth, {case['case']}", where, case["met"]))
    ol = r["open_loop"]
    rows.append(("open loop 1,000 req/s: P99 <= 5 ms, < 1% late",
                 f"{ol['at_1000']['p99_us'] / 1000:.2f} ms, {ol['at_1000']['late_share']:.2%}",
                 ol["at_1000"]["met"]))  # fmt: skip
    rows.append(("open loop ceiling per worker >= 10,000 req/s",
                 f"{ol['ceiling']['held_rps']:,.0f} held", ol["ceiling"]["met"]))  # fmt: skip
    out = ["targets (issue 14)"]
    out += [f"  {'met' if ok else 'NOT met':<8} {name}: {value}" for name, value, ok in rows]
    return out


def _run_line(label: str, row: dict[str, Any]) -> str:
    return (
        f"{label:<9}{row['requests_per_min']:>14,}{row['p50_us'] / 1000:>8.1f}"
        f"{row['p99_us'] / 1000:>8.1f}{row['error_share']:>8.2%}{row['rejected_share']:>10.1%}"
    )
