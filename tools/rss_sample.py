"""Run a command and sample the resident memory of its process tree: the soak's memory figures.

    python tools/rss_sample.py --every 10 --out rss.csv -- loadgen run profiles/soak.toml

Every `--every` seconds it writes one CSV row per process of the tree (elapsed seconds, pid,
role, RSS in MiB), the role read from the command line: `venue` (the embedded venue), `locust`
(Locust's master or local runner), `worker`, or `other`. At the end it prints, per role, the RSS
at the first sample after `--warmup` seconds, at the last sample, and the least-squares growth in
MB/min over the samples after warm-up. The command's exit status is passed on.
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import time
from collections import defaultdict

import psutil

MIB = 1024 * 1024


def role(proc: psutil.Process) -> str:
    try:
        cmd = " ".join(proc.cmdline())
    except psutil.Error:
        return "gone"
    if "loadgen.cli venue" in cmd or "loadgen venue" in cmd:
        return "venue"
    if "--worker" in cmd:
        return "worker"
    if "locust" in cmd:
        return "locust"
    return "other"


def sample(root: psutil.Process) -> list[tuple[int, str, float]]:
    """(pid, role, RSS MiB) of the tree. Workers forked by `--processes` carry the master's
    command line: a Locust process whose parent is Locust is a worker. RSS counts pages shared
    copy-on-write in each process, so a sum over workers is an upper bound."""
    rows = []
    try:
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return rows
    roles = {}
    for proc in procs:
        roles[proc.pid] = role(proc)
    for proc in procs:
        name = roles[proc.pid]
        try:
            if name == "locust" and roles.get(proc.ppid()) == "locust":
                name = "worker"
            rows.append((proc.pid, name, proc.memory_info().rss / MIB))
        except psutil.Error:
            continue
    return rows


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares MiB per minute."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    var = sum((t - mx) ** 2 for t, _ in points)
    if var == 0:
        return 0.0
    return sum((t - mx) * (v - my) for t, v in points) / var * 60.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--every", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=120.0)
    parser.add_argument("--out", required=True)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    child = subprocess.Popen(command)
    root = psutil.Process(child.pid)
    start = time.monotonic()
    series: dict[str, list[tuple[float, float]]] = defaultdict(list)
    with open(args.out, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["elapsed_s", "pid", "role", "rss_mib"])
        while child.poll() is None:
            now = time.monotonic() - start
            by_role: dict[str, float] = defaultdict(float)
            for pid, name, rss in sample(root):
                out.writerow([f"{now:.1f}", pid, name, f"{rss:.2f}"])
                by_role[name] += rss
            fh.flush()
            for name, rss in by_role.items():
                series[name].append((now, rss))
            deadline = time.monotonic() + args.every
            while child.poll() is None and time.monotonic() < deadline:
                time.sleep(0.2)
    print(
        f"{'role':8} {'samples':>7} {'first MiB':>10} {'warm MiB':>9} {'last MiB':>9} "
        f"{'MiB/min after warm-up':>22}"
    )
    for name, points in sorted(series.items()):
        warm = [(t, v) for t, v in points if t >= args.warmup]
        first_warm = warm[0][1] if warm else float("nan")
        print(
            f"{name:8} {len(points):7d} {points[0][1]:10.1f} {first_warm:9.1f} "
            f"{points[-1][1]:9.1f} {slope(warm):22.3f}"
        )
    return child.returncode


if __name__ == "__main__":
    sys.exit(main())
