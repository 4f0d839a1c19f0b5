"""`loadgen bench openloop`: the open loop on one Locust worker against the embedded venue.

Two figures (issue 14), each the median of `--runs` runs of `loadgen run` (one worker, the venue
pinned to its own core, tier unlimited so every request is order entry):

- at 1,000 requests/s (150 users): the P99 of the response time (from the intended send, the
  figure open-loop reports give) and the share of sends that went late, for whatever reason;
  target P99 <= 5 ms with under 1% late;
- the ceiling: steps of offered load on one worker; the highest step the worker held (at least
  98% of the offered rate achieved, under 1% of sends late by the generator's fault), and the
  most it achieved at any step; target: holds 10,000 requests/s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from loadgen.bench.runs import loadgen_run

AT_RATE = 1000
AT_USERS = 150
CEILING_STEPS = (6000, 8000, 10000, 12000, 14000)
CEILING_USERS = 600
WARMUP_RATE, WARMUP_S = 2000, 5
HELD_SHARE = 0.98  # of the offered rate achieved: the step was held
LATE_SHARE = 0.01
TARGET_P99_US = 5000
TARGET_CEILING = 10000


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runs", type=int, default=3, help="runs of each figure, median taken (3)")
    p.add_argument("--seconds", type=int, default=20, help="seconds at 1,000 req/s (default 20)")
    p.add_argument("--step-seconds", type=int, default=10, help="seconds per ceiling step (10)")
    p.add_argument("--results", default="results", help="where bench-openloop-*/ goes")


def profile(name: str, users: int, steps: list[tuple[int, int]]) -> str:
    """An open-loop profile on the embedded venue: (rate, seconds) steps for `users` users."""
    stages = "".join(
        f'[[stages]]\nkind = "step"\nduration = "{seconds}s"\nusers = {users}\nrate = {rate}\n'
        for rate, seconds in steps
    )
    return (
        f'name = "{name}"\ndescription = "loadgen bench openloop"\n[target]\nvenue = "embedded"\n'
        'tier = "unlimited"\n[users]\nrest = 1\nws = 1\nfix = 1\n[load]\nloop = "open"\n'
        f"max_rate = {max(r for r, _ in steps) * 2}\nspawn_rate = {users}\n{stages}"
    )


def run(folder: Path, name: str, text: str, seconds: int) -> dict[str, Any]:
    """One `loadgen run` of a profile: its summary."""
    path = folder / f"{name}.toml"
    path.write_text(text)
    run_dir, _ = loadgen_run(path, folder, name, seconds)
    return json.loads((run_dir / "summary.json").read_text())


def at_rate(folder: Path, seconds: int) -> dict[str, Any]:
    s = run(folder, "ol-1000", profile("ol-1000", AT_USERS, [(AT_RATE, seconds)]), seconds)
    level = s["levels"][-1]
    sent = s["totals"]["count"] or 1
    late = s["run"]["late_sends"] + s["run"]["late_sends_venue"]
    return {"p99_us": level["p99"], "p50_us": level["p50"], "late_share": round(late / sent, 5),
            "throughput_rps": level["throughput_rps"]}  # fmt: skip


def ceiling(folder: Path, step_s: int) -> dict[str, Any]:
    # a first, unjudged step while the users start (each connects and logs on)
    steps = [(WARMUP_RATE, WARMUP_S)] + [(rate, step_s) for rate in CEILING_STEPS]
    total = sum(seconds for _, seconds in steps)
    s = run(folder, "ol-ceiling", profile("ol-ceiling", CEILING_USERS, steps), total)
    held, top, rows, holding = 0, 0.0, [], True
    for rate, level in zip(CEILING_STEPS, s["levels"][1:], strict=False):
        count = level["throughput_rps"] * level["seconds"] or 1
        kept = level["throughput_rps"] >= HELD_SHARE * rate and level["late"] / count < LATE_SHARE
        holding = holding and kept  # held: this step and every one below it
        if holding:
            held = rate
        top = max(top, level["throughput_rps"])
        rows.append({"offered": rate, "achieved": level["throughput_rps"],
                     "late_share": round(level["late"] / count, 4), "held": kept,
                     "generator_cpu": round(level["cpu_s"] / level["seconds"], 3)
                     if level["seconds"] else None})  # fmt: skip
    return {"held_rps": held, "top_rps": top, "steps": rows}


def first_missed(runs: list[dict[str, Any]]) -> str:
    """What stopped the median run (the lower of the middle two of an even count): its first
    step not held, with its late share and the generator's CPU there (a figure names its
    cause)."""
    ranked = sorted(runs, key=lambda r: (r["held_rps"], r["top_rps"]))
    run = ranked[(len(ranked) - 1) // 2]
    missed = next((s for s in run["steps"] if not s["held"]), None)
    if missed is None:
        return ""
    cpu = missed.get("generator_cpu")
    return (f"; first step not held: {missed['offered']:,}/s, {missed['achieved']:,.0f} achieved, "
            f"{missed['late_share']:.1%} of sends late"
            + (f", generator at {cpu:.2f} of its core" if cpu is not None else ""))  # fmt: skip


def summarize(runs_at: list[dict[str, Any]], runs_ceiling: list[dict[str, Any]]) -> dict[str, Any]:
    p99 = statistics.median(r["p99_us"] for r in runs_at)
    late = statistics.median(r["late_share"] for r in runs_at)
    held = statistics.median(r["held_rps"] for r in runs_ceiling)
    top = statistics.median(r["top_rps"] for r in runs_ceiling)
    return {
        "at_1000": {"p99_us": p99, "late_share": late, "runs": runs_at,
                    "met": p99 <= TARGET_P99_US and late < LATE_SHARE},
        "ceiling": {"held_rps": held, "top_rps": top, "runs": runs_ceiling,
                    "met": held >= TARGET_CEILING, "stopped_by": first_missed(runs_ceiling)},
    }  # fmt: skip


def measure(args: argparse.Namespace, folder: Path, log: Any = print) -> dict[str, Any]:
    runs_at, runs_ceiling = [], []
    for i in range(args.runs):
        runs_at.append(at_rate(folder, args.seconds))
        log(f"  1,000 req/s run {i + 1}: P99 {runs_at[-1]['p99_us'] / 1000:.2f} ms, "
            f"{runs_at[-1]['late_share']:.2%} late")  # fmt: skip
        runs_ceiling.append(ceiling(folder, args.step_seconds))
        log(f"  ceiling run {i + 1}: held {runs_ceiling[-1]['held_rps']:,} req/s, top "
            f"{runs_ceiling[-1]['top_rps']:,.0f} req/s")  # fmt: skip
    return summarize(runs_at, runs_ceiling)


def table_lines(r: dict[str, Any]) -> list[str]:
    a, c = r["at_1000"], r["ceiling"]
    return [
        f"open loop, one worker: at 1,000 req/s P99 {a['p99_us'] / 1000:.2f} ms, "
        f"{a['late_share']:.2%} late (target P99 <= 5 ms, < 1% late: "
        f"{'met' if a['met'] else 'NOT met'})",
        f"open loop, one worker: ceiling {c['held_rps']:,.0f} req/s held, "
        f"{c['top_rps']:,.0f} req/s at most (target 10,000 held: "
        f"{'met' if c['met'] else 'NOT met'}){c.get('stopped_by', '')}",
    ]


def main(args: argparse.Namespace) -> int:
    if min(args.runs, args.seconds, args.step_seconds) < 1:
        print("loadgen bench openloop: --runs, --seconds, --step-seconds must be >= 1",
              file=sys.stderr)  # fmt: skip
        return 2
    out = Path(args.results)
    out.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="bench-openloop-", dir=out))
    print(f"loadgen bench openloop -> {folder}", flush=True)
    result = measure(args, folder)
    lines = table_lines(result)
    (folder / "openloop.json").write_text(json.dumps(result, indent=1))
    (folder / "table.txt").write_text("\n".join(lines) + "\n")
    print("\n" + "\n".join(lines))
    return 0 if result["at_1000"]["met"] and result["ceiling"]["met"] else 1
