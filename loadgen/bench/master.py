"""`loadgen bench master`: how many workers one Locust master takes, measured.

Locust's known pain past one machine is a master pegged by its workers' reports (a master is
one process, one core, and every worker's report passes through it). Here the real master
(`locustfiles/profile.py --master`, loadgen's recording and results writer) takes the reports
of 10, 50, 200 and 500 simulated workers (loadgen.bench.mastersim: real Locust WorkerRunners in one
process, reporting Locust's stats and loadgen's windows as busy mixed workers do), the master on
a core of its own and the simulator on another. Per count: the master's CPU seconds per second
and the lag from a report leaving a worker to its windows being written.

From those, the workers one master takes: the CPU a worker costs it (the slope between the
smallest and largest counts) into MASTER_BUDGET of a core, the rest left for its event loop to
answer heartbeats on time (a master late on those loses workers: Locust's other known pain).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from loadgen.run import free_port

ROOT = Path(__file__).resolve().parents[2]
LOCUSTFILE = ROOT / "locustfiles" / "profile.py"
COUNTS = (10, 50, 200, 500)
MASTER_BUDGET = 0.7  # share of a core a master may spend on reports and still keep time
SIM_SATURATED = 0.9  # the simulator's core this busy: its workers report late
SETTLE_S = 4.0  # after every worker runs: the first reports in, before the measurement
PROFILE = """name = "bench-master"
[target]
venue = "embedded"
[users]
rest = 1
ws = 1
fix = 1
[load]
loop = "closed"
max_rate = 1000000
spawn_rate = {spawn}
[[stages]]
duration = "{seconds}s"
users = {users}
"""


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--counts", default=",".join(map(str, COUNTS)),
                   help="simulated worker counts, comma separated (default 10,50,200,500)")  # fmt: skip
    p.add_argument("--seconds", type=int, default=15, help="seconds measured per count (15)")
    p.add_argument("--results", default="results", help="where bench-master-<timestamp>/ goes")


def measure_one(workers: int, seconds: int, folder: Path) -> dict[str, Any]:
    """One master and `workers` simulated workers: the master's CPU and write lag."""
    folder.mkdir(parents=True, exist_ok=True)
    spawn_s = max(2.0, workers / 100)
    total = int(SETTLE_S + spawn_s + seconds + 6)  # then the shape ends: stop, last windows
    profile = folder / "bench-master.toml"
    profile.write_text(PROFILE.format(seconds=total, users=3 * workers, spawn=3 * workers))
    port = free_port()
    results = folder / "run"
    cores = sorted(os.sched_getaffinity(0))
    pin = (["taskset", "-c", str(cores[0])], ["taskset", "-c", str(cores[-1])])
    if len(cores) < 2 or not shutil.which("taskset"):
        pin = ([], [])
    env = dict(os.environ, LOADGEN_PROFILE=str(profile))
    cmd = [*pin[0], sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--master",
           "--headless", "--only-summary", "--expect-workers", str(workers),
           "--expect-workers-max-wait", "120", "--master-bind-host", "127.0.0.1",
           "--master-bind-port", str(port), "--host", "http://127.0.0.1:9",
           "--results-dir", str(results)]  # fmt: skip
    with open(folder / "master.log", "w") as log:
        master = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        out = folder / "sim.json"
        spec = {"host": "127.0.0.1", "port": port, "workers": workers, "master_pid": master.pid,
                "windows": str(results / "windows.jsonl"), "settle_s": SETTLE_S,
                "measure_s": seconds, "timeout_s": 120 + spawn_s, "out": str(out)}  # fmt: skip
        with open(folder / "sim.log", "w") as log:
            sim = subprocess.run([*pin[1], sys.executable, "-m", "loadgen.bench.mastersim",
                                  json.dumps(spec)], stdout=log, stderr=subprocess.STDOUT,
                                 timeout=total + 180, check=False)  # fmt: skip
        if not out.exists():
            lines = (folder / "sim.log").read_text().strip().splitlines()
            tail = " / ".join(lines[-3:])
            raise RuntimeError(
                f"the master simulator wrote nothing (exit {sim.returncode}): {tail}"
            )
        result = json.loads(out.read_text())
        if "error" in result:
            raise RuntimeError(result["error"])
        master.wait(timeout=60)
        result["master_exit"] = master.returncode
        return result
    finally:
        if master.poll() is None:
            master.kill()
            master.wait()


def takes(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Workers one master takes within MASTER_BUDGET of a core, from the measured slope."""
    lo, hi = min(rows, key=lambda r: r["workers"]), max(rows, key=lambda r: r["workers"])
    span = hi["workers"] - lo["workers"]
    per_worker = (hi["master_cpu_per_s"] - lo["master_cpu_per_s"]) / span if span else 0.0
    per_worker = per_worker if per_worker > 0 else hi["master_cpu_per_s"] / hi["workers"]
    base = max(0.0, lo["master_cpu_per_s"] - per_worker * lo["workers"])
    return {
        "cpu_per_worker_s": round(per_worker, 6),
        "base_cpu_s": round(base, 4),
        "workers_per_master": int(round((MASTER_BUDGET - base) / per_worker, 6))
        if per_worker
        else 0,
        "budget": MASTER_BUDGET,
    }


def measure(args: argparse.Namespace, folder: Path, log: Any) -> dict[str, Any]:
    counts = sorted({int(c) for c in str(args.counts).split(",") if c.strip()})
    rows = []
    for n in counts:
        row = measure_one(n, args.seconds, folder / f"master-{n}")
        log(f"  {n} workers: master {row['master_cpu_per_s']:.3f} CPU-s/s (max "
            f"{row['master_cpu_per_s_max']:.3f}), write lag P50 {row['lag_ms']['p50']:.1f} ms, "
            f"P99 {row['lag_ms']['p99']:.1f} ms, {row['windows_per_s']:.0f} windows/s")  # fmt: skip
        if row["simulator_cpu_per_s"] > SIM_SATURATED:
            log(f"  (the simulator used {row['simulator_cpu_per_s']:.2f} of its core: at {n} "
                "workers the master's figures are a floor)")  # fmt: skip
        rows.append(row)
    return {"rows": rows, "takes": takes(rows)}


def table_lines(r: dict[str, Any]) -> list[str]:
    lines = [f"{'master':<9}{'CPU-s/s':>9}{'max':>7}{'windows/s':>11}{'lag P50':>9}"
             f"{'P99':>8}{'max':>8}  (ms; + Locust's 3 s report interval)"]  # fmt: skip
    for row in r["rows"]:
        lag = row["lag_ms"]
        lines.append(f"{row['workers']:<9}{row['master_cpu_per_s']:>9.3f}"
                     f"{row['master_cpu_per_s_max']:>7.2f}{row['windows_per_s']:>11.0f}"
                     f"{lag['p50']:>9.1f}{lag['p99']:>8.1f}{lag['max']:>8.1f}")  # fmt: skip
    t = r["takes"]
    most = max(row["workers"] for row in r["rows"])
    past = " (extrapolated past the counts measured)" if t["workers_per_master"] > most else ""
    lines.append(f"one master takes ~{t['workers_per_master']:,} workers within "
                 f"{t['budget']:.0%} of a core ({t['cpu_per_worker_s'] * 1000:.2f} ms CPU a "
                 f"second per worker){past}")  # fmt: skip
    return lines


def main(args: argparse.Namespace) -> int:
    out = Path(args.results) / f"bench-master-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    print(f"loadgen bench master -> {out}", flush=True)
    try:
        result = measure(args, out, lambda line: print(line, flush=True))
    except (RuntimeError, subprocess.TimeoutExpired, ValueError) as exc:
        print(f"loadgen bench master: {exc}", file=sys.stderr)
        return 1
    (out / "bench.json").write_text(json.dumps(result, indent=1))
    lines = table_lines(result)
    (out / "table.txt").write_text("\n".join(lines) + "\n")
    print()
    for line in lines:
        print(line)
    return 0
