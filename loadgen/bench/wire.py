"""`loadgen bench wire`: loadgen's latency figures held against a packet capture of the same run.

A venue runs on its own (as any URL target would), tcpdump captures its three ports on the
loopback device, and `loadgen run` drives an open-loop profile at it: `rate` requests/s over
all three protocols for `seconds`. Then, per protocol, the percentiles of the service latency
loadgen recorded (sent to answered) are compared with the same percentiles of the capture's
request-to-reply times (wire/match.py). The bound (issue 14): within 5% or 50 us, whichever is
larger, on a quiet machine; 10% or 100 us with a CPU hog on the venue's core, or at 5,000
requests/s. The hog is a busy loop pinned beside the venue, so replies come later and the
generator's own core is untouched: the case where a stamp taken when a greenlet runs, not when
the bytes came, would be off.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadgen.bench.runs import loadgen_run
from loadgen.metrics.store import read_windows
from loadgen.report.analysis import WHOLE_S, generator, tally
from loadgen.venue.process import VenueProcess, core_split
from loadgen.wire import capture, match, pcap

PROTOCOLS = ("rest", "ws", "fix")
PERCENTILES = (25.0, 50.0, 95.0, 99.0)
USERS_PER_PROTOCOL = 10
TIGHT = (0.05, 50)  # share of the wire's figure, or microseconds: whichever is larger
LOOSE = (0.10, 100)  # with a CPU hog, or at 5,000 requests/s


@dataclass(frozen=True)
class Case:
    name: str
    rate: int  # requests/s over all three protocols
    hog: bool  # a busy loop on the venue's core
    bound: tuple[float, int]


CASES = {
    "quiet": Case("quiet, 200 req/s", 200, False, TIGHT),
    "hog": Case("CPU hog on the venue's core, 200 req/s", 200, True, LOOSE),
    "fast": Case("quiet, 5,000 req/s", 5000, False, LOOSE),
}


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seconds", type=int, default=20, help="seconds each case runs (default 20)")
    p.add_argument("--cases", default=",".join(CASES), help=f"comma list of {', '.join(CASES)}")
    p.add_argument("--results", default="results", help="where bench-wire-<timestamp>/ goes")


def within(reported: int, wire: int, bound: tuple[float, int]) -> bool:
    share, floor = bound
    return abs(reported - wire) <= max(share * wire, floor)


def profile(venue: VenueProcess, keys_file: Path, rate: int, seconds: int) -> str:
    """An open-loop profile aimed at `venue` as a URL target: `rate` requests/s."""
    users = USERS_PER_PROTOCOL * len(PROTOCOLS)
    e = venue.endpoints
    return f"""name = "wire"
description = "open loop at {rate} requests/s, all three protocols, against a captured venue"
[target]
venue = "url"
rest = "{e["rest"]}"
ws = "{e["ws"]}"
fix = "{e["fix"]}"
keys_file = "{keys_file}"
tier = "pro"
[users]
rest = 1
ws = 1
fix = 1
[flow]
pairs = {{ XBTUSD = 3, ETHUSD = 2, SOLUSD = 1, XRPUSD = 1 }}
cross_share = 0.1
[load]
loop = "open"
max_rate = {rate * 2}
spawn_rate = {users}
[[stages]]
kind = "step"
duration = "{seconds}s"
users = {users}
rate = {rate}
"""


def ports(venue: VenueProcess) -> dict[str, int]:
    return {p: int(urllib.parse.urlsplit(venue.endpoints[p]).port or 0) for p in PROTOCOLS}


def run_case(case: Case, seconds: int, folder: Path, log: Callable[[str], None]) -> dict[str, Any]:
    """One captured run: per protocol, loadgen's percentiles beside the wire's."""
    folder.mkdir(parents=True, exist_ok=True)
    split = core_split()
    venue_core = split[1] if split else None
    venue = VenueProcess("--keys", str(USERS_PER_PROTOCOL * len(PROTOCOLS) + 4), "--tier", "pro",
                         "--fix-rollover", "off", cpu=venue_core, log_dir=folder)  # fmt: skip
    hog = None
    try:
        keys_file = folder / "keys.json"
        keys_file.write_text(json.dumps(venue.keys))
        keys_file.chmod(0o600)
        (folder / "wire.toml").write_text(profile(venue, keys_file, case.rate, seconds))
        where = ports(venue)
        with capture.Capture(folder, list(where.values())) as cap:
            if case.hog:
                hog = _hog(venue_core)
            run_dir, done = loadgen_run(folder / "wire.toml", folder / "results", "wire", seconds,
                                        prefix=_pinned(split))  # fmt: skip
            wire_bytes = cap.stop()
    finally:
        if hog is not None:
            hog.kill()
            hog.wait()
        venue.stop()
        (folder / "keys.json").unlink(missing_ok=True)
    windows = read_windows(run_dir)
    conns = pcap.connections(pcap.segments(wire_bytes), set(where.values()))
    wire = match.latencies(conns, where)
    rows = {}
    for protocol in PROTOCOLS:
        reported = tally(windows, False, f"{protocol}/*").latency
        values = wire[protocol]
        row: dict[str, Any] = {"loadgen_count": reported.count, "wire_count": len(values)}
        ok = bool(values) and reported.count > 0
        for p in PERCENTILES:
            mine, theirs = reported.percentile(p), match.percentile(values, p)
            row[f"p{p:g}"] = {"loadgen_us": mine, "wire_us": theirs}
            ok = ok and within(mine, theirs, case.bound)
        row["within_bound"] = ok
        rows[protocol] = row
        log(f"  {protocol}: " + ", ".join(
            f"P{p:g} {row[f'p{p:g}']['loadgen_us']}/{row[f'p{p:g}']['wire_us']} us"
            for p in PERCENTILES) + f" (loadgen/wire, {len(values)} on the wire)"
            + ("" if ok else "  OUT OF BOUND"))  # fmt: skip
    (folder / "wire.pcap").unlink(missing_ok=True)  # large; the figures are kept
    busy = generator([w for w in windows if w.span >= WHOLE_S])  # the load's seconds
    log(f"  generator: {generator_text(busy)}")
    return {"case": case.name, "rate": case.rate, "hog": case.hog, "bound": list(case.bound),
            "exit": done.returncode, "protocols": rows, "generator": busy,
            "met": all(r["within_bound"] for r in rows.values())}  # fmt: skip


def generator_text(busy: dict[str, Any]) -> str:
    """The generator's load in a case: a reply read late shares the newest kernel stamp of its
    read (TCP merges what waits on a socket), so a busy generator reads as venue latency."""
    return (f"{busy['cpu_per_process']:.2f} CPU-s/s, event loop late P50 "
            f"{busy['lag_ms_p50']:.1f} ms, max {busy['lag_ms_max']:.1f} ms")  # fmt: skip


def _hog(core: int | None) -> subprocess.Popen[bytes]:
    """A busy loop (bounded: it ends itself after 10 minutes) on `core`."""
    cmd = [
        sys.executable,
        "-c",
        "import time\nend = time.time() + 600\nwhile time.time() < end: pass",
    ]
    if core is not None:
        cmd = ["taskset", "-c", str(core), *cmd]
    return subprocess.Popen(cmd)


def _pinned(split: tuple[list[int], int] | None) -> tuple[str, ...]:
    """taskset onto the load's cores, where the machine pins load and venue apart."""
    return ("taskset", "-c", ",".join(map(str, split[0]))) if split else ()


def table_lines(cases: list[dict[str, Any]]) -> list[str]:
    lines = [f"{'wire truth':<40}{'P25':>12}{'P50':>12}{'P95':>12}{'P99':>12}  bound"]
    for c in cases:
        share, floor = c["bound"]
        for protocol, row in c["protocols"].items():
            cells = "".join(
                f"{row[f'p{p:g}']['loadgen_us']:>6}/{row[f'p{p:g}']['wire_us']:<5}"
                for p in PERCENTILES
            )
            met = "met" if row["within_bound"] else "NOT met"
            lines.append(
                f"{c['case'][:33] + ' ' + protocol:<40}{cells}  {share:.0%}/{floor} us {met}"
            )
        if "generator" in c:
            lines.append(f"{'':<4}generator: {generator_text(c['generator'])}")
    lines.append("(loadgen's service-time percentile / the capture's, microseconds; a reply read "
                 "late takes its read's newest kernel stamp, so a busy generator reads as "
                 "latency)")  # fmt: skip
    return lines


def main(args: argparse.Namespace) -> int:
    problem = capture.available()
    if problem:
        print(f"loadgen bench wire: {problem}", file=sys.stderr)
        return 2
    names = [n.strip() for n in args.cases.split(",") if n.strip()]
    unknown = [n for n in names if n not in CASES]
    if unknown or not names or args.seconds < 1:
        print(f"loadgen bench wire: --cases from {', '.join(CASES)}; --seconds >= 1",
              file=sys.stderr)  # fmt: skip
        return 2
    out = Path(args.results)
    out.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="bench-wire-", dir=out))
    cases = []
    for name in names:
        print(f"wire truth: {CASES[name].name}", flush=True)
        cases.append(run_case(CASES[name], args.seconds, folder / name, print))
    (folder / "wire.json").write_text(json.dumps(cases, indent=1))
    lines = table_lines(cases)
    (folder / "table.txt").write_text("\n".join(lines) + "\n")
    print("\n" + "\n".join(lines))
    return 0 if all(c["met"] for c in cases) else 1
