"""`loadgen compare RUN_A [RUN_A2 ...] RUN_B`: did B get worse than the baseline, beyond noise?

A headline first: per protocol (and all together), throughput, P50, P99, the error share and
the rate-limited share. Then per protocol/operation cells, but only those whose change is beyond
noise. Exit 1 when a figure got worse that way, 0 when nothing did, 3 when a run's own verdict
is invalid (its figures cannot be held against anything), 2 for a folder that is not a run.

Noise, and why it is judged on blocks of time: latency on a shared machine is not a stream of
independent samples. A garbage collection or a scheduler hiccup delays every request of that
moment at once, so a P99 from 1,500 requests can double from one run of a profile to the next
(measured here: 882 to 1,779 us over five 10 s smoke runs), far outside the interval sampling
alone would give. So each run is cut into blocks of whole seconds, each block big enough to
hold MIN_TAIL samples beyond the percentile, and a figure is computed per block; B differs from
the baseline when a permutation test on the block figures (the Mann-Whitney rank sum,
PERMUTATIONS shuffles, fixed seed) says so at ALPHA, and the change also passes the threshold (latency,
throughput) or SHARE_PP percentage points (shares). Figures with fewer than MIN_BLOCKS blocks a
run are not compared: a 10 s run at 150 requests/s holds one P99 block, not a P99 verdict.

Several baseline runs (`loadgen compare A1 A2 A3 B`) are the way to measure run-to-run noise:
their blocks are pooled, and B must also fall outside the baselines' own range by the threshold.
With one baseline, a latency must also move by SINGLE_BASELINE_FLOOR_US (see there).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from loadgen.metrics.hist import Latencies
from loadgen.metrics.recorder import MD_BOOK, Window, split_key
from loadgen.metrics.store import read_meta, read_windows
from loadgen.report.analysis import FAILED, WHOLE_S, analyse, tally

ALPHA = 0.01  # a difference this unlikely under "same distribution" is beyond noise
PERMUTATIONS = 2000
MIN_TAIL = 10  # samples beyond a percentile in each block
MIN_BLOCKS = 5  # blocks per run for a figure to be compared (5 against 5: p can reach 0.008)
SHARE_PP = 1.0  # a share must move by this many percentage points to be flagged
# One baseline cannot measure run-to-run noise, and on a shared machine a run as a whole can sit
# a little faster or slower than the next (CPU placement, frequency, the neighbours): one
# protocol's P50 over five 10 s smoke runs here spread by up to 194 us (202 to 396 us) with
# every second of each run consistent. So with a single baseline a latency must also move by
# this much to be flagged; several baselines measure the spread instead.
SINGLE_BASELINE_FLOOR_US = 250
PERCENTILES = (50.0, 99.0)
PROFILE_FIELDS = ("profile", "loop", "workers", "max_rate", "stages", "target")


@dataclass
class Second:
    """One whole second of one scope: its latencies and counts."""

    latency: Latencies
    count: int
    failed: int
    rate_limited: int


def seconds_of(windows: list[Window], open_loop: bool, scope: str) -> list[Second]:
    """The whole seconds of one scope ("all", a protocol, protocol/op, or md/book: the book
    updates' fan-out, counted by update with checksum failures as the failed ones)."""
    if scope == MD_BOOK:
        return [Second(w.md_latency, w.md.get("updates", 0), w.md.get("checksum_failures", 0), 0)
                for w in windows if w.span >= WHOLE_S and w.md]  # fmt: skip
    selector = "*" if scope == "all" else scope if "/" in scope else f"{scope}/*"
    out = []
    for w in windows:
        if w.span < WHOLE_S:  # a partial first or last second is no rate
            continue
        t = tally([w], open_loop, selector)
        failed = sum(t.counts.get(c, 0) for c in FAILED)
        out.append(Second(t.latency, t.total, failed, t.counts.get("rate_limited", 0)))
    return out


def blocks(seconds: list[Second], p: float) -> list[int]:
    """Percentile p of consecutive seconds merged until each block holds MIN_TAIL samples
    beyond it (a last short block is dropped)."""
    need = MIN_TAIL / (1 - p / 100)
    out, lat = [], Latencies()
    for s in seconds:
        lat.add(s.latency)
        if lat.count >= need:
            out.append(lat.percentile(p))
            lat = Latencies()
    return out


def differs(a: list[float], b: list[float], seed: int = 0) -> float:
    """Two-sided p-value that a and b come from one distribution: the Mann-Whitney rank sum
    of b, against PERMUTATIONS random relabellings (exact enough, and no normal
    approximation at five blocks a side)."""
    pool = a + b
    order = sorted(range(len(pool)), key=pool.__getitem__)
    ranks = [0.0] * len(pool)
    i = 0
    while i < len(order):  # ties share their mean rank
        j = i
        while j + 1 < len(order) and pool[order[j + 1]] == pool[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    n, m = len(a), len(b)
    expected = m * (n + m + 1) / 2
    observed = abs(sum(ranks[n:]) - expected)
    rng = random.Random(seed)
    extreme = 0
    for _ in range(PERMUTATIONS):
        rng.shuffle(ranks)
        if abs(sum(ranks[n:]) - expected) >= observed - 1e-9:
            extreme += 1
    return (extreme + 1) / (PERMUTATIONS + 1)


@dataclass
class Row:
    scope: str
    metric: str
    a: float  # the baseline's figure (its runs pooled)
    b: float
    change: str  # "+12.0%" or "+1.30 pp"
    p_value: float
    beyond_noise: bool
    regression: bool


def _judge(
    scope: str, metric: str, base: list[list[float]], b: list[float], worse_if_higher: bool,
    threshold: float, scale: float = 1.0, points: bool = False, floor: float = 0.0,
) -> Row | None:  # fmt: skip
    """B's block figures against the baseline runs' (one list per run)."""
    if len(b) < MIN_BLOCKS or any(len(a) < MIN_BLOCKS for a in base):
        return None
    pooled = [x for a in base for x in a]
    va, vb = statistics.median(pooled), statistics.median(b)
    p = differs(pooled, b)
    if points:  # shares, in percentage points
        delta = 100 * (vb - va)
        big, change = abs(delta) > SHARE_PP, f"{delta:+.2f} pp"
    else:
        rel = (vb - va) / va if va else 0.0
        big, change = abs(rel) > threshold, f"{rel:+.1%}"
    meds = [statistics.median(a) for a in base]
    if len(base) > 1:  # outside the baselines' own run-to-run range too
        lo, hi = min(meds), max(meds)
        big = big and (vb > hi * (1 + threshold) or vb < lo * (1 - threshold))
    elif floor:
        big = big and abs(vb - va) > floor
    beyond = p < ALPHA and big
    worse = vb > va if worse_if_higher else vb < va
    return Row(scope, metric, round(va * scale, 4), round(vb * scale, 4), change, round(p, 4),
               beyond, beyond and worse)  # fmt: skip


def _share(attr: str) -> Callable[[Second], float]:
    return lambda s: getattr(s, attr) / s.count if s.count else 0.0


def rows_for(scope: str, base: list[list[Second]], b: list[Second], threshold: float,
             headline: bool) -> list[Row | None]:  # fmt: skip
    """The scope's figures in order (P50, P99, then req/s and the shares for the headline);
    None where a figure has too few blocks to compare."""
    rows = [
        _judge(scope, f"P{p:g} ms", [blocks(a, p) for a in base], blocks(b, p), True, threshold,
               scale=0.001, floor=SINGLE_BASELINE_FLOOR_US)
        for p in PERCENTILES
    ]  # fmt: skip
    if headline:
        rate = lambda s: float(s.count)  # noqa: E731
        rows.append(_judge(scope, "req/s", [list(map(rate, a)) for a in base],
                           list(map(rate, b)), False, threshold))  # fmt: skip
        for metric, attr in (("error %", "failed"), ("rate-limited %", "rate_limited")):
            share = _share(attr)
            rows.append(_judge(scope, metric, [list(map(share, a)) for a in base],
                               list(map(share, b)), True, threshold, scale=100, points=True))  # fmt: skip
    return rows


METRICS = (*(f"P{p:g} ms" for p in PERCENTILES), "req/s", "error %", "rate-limited %")


def compare_runs(base_dirs: list[Path], dir_b: Path, threshold: float) -> dict[str, Any]:
    """The headline rows (every figure that could be compared), the cells beyond noise, and
    the warnings (profiles or hosts that differ, a single baseline)."""
    metas = [read_meta(d) for d in base_dirs]
    meta_b = read_meta(dir_b)
    runs = [
        (read_windows(d), m.get("loop") == "open") for d, m in zip(base_dirs, metas, strict=True)
    ]
    wb, open_b = read_windows(dir_b), meta_b.get("loop") == "open"

    def cells(windows: list[Window]) -> set[str]:
        return {"/".join(split_key(k)[:2]) for w in windows for k in w.cells}

    protocols = sorted({c.split("/")[0] for c in cells(wb)})
    ops = sorted(cells(wb).intersection(*(cells(w) for w, _ in runs)))
    md = all(any(w.md for w in ws) for ws in (wb, *(w for w, _ in runs)))
    headline, per_op, left_out = [], [], []
    for scope in ("all", *protocols, *((MD_BOOK,) if md else ()), *ops):
        base = [seconds_of(w, open_, scope) for w, open_ in runs]
        b = seconds_of(wb, open_b, scope)
        if scope == MD_BOOK:  # its fan-out latency, beside the protocols
            rows = rows_for(scope, base, b, threshold, False)
            headline += [r for r in rows if r is not None]
            left_out += [f"{scope} {m}" for m, r in zip(METRICS, rows, strict=False) if r is None]
        elif "/" in scope:
            rows = rows_for(scope, base, b, threshold, False)
            per_op += [r for r in rows if r is not None and r.beyond_noise]
        else:
            rows = rows_for(scope, base, b, threshold, True)
            headline += [r for r in rows if r is not None]
            left_out += [f"{scope} {m}" for m, r in zip(METRICS, rows, strict=False) if r is None]
    notes = [w for m in metas for w in warnings(m, meta_b)]
    if len(base_dirs) == 1:
        notes.append("one baseline run: run-to-run noise is not measured, so a latency must "
                     f"also move by {SINGLE_BASELINE_FLOOR_US} us to count; give several "
                     "baselines (loadgen compare A1 A2 A3 B) to measure it")  # fmt: skip
    return {
        "headline": [asdict(r) for r in headline],
        "cells": [asdict(r) for r in per_op],
        "left_out": left_out,  # headline figures with too few blocks in a run to compare
        "warnings": list(dict.fromkeys(notes)),
    }


def warnings(meta_a: dict[str, Any], meta_b: dict[str, Any]) -> list[str]:
    out = []
    for name in PROFILE_FIELDS:
        if meta_a.get(name) != meta_b.get(name):
            out.append(f"the runs differ in {name}: {_short(meta_a.get(name))} against "
                       f"{_short(meta_b.get(name))}")  # fmt: skip
    ha = meta_a.get("metadata", {}).get("host")
    hb = meta_b.get("metadata", {}).get("host")
    if ha != hb:
        out.append(f"the runs ran on different hosts ({ha} and {hb})")
    return out


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _verdict(path: Path) -> dict[str, Any]:
    summary = path / "summary.json"
    data = json.loads(summary.read_text()) if summary.exists() else {}
    return data.get("verdict") or analyse(path)["verdict"]


def main(args: argparse.Namespace) -> int:
    dirs = [Path(d) for d in args.runs]
    if len(dirs) < 2:
        print("loadgen compare: give a baseline run (or several) and the run to judge",
              file=sys.stderr)  # fmt: skip
        return 2
    for d in dirs:
        if not (d / "windows.jsonl").exists():
            print(f"loadgen compare: {d}: no windows.jsonl, not a run folder", file=sys.stderr)
            return 2
    result = compare_runs(dirs[:-1], dirs[-1], args.threshold)
    for w in result["warnings"]:
        print(f"warning: {w}")
    invalid = [(d, v) for d in dirs if (v := _verdict(d))["status"] == "invalid"]
    for d, v in invalid:
        print(f"loadgen compare: {d} is no valid measurement: {v['headline']}", file=sys.stderr)
    rows = result["headline"] + result["cells"]
    worse = [r for r in rows if r["regression"]]
    better = [r for r in rows if r["beyond_noise"] and not r["regression"]]
    print(_headline_verdict(worse, better, args.threshold))
    _print_rows("headline", result["headline"])
    if result["left_out"]:
        print(f"  not compared, too few blocks of {MIN_TAIL} samples past the percentile in a run "
              f"(a longer run gives them): {', '.join(result['left_out'])}")  # fmt: skip
    if result["cells"]:
        _print_rows("per operation, changes beyond noise only", result["cells"])
    if invalid:
        return 3
    return 1 if worse else 0


def _headline_verdict(worse: list[dict], better: list[dict], threshold: float) -> str:
    def names(rows: list[dict]) -> str:
        return ", ".join(f"{r['scope']} {r['metric']} {r['change']}" for r in rows[:6])

    if worse:
        return f"REGRESSION: B is worse beyond noise (and {threshold:.0%}): {names(worse)}"
    if better:
        return f"No regression; B is better beyond noise: {names(better)}"
    return f"No change beyond noise (and {threshold:.0%}) in any figure compared."


def _print_rows(title: str, rows: list[dict]) -> None:
    print(f"\n{title}:")
    print(f"  {'scope':<18}{'metric':<16}{'A':>12}{'B':>12}{'change':>12}{'p':>8}")
    for r in rows:
        flag = "  REGRESSION" if r["regression"] else ("  better" if r["beyond_noise"] else "")
        print(f"  {r['scope']:<18}{r['metric']:<16}{r['a']:>12g}{r['b']:>12g}{r['change']:>12}"
              f"{r['p_value']:>8.3f}{flag}")  # fmt: skip
