"""What a run's windows say: per-operation figures, SLO verdicts, the knee, rate limits, capacity.

Reads aggregates only (results/<run>/), never the run itself (STYLE, from vegeta). Rules:
- percentiles come from merged histograms, capped by the exact max (metrics/hist);
- latency is that of answered requests (ok, rate_limited, rejected): errors and timeouts are
  counted, not timed; in open loop it is the response time from the intended send (coordinated
  omission corrected), in closed loop the service time, and the summary says which;
- jitter is P95 - P25 of the same histogram (DESIGN);
- a level is a stretch of the run at one load (a profile stage, or 5 s when there are none);
  the knee is the highest throughput of a level whose SLOs all hold.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadgen.metrics.hist import Latencies
from loadgen.metrics.recorder import Cell, Window, split_key
from loadgen.metrics.store import read_meta, read_windows
from loadgen.outcome import CLASSES
from loadgen.report import limits

TIMED = ("ok", "rate_limited", "rejected")  # answered by the venue: their latency is real
FAILED = ("error", "timeout")
TARGET_RPS = 1_000_000 / 60  # the project's goal: 1M requests per minute
HEADROOM = 0.3  # plan generator cores with 30% to spare (a core run flat out skews timing)
RATE_LIMIT_ONSET = 0.01  # rate limits "began" in the first second over 1% refused
LATE_SHARE = 0.01  # a level with over 1% of its sends behind schedule: the generator lagged


@dataclass
class Tally:
    """Counts by outcome and latencies of a set of cells."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CLASSES, 0))
    limits: dict[str, int] = field(default_factory=dict)
    latency: Latencies = field(default_factory=Latencies)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def add(self, key: str, cell: Cell, open_loop: bool) -> None:
        _, _, cls, limit = split_key(key)
        self.counts[cls] = self.counts.get(cls, 0) + cell.count
        if limit:
            self.limits[limit] = self.limits.get(limit, 0) + cell.count
        if cls in TIMED:
            self.latency.add(cell.response if open_loop and cell.response.count else cell.service)

    def share(self, *classes: str) -> float:
        return sum(self.counts.get(c, 0) for c in classes) / self.total if self.total else 0.0

    def figures(self, seconds: float) -> dict[str, Any]:
        lat = self.latency.summary()
        lat["jitter"] = lat["p95"] - lat["p25"]
        return {
            "count": self.total,
            "outcomes": dict(self.counts),
            "rate_limited_by": dict(sorted(self.limits.items())),
            "throughput_rps": round(self.total / seconds, 1) if seconds else 0.0,
            "latency_us": lat,
        }


def matches(selector: str, protocol: str, op: str) -> bool:
    proto, _, sel_op = selector.rpartition("/")
    return (not proto or proto == protocol) and sel_op in ("*", op)


def tally(windows: Iterable[Window], open_loop: bool, selector: str = "*") -> Tally:
    out = Tally()
    for w in windows:
        for key, cell in w.cells.items():
            protocol, op, _, _ = split_key(key)
            if matches(selector, protocol, op):
                out.add(key, cell, open_loop)
    return out


def judge(windows: list[Window], slo: dict[str, Any], open_loop: bool) -> list[dict[str, Any]]:
    """Each SLO of the profile (as stored in meta) -> {name, kind, limit, measured, ok}."""
    verdicts = []
    whole = tally(windows, open_loop)
    ratio = slo.get("max_error_ratio")
    if ratio is not None:
        measured = whole.share(*FAILED)
        verdicts.append(
            _verdict("error ratio", "errors", f"<= {ratio:g}", measured, measured <= ratio)
        )
    band = slo.get("rate_limited")
    if band is not None:
        measured = whole.share("rate_limited")
        ok = band[0] <= measured <= band[1]
        verdicts.append(
            _verdict(
                "rate-limited share", "rejections", f"in [{band[0]:g}, {band[1]:g}]", measured, ok
            )
        )
    for item in slo.get("latency", ()):
        sel = tally(windows, open_loop, item["selector"])
        for pct, limit_ms in item["limits_ms"].items():
            value = sel.latency.percentile(float(pct[1:])) if pct != "max" else sel.latency.max_us
            name = f"{item['selector']} {pct}"
            ok = value / 1000 <= limit_ms
            verdicts.append(_verdict(name, "latency", f"<= {limit_ms:g} ms", value / 1000, ok))
    return verdicts


def _verdict(name: str, kind: str, limit: str, measured: float, ok: bool) -> dict[str, Any]:
    return {"name": name, "kind": kind, "limit": limit, "measured": round(measured, 4), "ok": ok}


def levels(windows: list[Window], meta: dict[str, Any]) -> list[tuple[str, list[Window]]]:
    """The run cut into stretches of one load: the profile's stages, or 5 s each."""
    if not windows:
        return []
    start = float(meta.get("start", windows[0].t - 1))
    bounds: list[tuple[str, float, float]] = []
    at = start
    for i, stage in enumerate(meta.get("stages", ())):
        bounds.append((f"stage {i + 1} ({stage['kind']})", at, at + stage["duration"]))
        at += stage["duration"]
    if not bounds:
        t0 = windows[0].t - 1
        bounds = [
            (f"{k * 5}-{k * 5 + 5} s", t0 + k * 5, t0 + k * 5 + 5)
            for k in range(math.ceil((windows[-1].t - t0) / 5))
        ]
    out = []
    for name, lo, hi in bounds:
        inside = [w for w in windows if lo <= w.t - 0.5 < hi]  # window t covers [t - 1, t)
        if inside:
            out.append((name, inside))
    return out


def analyse(run_dir: Path) -> dict[str, Any]:
    meta = read_meta(run_dir)
    windows = read_windows(run_dir)
    open_loop = meta.get("loop") == "open"
    slo = meta.get("slo", {})
    seconds = float(len(windows))
    whole = tally(windows, open_loop)
    ops: dict[tuple[str, str], Tally] = {}
    for w in windows:
        for key, cell in w.cells.items():
            protocol, op, _, _ = split_key(key)
            ops.setdefault((protocol, op), Tally()).add(key, cell, open_loop)
    series = [_second(w, open_loop) for w in windows]
    verdicts = judge(windows, slo, open_loop)
    rate_limits = limits.conformance(windows, meta)
    expected = limits.judge(rate_limits, slo)
    if expected is not None:
        verdicts.append(expected)
    lvls = [_level(name, ws, slo, open_loop) for name, ws in levels(windows, meta)]
    summary: dict[str, Any] = {
        "run": {
            "dir": str(run_dir),
            "profile": meta.get("profile", ""),
            "loop": meta.get("loop", "closed"),
            "latency_measure": "response time from the intended send (coordinated omission corrected)"
            if open_loop
            else "service time (sent to answered)",
            "seconds": seconds,
            "start": meta.get("start"),
            "complete": bool(meta.get("finished")),
            "late_sends": sum(w.late for w in windows),
        },
        "totals": whole.figures(seconds),
        "operations": [
            {"protocol": p, "op": o, **t.figures(seconds)} for (p, o), t in sorted(ops.items())
        ],
        "slo": verdicts,
        "passed": all(v["ok"] for v in verdicts),
        "levels": lvls,
        "series": series,
        "rate_limits": rate_limits,
    }
    summary["knee"] = knee(lvls)
    summary["rate_limits_began"] = rate_limit_onset(series)
    summary["capacity"] = capacity(summary, meta)
    summary["findings"] = findings(summary)
    return summary


def _second(w: Window, open_loop: bool) -> dict[str, Any]:
    t = tally([w], open_loop)
    lat = t.latency.summary()
    return {
        "t": w.t,
        "achieved": t.total,
        "offered": w.offered if open_loop else t.total,
        "users": w.users,
        "late": w.late,
        **{c: t.counts[c] for c in CLASSES},
        **{k: lat[k] for k in ("p25", "p50", "p95", "p99")},
        "jitter": lat["p95"] - lat["p25"],
    }


def _level(name: str, ws: list[Window], slo: dict[str, Any], open_loop: bool) -> dict[str, Any]:
    t = tally(ws, open_loop)
    verdicts = judge(ws, slo, open_loop)
    offered = sum(w.offered for w in ws) / len(ws) if open_loop else t.total / len(ws)
    lat = t.latency.summary()
    return {
        "name": name,
        "seconds": len(ws),
        "offered_rps": round(offered, 1),
        "throughput_rps": round(t.total / len(ws), 1),
        "users": max(w.users for w in ws),
        "cpu_s": round(sum(w.cpu_s for w in ws), 3),
        "late": sum(w.late for w in ws),
        "rate_limited_share": round(t.share("rate_limited"), 4),
        "error_share": round(t.share(*FAILED), 4),
        **{k: lat[k] for k in ("p50", "p95", "p99")},
        "ok": all(v["ok"] for v in verdicts),
        "broke": sorted({v["kind"] for v in verdicts if not v["ok"]}),
    }


def knee(lvls: list[dict[str, Any]]) -> dict[str, Any]:
    """The highest throughput whose level kept every SLO, and what broke first past it."""
    holding = [lv for lv in lvls if lv["ok"]]
    if not holding:
        broke = lvls[0]["broke"] if lvls else []
        return {"found": False, "throughput_rps": 0.0, "broke_first": broke}
    best = max(holding, key=lambda lv: lv["throughput_rps"])
    past = sorted(
        (lv for lv in lvls if not lv["ok"] and lv["offered_rps"] > best["offered_rps"]),
        key=lambda lv: lv["offered_rps"],
    )
    return {
        "found": True,
        "level": best["name"],
        "throughput_rps": best["throughput_rps"],
        "offered_rps": best["offered_rps"],
        "broke_first": past[0]["broke"] if past else [],
        "broke_at": past[0]["name"] if past else "",
    }


def rate_limit_onset(series: list[dict[str, Any]]) -> dict[str, Any] | None:
    for i, s in enumerate(series):
        if s["achieved"] and s["rate_limited"] / s["achieved"] > RATE_LIMIT_ONSET:
            return {"second": i + 1, "offered_rps": s["offered"], "users": s["users"],
                    "share": round(s["rate_limited"] / s["achieved"], 4)}  # fmt: skip
    return None


def capacity(summary: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    """Generator cores for the 1M/min target at the busiest level's requests per CPU second.

    CPU comes from the windows (each recording process's CPU in that second), so start-up and
    idle time are left out; the busiest level is where the per-request cost is least diluted by
    timers and heartbeats."""
    busiest = max(summary["levels"], key=lambda lv: lv["throughput_rps"], default=None)
    cpu = busiest["cpu_s"] if busiest else 0.0
    per_core = busiest["throughput_rps"] * busiest["seconds"] / cpu if cpu else 0.0
    cores = math.ceil(TARGET_RPS / (per_core * (1 - HEADROOM))) if per_core else None
    knee_rps = summary["knee"]["throughput_rps"]
    return {
        "target_rps": round(TARGET_RPS, 1),
        "generator_rps_per_core": round(per_core, 1),
        "generator_cores_needed": cores,
        "headroom": HEADROOM,
        "venue_knee_rps": knee_rps,
        "venue_knee_share_of_target": round(knee_rps / TARGET_RPS, 4),
    }


def _num(value: Any) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) else str(value)


def findings(s: dict[str, Any]) -> list[str]:
    """The correlation in words, for the top of the report."""
    out = []
    k = s["knee"]
    if k["found"]:
        line = (
            f"Knee: {k['throughput_rps']:,.0f} requests/s ({k['level']}) is the highest "
            "throughput at which every SLO held"
        )
        if k["broke_first"]:
            line += f"; past it, {' and '.join(k['broke_first'])} broke first ({k['broke_at']})."
        else:
            line += "; no higher load was tried that broke one."
        out.append(line)
    else:
        broke = " and ".join(k["broke_first"]) or "the SLOs"
        out.append(f"No knee: {broke} failed already at the lowest load of the run.")
    onset = s["rate_limits_began"]
    if onset:
        out.append(
            f"Rate-limit rejections began in second {onset['second']}, at {onset['offered_rps']:,.0f} "
            f"requests/s offered by {onset['users']} users ({onset['share']:.1%} refused that second)."
        )
    else:
        out.append("No second of the run had more than 1% of its requests rate limited.")
    behind = [
        lv for lv in s["levels"] if lv["late"] > LATE_SHARE * lv["throughput_rps"] * lv["seconds"]
    ]
    if behind:
        lv = behind[0]
        out.append(
            f"The generator fell behind its schedule from {lv['name']} on ({lv['late']:,} late "
            f"sends there, {lv['cpu_s'] / lv['seconds']:.2f} CPU-seconds per second): latency from "
            "there on includes the generator's own queueing; add workers (--workers N) to "
            "measure the venue past that load."
        )
    conformance = limits.finding(s.get("rate_limits"))
    if conformance:
        out.append(conformance)
    c = s["capacity"]
    if c["generator_cores_needed"]:
        out.append(
            f"Capacity: at {c['generator_rps_per_core']:,.0f} requests/s per generator core, "
            f"1M requests/min ({c['target_rps']:,.0f}/s) needs {c['generator_cores_needed']} worker "
            f"cores with {c['headroom']:.0%} headroom; the venue's knee here is "
            f"{c['venue_knee_share_of_target']:.1%} of that target."
        )
    verdict = (
        "All SLOs held."
        if s["passed"]
        else "SLOs breached: "
        + ", ".join(
            f"{v['name']} ({_num(v['measured'])} against {v['limit']})"
            for v in s["slo"]
            if not v["ok"]
        )
    )
    out.append(verdict)
    return out
