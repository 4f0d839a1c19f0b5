"""`loadgen compare RUN_A RUN_B`: per protocol/operation side by side, regressions flagged.

A regression is B worse than A by more than the threshold (a fraction): a latency percentile
or jitter higher, throughput lower, or an error or rate-limited share higher by more than the
threshold in absolute points. Exit 1 when any is flagged, so CI can gate on it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from loadgen.report.analysis import analyse

LATENCY_KEYS = ("p50", "p95", "p99", "p99.9", "jitter")


def _summary(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "summary.json"
    return json.loads(path.read_text()) if path.exists() else analyse(run_dir)


def _shares(o: dict[str, Any]) -> tuple[float, float]:
    n = o["count"] or 1
    c = o["outcomes"]
    return (c["error"] + c["timeout"]) / n, c["rate_limited"] / n


def compare(a: dict[str, Any], b: dict[str, Any], threshold: float) -> list[dict[str, Any]]:
    """Rows: (protocol, op, metric, a, b, change, regression) for operations in both runs."""
    rows = []
    ops_a = {(o["protocol"], o["op"]): o for o in a["operations"]}
    for ob in b["operations"]:
        oa = ops_a.get((ob["protocol"], ob["op"]))
        if oa is None:
            continue
        name = f"{ob['protocol']}/{ob['op']}"
        for key in LATENCY_KEYS:
            va, vb = oa["latency_us"][key], ob["latency_us"][key]
            change = (vb - va) / va if va else 0.0
            rows.append((name, f"{key} us", va, vb, change, change > threshold))
        va, vb = oa["throughput_rps"], ob["throughput_rps"]
        change = (vb - va) / va if va else 0.0
        rows.append((name, "req/s", va, vb, change, change < -threshold))
        for label, sa, sb in zip(
            ("error share", "rate-limited share"), _shares(oa), _shares(ob), strict=True
        ):
            rows.append((name, label, round(sa, 4), round(sb, 4), sb - sa, sb - sa > threshold))
    keys = ("operation", "metric", "a", "b", "change", "regression")
    return [dict(zip(keys, r, strict=True)) for r in rows]


def main(args: argparse.Namespace) -> int:
    dirs = [Path(args.run_a), Path(args.run_b)]
    for d in dirs:
        if not (d / "windows.jsonl").exists():
            print(f"loadgen compare: {d}: no windows.jsonl, not a run folder", file=sys.stderr)
            return 2
    rows = compare(_summary(dirs[0]), _summary(dirs[1]), args.threshold)
    print(f"{'operation':<18}{'metric':<20}{'A':>12}{'B':>12}{'change':>9}")
    for r in rows:
        flag = "  REGRESSION" if r["regression"] else ""
        print(
            f"{r['operation']:<18}{r['metric']:<20}{r['a']:>12g}{r['b']:>12g}{r['change']:>+9.1%}{flag}"
        )
    flagged = [r for r in rows if r["regression"]]
    print(
        f"{len(flagged)} regression(s) beyond {args.threshold:.0%} of {len(rows)} figures compared"
    )
    return 1 if flagged else 0
