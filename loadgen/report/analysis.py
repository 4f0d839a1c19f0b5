"""What a run's windows say: per-operation figures, SLO verdicts, the knee, rate limits, capacity.

Reads aggregates only (results/<run>/), never the run itself (STYLE, from vegeta). Rules:
- percentiles come from merged histograms, capped by the exact max (metrics/hist);
- latency is that of answered requests (ok, rate_limited, rejected): errors and timeouts are
  counted, not timed; in open loop it is the response time from the intended send (coordinated
  omission corrected), in closed loop the service time, and the summary says which;
- jitter is P95 - P25 of the same histogram (DESIGN);
- a level is a stretch of the run at one load (a profile stage, or 5 s when there are none);
  a level is generator-bound when the generator, not the venue, set its pace: over 5% of its
  sends behind schedule through the generator's own fault, its processes' CPU near a whole
  core, or its event loop persistently late; the knee is the highest throughput of a level
  whose SLOs all hold and that is not generator-bound (a generator's limit is never the venue's);
- every run ends with one verdict (report/verdict): passed, breached or invalid, with reasons.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadgen.metrics.hist import Latencies
from loadgen.metrics.recorder import MD_BOOK, Cell, Window, split_key
from loadgen.metrics.store import read_incidents, read_meta, read_windows
from loadgen.outcome import CLASSES
from loadgen.report import limits
from loadgen.report.verdict import decide

TIMED = ("ok", "rate_limited", "rejected")  # answered by the venue: their latency is real
FAILED = ("error", "timeout")
TARGET_RPS = 1_000_000 / 60  # the project's goal: 1M requests per minute
HEADROOM = 0.3  # plan generator cores with 30% to spare (a core run flat out skews timing)
# Workers one Locust master takes, as `loadgen bench master` measured it on the 2-core reference
# machine (2026-12-03): 1.2 ms of master CPU a second per worker reporting 3,000 requests/s
# in 62 cells a second; 500 workers cost the master 0.54 CPU-s/s with windows written 95 ms
# after their report at P99, 1,000 saturated it. Planned at 70% of a core, rounded down.
WORKERS_PER_MASTER = 500
RATE_LIMIT_ONSET = 0.01  # rate limits "began" in the first second over 1% refused
# A level with over 5% of its sends late by the generator's own fault could not keep its
# schedule. Not less: one hiccup of the event loop (a garbage collection, a window closing)
# delays every user at once by ~20 ms, which alone is about 1% of a slow level's sends
# (measured: 7 of 900 at 150 requests/s); a generator that cannot keep up is late on far more
# (443 of 5,000 at 1,000/s on one worker, every send at 20,000/s).
LATE_SHARE = 0.05
SATURATED_CPU = 0.9  # a recording process using 90% of a core: it cannot keep time any more
# A level whose typical second saw the event loop's worst timer 25 ms late is starved: measured,
# one process flat out shows 54-67 ms (the ramp's top steps, the throughput hold), while a
# 2-core CI machine merely busy with other work shows 10-24 ms at 200 requests/s
BUSY_LAG_MS = 25.0
# how far (s) a window may reach past its stage and still lie in it: the run's recorded start
# and the shape's clock, which moves the pace, differ by a few milliseconds
EDGE_S = 0.05
STALL_MS = 200.0  # a second in which the event loop stalled this long: its latencies are suspect
CUT_SHORT_S = 3.0  # the load may end this much before the profile's duration (start-up, rounding)
MIN_SPAN_S = 0.25  # a partial first or last second shorter than this is left out of the series
WHOLE_S = 0.99  # a window covering this much of its second is a whole one


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
    checksums = slo.get("book_checksum_failures")
    if checksums is not None:
        heard = _counted(windows, "md")
        failed = heard.get("checksum_failures", 0)
        ok = failed <= checksums and heard.get("updates", 0) > 0  # no updates: nothing checked
        verdicts.append(_verdict("book checksum failures", "market data", f"<= {checksums}",
                                 failed, ok))  # fmt: skip
    for item in slo.get("latency", ()):
        if item["selector"] == MD_BOOK:
            latency = fanout(windows)
        else:
            latency = tally(windows, open_loop, item["selector"]).latency
        for pct, limit_ms in item["limits_ms"].items():
            value = latency.percentile(float(pct[1:])) if pct != "max" else latency.max_us
            name = f"{item['selector']} {pct}"
            ok = value / 1000 <= limit_ms
            verdicts.append(_verdict(name, "latency", f"<= {limit_ms:g} ms", value / 1000, ok))
    return verdicts


def fanout(windows: Iterable[Window]) -> Latencies:
    """The book updates' fan-out latency over the windows (MarketDataUsers)."""
    out = Latencies()
    for w in windows:
        out.add(w.md_latency)
    return out


def market_data(windows: list[Window]) -> dict[str, Any] | None:
    """What the MarketDataUsers heard (None when none ran): book messages by kind, and the
    updates' fan-out latency, the venue's timestamp to the subscriber's receive time."""
    heard = _counted(windows, "md")
    if not heard:
        return None
    latency = fanout(windows)
    seconds = covered_seconds(windows)
    out: dict[str, Any] = {kind: heard.get(kind, 0) for kind in MD_KINDS}
    out["updates_per_s"] = round(out["updates"] / seconds, 1) if seconds else 0.0
    out["fanout_us"] = (
        {f"p{p:g}": latency.percentile(p) for p in (25, 50, 95, 99)} | {"max": latency.max_us}
        if latency.count
        else {}
    )
    return out


MD_KINDS = ("updates", "snapshots", "checksum_failures", "resubscribes", "reconnects", "refused",
            "trades", "sequence_gaps", "tickers")  # fmt: skip


def _verdict(name: str, kind: str, limit: str, measured: float, ok: bool) -> dict[str, Any]:
    return {"name": name, "kind": kind, "limit": limit, "measured": round(measured, 4), "ok": ok}


def levels(windows: list[Window], meta: dict[str, Any]) -> list[tuple[str, list[Window]]]:
    """The run cut into stretches of one load: the profile's stages, or 5 s each.

    A level holds the windows that lie wholly inside its stage (give or take EDGE_S). Windows
    are wall-clock seconds and stages start where the run did, so the window a step falls in
    carries part of both loads: counted in the new level it made a 2,000 -> 6,000 req/s step
    read 2-3% short of what was sent at 6,000 (measured, `loadgen bench openloop`), a level
    "not held" that was. Such a window is in the run's totals and its second-by-second
    series, in no level.
    """
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
    spans = _spans(windows)
    out = []
    for name, lo, hi in bounds:
        inside = [w for w, (a, b) in zip(windows, spans, strict=True)
                  if lo - EDGE_S <= a and b <= hi + EDGE_S]  # fmt: skip
        if not inside:  # a stage holding no whole window (under 2 s, by its phase): the
            inside = [w for w in windows if lo <= w.t - 0.5 < hi]  # windows centred in it
        if inside:
            out.append((name, inside))
    return out


def _spans(windows: list[Window]) -> list[tuple[float, float]]:
    """The stretch of time each window covers: [t - 1, t), less for the first window (it
    began when the run did: the end of its second) and the last (flushed when the run ended:
    the start of its second)."""
    spans = [(w.t - 1.0, float(w.t)) for w in windows]
    if windows:
        first, last = windows[0], windows[-1]
        spans[0] = (first.t - first.span, spans[0][1])
        spans[-1] = (spans[-1][0], last.t - 1.0 + last.span if last is not first else last.t)
    return spans


def covered_seconds(windows: list[Window]) -> float:
    """Seconds from the start of the first window to the end of the last (gaps included)."""
    if not windows:
        return 0.0
    first, last = windows[0], windows[-1]
    return max(0.0, (last.t - 1 + last.span) - (first.t - first.span))


def analyse(run_dir: Path) -> dict[str, Any]:
    meta = read_meta(run_dir)
    windows = read_windows(run_dir)
    incidents = read_incidents(run_dir)
    open_loop = meta.get("loop") == "open"
    slo = meta.get("slo", {})
    seconds = round(covered_seconds(windows), 3)
    whole = tally(windows, open_loop)
    ops: dict[tuple[str, str], Tally] = {}
    for w in windows:
        for key, cell in w.cells.items():
            protocol, op, _, _ = split_key(key)
            ops.setdefault((protocol, op), Tally()).add(key, cell, open_loop)
    series = [second(w, open_loop) for w in windows if w.span >= MIN_SPAN_S]
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
            "planned_seconds": sum(s["duration"] for s in meta.get("stages", ()))
            or float(meta.get("planned_s") or 0),
            "start": meta.get("start"),
            "finished": bool(meta.get("stopped")),  # the load reached its test stop
            "late_sends": sum(w.late for w in windows),
            "late_sends_venue": sum(w.late_venue for w in windows),
            "timestamps": timestamps(windows),
            "tls": tls_mode(meta.get("metadata", {}).get("target", {})),
            "workers": meta.get("workers", 0),
            "metadata": meta.get("metadata", {}),
        },
        "totals": whole.figures(seconds),
        "operations": [
            {"protocol": p, "op": o, **t.figures(seconds)} for (p, o), t in sorted(ops.items())
        ],
        "slo": verdicts,
        "slos_held": all(v["ok"] for v in verdicts),  # the verdict says whether that counts
        "levels": lvls,
        "series": series,
        "rate_limits": rate_limits,
        "reasons": reasons(windows),
        "cleanup": _counted(windows, "cleanup"),
        "user_errors": _counted(windows, "user_errors"),
        "generator": generator(windows),
        "incidents": incidents,
        "distribution": distribution(windows, open_loop),
        "market_data": market_data(windows),
        "stage_marks": stage_marks(meta),
    }
    summary["knee"] = knee(lvls)
    begin = windows[0].t - windows[0].span if windows else 0.0
    summary["rate_limits_began"] = rate_limit_onset(series, begin)
    summary["capacity"] = capacity(summary, meta)
    problems = invalid_reasons(summary, meta)
    summary["verdict"] = decide(problems, [v["name"] for v in verdicts if not v["ok"]]).as_dict()
    summary["run"]["complete"] = summary["run"]["finished"] and not any(
        code in ("interrupted", "cut_short") for code, _ in problems
    )
    summary["findings"] = findings(summary)
    return summary


def tls_mode(target: dict[str, Any]) -> str:
    """How the run's connections were secured, from its profile's target."""
    schemes = {str(target.get(p, "")).partition(":")[0] for p in ("rest", "ws", "fix")}
    if not target.get("tls") and not schemes & {"https", "wss", "tls"}:
        return "plain TCP"
    if target.get("insecure"):
        return "TLS, certificates not verified (insecure)"
    ca = target.get("ca_file") or ("the embedded venue's own CA" if target.get("tls") else "")
    return f"TLS, certificates verified against {ca or 'the system CAs'}"


def timestamps(windows: list[Window]) -> dict[str, Any]:
    """Who stamped the replies' arrival (clients/net): the kernel as the bytes reached the
    socket, or the generator when it read them (a platform without receive timestamps)."""
    counts = _counted(windows, "stamps")
    kernel, user = counts.get("kernel", 0), counts.get("user", 0)
    if not user:
        text = "kernel receive timestamps (SO_TIMESTAMPNS)" if kernel else "no replies"
    elif not kernel:
        text = "stamped in user space (no kernel receive timestamps on this platform)"
    else:
        text = f"kernel receive timestamps, but {user:,} of {kernel + user:,} stamped in user space"
    return {"kernel": kernel, "user": user, "text": text}


# The HDR percentile plot's x axis: 0, 90, 99, 99.9, ... in quarter decades of 1/(1 - p), as
# HdrHistogram's own plotter draws it, so the tail gets as much room as the body.
DISTRIBUTION_POINTS = tuple(100.0 * (1 - 10 ** (-k / 4)) for k in range(21))  # to 99.999


def distribution(windows: list[Window], open_loop: bool) -> dict[str, list[list[float]]]:
    """Per protocol (and "all"): [percentile, latency us] over the run, for the HDR plot."""
    out = {}
    for selector in ("*", *sorted({k.split("/", 1)[0] + "/*" for w in windows for k in w.cells})):
        lat = tally(windows, open_loop, selector).latency
        if lat.count:
            name = "all" if selector == "*" else selector[:-2]
            out[name] = [[round(p, 4), lat.percentile(p)] for p in DISTRIBUTION_POINTS]
    return out


def stage_marks(meta: dict[str, Any]) -> list[dict[str, Any]]:
    """Where each stage begins (unix seconds), for the time axes of the report."""
    at = meta.get("start")
    if at is None:
        return []
    out = []
    for i, stage in enumerate(meta.get("stages", ())):
        out.append({"t": round(float(at), 3), "name": f"stage {i + 1} ({stage['kind']})"})
        at = float(at) + stage["duration"]
    return out


def _counted(windows: list[Window], name: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for w in windows:
        for key, n in getattr(w, name).items():
            out[key] = out.get(key, 0) + n
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def reasons(windows: list[Window]) -> list[dict[str, Any]]:
    """The venue's error texts by protocol/op/outcome, most frequent first."""
    out = []
    for key, n in _counted(windows, "reasons").items():
        cell, _, text = key.partition("|")
        protocol, op, cls, limit = split_key(cell)
        out.append({"protocol": protocol, "op": op, "outcome": cls, "limit": limit,
                    "reason": text, "count": n})  # fmt: skip
    return out


def generator(windows: list[Window]) -> dict[str, Any]:
    """The generator's own health over the run: lag, CPU per process, stalled seconds."""
    lags = sorted(w.lag_ms for w in windows)
    stalls = [{"t": w.t, "lag_ms": round(w.lag_ms, 1)} for w in windows if w.lag_ms >= STALL_MS]
    return {
        "lag_ms_p50": round(lags[len(lags) // 2], 3) if lags else 0.0,
        "lag_ms_max": round(lags[-1], 3) if lags else 0.0,
        "cpu_per_process": round(_cpu_share(windows), 3),
        "processes": max((w.procs for w in windows), default=0),
        "stalls": stalls,
    }


def _cpu_share(windows: list[Window]) -> float:
    """CPU seconds per second of each recording process, over these windows."""
    busy = sum(w.procs * w.span for w in windows)
    return sum(w.cpu_s for w in windows) / busy if busy else 0.0


def generator_bound(ws: list[Window], sends: int) -> list[str]:
    """Why the generator, not the venue, set these windows' pace ([] when it did not)."""
    why = []
    late = sum(w.late for w in ws)
    if late > LATE_SHARE * max(1, sends):
        why.append(f"{late:,} sends late by the generator's fault")
    # CPU and lag from whole seconds: a first or last partial one holds the spawn or the
    # cleanup, not the load (a level of partial seconds only is no evidence either way)
    whole = [w for w in ws if w.span >= WHOLE_S]
    if not whole:
        return why
    cpu = _cpu_share(whole)
    if cpu >= SATURATED_CPU:
        why.append(f"{cpu:.2f} CPU-seconds per second per process")
    lag = statistics.median(w.lag_ms for w in whole)
    if lag > BUSY_LAG_MS:
        why.append(f"event loop {lag:.0f} ms late in a typical second")
    return why


def generator_bound_invalidates(loop: str, slo: dict[str, Any]) -> bool:
    """Whether a generator-bound level makes the run invalid, not only unfit to be the knee.

    Open loop: yes, the profile's load was not applied (the generator fell behind its schedule).
    Closed loop: a user sends when answered, so a generator running flat out is how such a run
    finds its throughput, and rate-limit conformance is judged from send and answer times
    either way; but its latencies then hold the generator's own queueing, so a profile that
    sets latency SLOs cannot be judged by them."""
    return loop == "open" or bool(slo.get("latency"))


def user_errors(s: dict[str, Any], kind: str) -> dict[str, int]:
    """The users' exceptions of one kind ("spawn" or "task"): text -> count, most first."""
    return {k.partition("|")[2]: n for k, n in s["user_errors"].items() if k.startswith(f"{kind}|")}


def invalid_reasons(s: dict[str, Any], meta: dict[str, Any]) -> list[tuple[str, str]]:
    """Why this run could not measure what it claims: (code, text naming the case)."""
    out: list[tuple[str, str]] = []
    run = s["run"]
    if not s["totals"]["count"]:
        out.append(("nothing_sent", "nothing was sent: no request reached the venue"))
    if meta.get("interrupted"):
        out.append(("interrupted", f"interrupted by {meta['interrupted']}"))
    elif s["totals"]["count"] and (
        not run["finished"]
        or (run["planned_seconds"] and run["seconds"] < run["planned_seconds"] - CUT_SHORT_S)
    ):
        out.append(("cut_short", f"the load ran {run['seconds']:.0f} s of the "
                    f"{run['planned_seconds']:.0f} s planned"
                    + ("" if run["finished"] else "; the run did not finish")))  # fmt: skip
    spawn = user_errors(s, "spawn")
    if spawn:
        text, n = next(iter(spawn.items()))
        out.append(("users_failed", f"{sum(spawn.values())} users failed at spawn ({n} with "
                    f"{text!r})"))  # fmt: skip
    for incident in s["incidents"]:
        if incident["kind"] in ("worker_lost", "worker_silent"):
            out.append(("worker_lost", incident["text"]))
    asked, seen = int(meta.get("workers") or 0), s["generator"]["processes"]
    if asked and s["totals"]["count"] and seen < asked:
        out.append(("workers_missing", f"{seen} of the {asked} workers asked for recorded "
                    "anything"))  # fmt: skip
    if meta.get("workers_unready"):
        out.append(("workers_missing", meta["workers_unready"]))
    if meta.get("venue_lost"):
        out.append(("venue_lost", meta["venue_lost"]))
    code = meta.get("locust_exit")
    if code not in (None, 0, 1) and not meta.get("interrupted"):
        out.append(("locust_failed", f"Locust exited with code {code} (see locust.log)"))
    bound = [lv for lv in s["levels"] if lv["bound_by"] == "generator"]
    if bound and generator_bound_invalidates(run["loop"], meta.get("slo", {})):
        out.append(("generator_bound", f"the generator was the bottleneck at {len(bound)} of "
                    f"{len(s['levels'])} levels, from {bound[0]['name']} on "
                    f"({'; '.join(bound[0]['generator_why'])}): those levels measure loadgen, "
                    "not the venue; add workers (--workers N) or lower the rate"))  # fmt: skip
    return out


def second(w: Window, open_loop: bool) -> dict[str, Any]:
    t = tally([w], open_loop)
    lat = t.latency.summary()
    per_s = 1.0 / w.span  # a partial second's counts as a rate, so it is no dip nor spike
    by_protocol: dict[str, float] = {}
    for key, cell in w.cells.items():
        protocol = key.split("/", 1)[0]
        by_protocol[protocol] = by_protocol.get(protocol, 0) + cell.count * per_s
    return {
        "t": w.t,
        "achieved": round(t.total * per_s, 1),
        "offered": w.offered if open_loop else round(t.total * per_s, 1),
        "users": w.users,
        "late": w.late,
        "late_venue": w.late_venue,
        "lag_ms": round(w.lag_ms, 2),
        "protocols": {p: round(v, 1) for p, v in sorted(by_protocol.items())},
        "protocol_p99": _protocol_p99(w, open_loop),
        **{c: round(t.counts[c] * per_s, 1) for c in CLASSES},
        **{k: lat[k] for k in ("p25", "p50", "p95", "p99")},
        "jitter": lat["p95"] - lat["p25"],
        **_md_second(w, per_s),
    }


def _md_second(w: Window, per_s: float) -> dict[str, Any]:
    """A second's market data, when MarketDataUsers ran: updates/s, checksum failures and the
    fan-out P50 and P99 (µs)."""
    if not w.md:
        return {}
    lat = w.md_latency
    return {
        "md_updates": round(w.md.get("updates", 0) * per_s, 1),
        "md_failures": w.md.get("checksum_failures", 0),
        "md_p50": lat.percentile(50) if lat.count else 0,
        "md_p99": lat.percentile(99) if lat.count else 0,
    }


def _protocol_p99(w: Window, open_loop: bool) -> dict[str, int]:
    out = {}
    for protocol in sorted({k.split("/", 1)[0] for k in w.cells}):
        out[protocol] = tally([w], open_loop, f"{protocol}/*").latency.percentile(99)
    return out


def _level(name: str, ws: list[Window], slo: dict[str, Any], open_loop: bool) -> dict[str, Any]:
    t = tally(ws, open_loop)
    verdicts = judge(ws, slo, open_loop)
    seconds = sum(w.span for w in ws) or len(ws)
    offered = sum(w.offered for w in ws) / len(ws) if open_loop else t.total / seconds
    lat = t.latency.summary()
    why = generator_bound(ws, t.total)
    return {
        "name": name,
        "seconds": round(seconds, 3),
        "offered_rps": round(offered, 1),
        "throughput_rps": round(t.total / seconds, 1),
        "users": max(w.users for w in ws),
        "cpu_s": round(sum(w.cpu_s for w in ws), 3),
        "late": sum(w.late for w in ws),
        "late_venue": sum(w.late_venue for w in ws),
        "lag_ms_max": round(max(w.lag_ms for w in ws), 2),
        "bound_by": "generator" if why else "",
        "generator_why": why,
        "rate_limited_share": round(t.share("rate_limited"), 4),
        "error_share": round(t.share(*FAILED), 4),
        **{k: lat[k] for k in ("p50", "p95", "p99")},
        "ok": all(v["ok"] for v in verdicts),
        "broke": sorted({v["kind"] for v in verdicts if not v["ok"]}),
    }


def knee(lvls: list[dict[str, Any]]) -> dict[str, Any]:
    """The highest throughput whose level kept every SLO, and what broke first past it; levels
    where the generator set the pace are no evidence about the venue either way."""
    lvls = [lv for lv in lvls if lv["bound_by"] != "generator"]
    holding = [lv for lv in lvls if lv["ok"]]
    if not holding:
        broke = lvls[0]["broke"] if lvls else []
        return {"found": False, "throughput_rps": 0.0, "broke_first": broke,
                "measured_levels": len(lvls)}  # fmt: skip
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
        "measured_levels": len(lvls),
    }


def rate_limit_onset(series: list[dict[str, Any]], start: float) -> dict[str, Any] | None:
    """The first second over RATE_LIMIT_ONSET refused; counted from `start`, the run's."""
    for s in series:
        if s["achieved"] and s["rate_limited"] / s["achieved"] > RATE_LIMIT_ONSET:
            return {"second": max(1, math.ceil(s["t"] - start - 1e-6)), "offered_rps": s["offered"],
                    "users": s["users"], "share": round(s["rate_limited"] / s["achieved"], 4)}  # fmt: skip
    return None


def capacity(summary: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    """Generator cores for the 1M/min target at the busiest level's requests per CPU second.

    CPU comes from the windows (each recording process's CPU in that second), so start-up and
    idle time are left out; the busiest level is where the per-request cost is least diluted by
    timers and heartbeats."""
    busiest = max(summary["levels"], key=lambda lv: lv["throughput_rps"], default=None)
    cpu = busiest["cpu_s"] if busiest else 0.0
    per_core = busiest["throughput_rps"] * busiest["seconds"] / cpu if busiest and cpu else 0.0
    cores = math.ceil(TARGET_RPS / (per_core * (1 - HEADROOM))) if per_core else None
    knee_rps = summary["knee"]["throughput_rps"]  # 0 when no level measured the venue
    return {
        "target_rps": round(TARGET_RPS, 1),
        "generator_rps_per_core": round(per_core, 1),
        "generator_cores_needed": cores,
        "workers_per_master": WORKERS_PER_MASTER,
        "masters_needed": math.ceil(cores / WORKERS_PER_MASTER) if cores else None,
        "headroom": HEADROOM,
        "venue_knee_rps": knee_rps,
        "venue_knee_share_of_target": round(knee_rps / TARGET_RPS, 4),
    }


def _num(value: Any) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) else str(value)


def findings(s: dict[str, Any]) -> list[str]:
    """The correlation in words, for the top of the report: the verdict first."""
    out = [s["verdict"]["headline"]]
    out.append(_knee_line(s["knee"], s["levels"]))
    onset = s["rate_limits_began"]
    if onset:
        out.append(
            f"Rate-limit rejections began in second {onset['second']}, at {onset['offered_rps']:,.0f} "
            f"requests/s offered by {onset['users']} users ({onset['share']:.1%} refused that second)."
        )
    else:
        out.append("No second of the run had more than 1% of its requests rate limited.")
    out += _lateness(s)
    out += _generator_stalls(s)
    if s["run"].get("tls", "").endswith("(insecure)"):
        out.append("TLS certificates were not verified (insecure): whoever answered was "
                   "measured, not necessarily the venue named.")  # fmt: skip
    stamped = s["run"]["timestamps"]
    if stamped["user"]:
        out.append(f"Reply times: {stamped['text']}; those replies' latencies include the time "
                   "they waited in the generator before it read them.")  # fmt: skip
    top = [r for r in s["reasons"] if r["outcome"] != "ok"][:3]
    if top:
        out.append("Most frequent answers other than ok: " + "; ".join(
            f"{r['protocol']}/{r['op']} {r['outcome']} {r['reason']!r} x{r['count']:,}"
            for r in top) + ".")  # fmt: skip
    task = user_errors(s, "task")
    if task:
        text, n = next(iter(task.items()))
        out.append(f"Users raised {sum(task.values()):,} exceptions in their tasks (the "
                   f"generator's own failures, not the venue's; {n:,} of {text!r}).")  # fmt: skip
    cleaned = sum(s["cleanup"].values())
    if cleaned:
        failed = sum(n for k, n in s["cleanup"].items() if not k.endswith("/ok"))
        out.append(f"Cleanup: {cleaned:,} end-of-run cancel-alls ({failed:,} failed), counted "
                   "apart from the load.")  # fmt: skip
    conformance = limits.finding(s.get("rate_limits"))
    if conformance:
        out.append(conformance)
    bound = any(lv["bound_by"] == "generator" for lv in s["levels"])
    out += _market_data_line(s.get("market_data"), bound)
    c = s["capacity"]
    if c["generator_cores_needed"]:
        venue = (f"the venue's knee here is {c['venue_knee_share_of_target']:.1%} of that "
                 "target" if s["knee"]["found"] else "no level here measured the venue's knee")  # fmt: skip
        out.append(
            f"Capacity: at {c['generator_rps_per_core']:,.0f} requests/s per generator core, "
            f"1M requests/min ({c['target_rps']:,.0f}/s) needs {c['generator_cores_needed']} worker "
            f"cores with {c['headroom']:.0%} headroom, as workers of {c['masters_needed']} Locust "
            f"master{'s' if c['masters_needed'] > 1 else ''} (one takes ~{c['workers_per_master']}: "
            f"loadgen bench master); {venue}."
        )
    return out


def _market_data_line(md: dict[str, Any] | None, generator_bound: bool) -> list[str]:
    if not md:
        return []
    if not md["updates"]:
        return ["Market data: the subscribers heard no book update (nothing checked)."]
    lat = md["fanout_us"]
    line = (f"Market data: {md['updates']:,} book updates ({md['updates_per_s']:,.0f}/s), "
            f"{md['checksum_failures']:,} checksum failures, {md['reconnects']:,} reconnects; "
            f"fan-out P50 {lat['p50'] / 1000:.1f} ms, P99 {lat['p99'] / 1000:.1f} ms (the venue's "
            "timestamp to the subscriber's socket, its coalescing included")  # fmt: skip
    line += (", and the generator's own queueing: it was the bottleneck)."
             if generator_bound else ").")  # fmt: skip
    if md.get("trades"):
        line += (f" Trades heard: {md['trades']:,}, {md['sequence_gaps']:,} missing from their "
                 "books' trade_id sequences.")  # fmt: skip
    return [line]


def _knee_line(k: dict[str, Any], levels: list[dict[str, Any]]) -> str:
    if k["found"]:
        line = (
            f"Knee: {k['throughput_rps']:,.0f} requests/s ({k['level']}) is the highest "
            "throughput at which the venue held every SLO"
        )
        if k["broke_first"]:
            return (
                line + f"; past it, {' and '.join(k['broke_first'])} broke first ({k['broke_at']})."
            )
        return line + "; no higher load was tried that broke one."
    if levels and not k["measured_levels"]:
        return ("No knee: the generator was the bottleneck at every level, so no level measured "
                "the venue.")  # fmt: skip
    broke = " and ".join(k["broke_first"]) or "the SLOs"
    return f"No knee: {broke} failed already at the lowest load the venue was measured at."


def _lateness(s: dict[str, Any]) -> list[str]:
    out = []
    run = s["run"]
    if run["late_sends_venue"]:
        out.append(
            f"{run['late_sends_venue']:,} sends went out late because the venue had not answered "
            "the user's previous request yet: the venue's delay, charged to it in open-loop latency."
        )
    bound = [lv for lv in s["levels"] if lv["bound_by"] == "generator"]
    if bound:
        lv = bound[0]
        out.append(
            f"The generator was the bottleneck from {lv['name']} on ({'; '.join(lv['generator_why'])}"
            "): latency there "
            "includes the generator's own queueing and is not the venue's; add workers "
            "(--workers N) to measure the venue past that load."
        )
    elif run["late_sends"]:
        out.append(f"{run['late_sends']:,} sends were late by the generator's own fault (under "
                   f"{LATE_SHARE:.0%} of any level's).")  # fmt: skip
    return out


def _generator_stalls(s: dict[str, Any]) -> list[str]:
    stalls = s["generator"]["stalls"]
    if not stalls:
        return []
    worst = max(x["lag_ms"] for x in stalls)
    return [
        f"The generator's event loop stalled in {len(stalls)} second(s) (worst {worst:,.0f} ms): "
        "latencies recorded then may include up to that much of the generator's own delay, "
        "not the venue's."
    ]
