"""The loadgen tab's figures, live: the run so far from the windows the recorder closes.

No Locust import here (users/webui.py wires this into Locust's web UI): the tests use it
in-process, where Locust's gevent patching must not reach (DESIGN: gevent and asyncio never
share a process).
"""

from __future__ import annotations

from collections import deque
from typing import Any

from loadgen.conformance import DECISIONS, verdict
from loadgen.metrics.recorder import Window, merge
from loadgen.outcome import LIMIT_REST, LIMIT_THROTTLE, LIMIT_TRADING
from loadgen.report.analysis import Tally, second

RECENT_S = 5
HISTORY_S = 600  # seconds the charts page keeps
CHARTS_PATH = "/loadgen"
LIMITS = (LIMIT_TRADING, LIMIT_REST, LIMIT_THROTTLE)


class Live:
    """The run so far, from closed windows: the last seconds kept whole, the rest summed."""

    def __init__(self, open_loop: bool, partial_last: bool) -> None:
        self.open_loop = open_loop
        self.partial_last = partial_last  # a master: the newest second may lack a worker yet
        self.recent: deque[Window] = deque()
        self.run = Tally()
        self.decisions = dict.fromkeys(DECISIONS, 0)
        self.seconds = 0
        self.history: deque[dict[str, Any]] = deque(maxlen=HISTORY_S)
        self.md = Window(0)  # the retired seconds' market data (md, md_latency), summed

    def feed(self, window: Window) -> None:
        for w in self.recent:
            if w.t == window.t:
                w.add(window)
                break
        else:  # its own copy: a later window of the same second merges into it, and the
            # recorder's one may still be queued for encoding (users/encoding.py)
            self.recent.append(window.copy())
            self.recent = deque(sorted(self.recent, key=lambda w: w.t))
        while len(self.recent) > RECENT_S + 2:
            self._retire(self.recent.popleft())

    def _retire(self, w: Window) -> None:
        _add(self.run, self.decisions, w, self.open_loop)
        _add_md(self.md, w)
        self.seconds += 1
        self.history.append(_point(w, self.open_loop))

    def series(self) -> list[dict[str, Any]]:
        """One point a second for the charts page: the retired seconds and the recent ones."""
        windows = list(self.recent)
        if self.partial_last and len(windows) > 1:
            windows = windows[:-1]
        return [*self.history, *(_point(w, self.open_loop) for w in windows)]

    def rows(self) -> list[dict[str, Any]]:
        windows = list(self.recent)
        if self.partial_last and len(windows) > 1:
            windows = windows[:-1]
        last = merge(windows[-RECENT_S:])
        recent, recent_dec = Tally(), dict.fromkeys(DECISIONS, 0)
        for w in last:
            _add(recent, recent_dec, w, self.open_loop)
        whole, whole_dec = Tally(), dict(self.decisions)
        whole.counts, whole.limits = dict(self.run.counts), dict(self.run.limits)
        whole.latency.add(self.run.latency)
        for w in windows:
            _add(whole, whole_dec, w, self.open_loop)
        n_recent, n_whole = max(1, len(last)), max(1, self.seconds + len(windows))
        rows = [{"metric": "charts", "recent": "", "run": CHARTS_PATH}]
        rows.append(_row("requests/s", recent.total / n_recent, whole.total / n_whole, "{:,.1f}"))
        for limit in LIMITS:
            rows.append(_row(f"rate limited/s: {limit}", recent.limits.get(limit, 0) / n_recent,
                             whole.limits.get(limit, 0) / n_whole, "{:,.1f}"))  # fmt: skip
        for p in ("p25", "p50", "p95", "p99"):
            rows.append(_ms_row(f"{p.upper()} (ms)", _pct(recent, p), _pct(whole, p)))
        rows.append(_ms_row("jitter P95-P25 (ms)", _jitter(recent), _jitter(whole)))
        for cls in DECISIONS:
            name = f"rate-limit decisions: {cls.replace('_', ' ')}"
            rows.append(_row(name, recent_dec[cls], whole_dec[cls], "{:,.0f}"))
        rows.append(
            {"metric": "rate-limit verdict", "recent": "",
             "run": verdict(whole_dec["false_reject"], whole_dec["missed_reject"])}
        )  # fmt: skip
        whole_md = Window(0)
        for w in (self.md, *windows):
            _add_md(whole_md, w)
        if whole_md.md:
            recent_md = Window(0)
            for w in last:
                _add_md(recent_md, w)
            rows += _md_rows(recent_md, whole_md, n_recent, n_whole)
        return rows


def _add_md(into: Window, w: Window) -> None:
    for kind, n in w.md.items():
        into.md[kind] = into.md.get(kind, 0) + n
    into.md_latency.add(w.md_latency)


def _md_rows(recent: Window, whole: Window, n_recent: int, n_whole: int) -> list[dict[str, Any]]:
    """The MarketDataUsers' figures: book updates, checksum failures, fan-out latency; trades
    and the gaps in their sequences when they follow the trade channel."""

    def pct(w: Window, p: float) -> float | None:
        return w.md_latency.percentile(p) if w.md_latency.count else None

    updates = [w.md.get("updates", 0) for w in (recent, whole)]
    failures = [w.md.get("checksum_failures", 0) for w in (recent, whole)]
    return [
        _row("book updates/s", updates[0] / n_recent, updates[1] / n_whole, "{:,.1f}"),
        _row("book checksum failures", failures[0], failures[1], "{:,.0f}"),
        *(_ms_row(f"book fan-out P{p:g} (ms)", pct(recent, p), pct(whole, p)) for p in (50, 99)),
        *_trade_rows(recent, whole, n_recent, n_whole),
    ]


def _trade_rows(recent: Window, whole: Window, n_recent: int, n_whole: int) -> list[dict]:
    if not whole.md.get("trades"):
        return []
    trades = [w.md.get("trades", 0) for w in (recent, whole)]
    gaps = [w.md.get("sequence_gaps", 0) for w in (recent, whole)]
    return [
        _row("trades heard/s", trades[0] / n_recent, trades[1] / n_whole, "{:,.1f}"),
        _row("trade sequence gaps", gaps[0], gaps[1], "{:,.0f}"),
    ]


def _add(tally: Tally, decisions: dict[str, int], w: Window, open_loop: bool) -> None:
    for key, cell in w.cells.items():
        tally.add(key, cell, open_loop)
    if w.limits is not None:
        for key, n in w.limits.decisions.items():
            cls = key.rpartition("/")[2]
            decisions[cls] = decisions.get(cls, 0) + n


def _pct(t: Tally, p: str) -> float | None:
    return t.latency.percentile(float(p[1:])) if t.latency.count else None


def _jitter(t: Tally) -> float | None:
    return t.latency.percentile(95) - t.latency.percentile(25) if t.latency.count else None


def _row(metric: str, recent: float | None, run: float | None, fmt: str) -> dict[str, Any]:
    show = lambda v: "-" if v is None else fmt.format(v)  # noqa: E731
    return {"metric": metric, "recent": show(recent), "run": show(run)}


def ms(us: float | None) -> str:
    """Microseconds as milliseconds to three significant figures: 0.215, 12.4, 1,234."""
    if us is None:
        return "-"
    v = us / 1000
    if v >= 100:
        return f"{v:,.0f}"
    return f"{v:.3g}" if v >= 0.001 else "0"


def _ms_row(metric: str, recent: float | None, run: float | None) -> dict[str, Any]:
    return {"metric": metric, "recent": ms(recent), "run": ms(run)}


def _point(w: Window, open_loop: bool) -> dict[str, Any]:
    """One second for the charts page, from the report's own per-second figures."""
    s = second(w, open_loop)
    return {
        "t": s["t"] - 0.5,
        **{k: s[k] for k in ("ok", "rate_limited", "rejected")},
        "failed": s["error"] + s["timeout"],
        **{k: round(s[k] / 1000, 3) for k in ("p50", "p95", "p99")},
        "lag": s["lag_ms"],
    }
