"""A "loadgen" tab in Locust's web UI: loadgen's own figures, live, local or on a master.

Locust's UI polls /stats/requests every couple of seconds; its extension points (template
args extendedTabs/extendedTables, and an `extended_stats` list in that response) show a table
per tab. Ours comes from the windows the recorder closes (on a master, the windows the workers
ship), so its latency percentiles are the microsecond HDR figures of the run, not Locust's
rounded ones: rate-limit rejections per second by limit, the conformance decisions, P25, P50,
P95, P99 and jitter, over the last 5 seconds and the whole run.
"""

from __future__ import annotations

import json
from collections import deque
from typing import Any

from locust import events
from locust.env import Environment
from locust.runners import MasterRunner

from loadgen.conformance import DECISIONS, verdict
from loadgen.metrics.recorder import Window, merge
from loadgen.outcome import LIMIT_REST, LIMIT_THROTTLE, LIMIT_TRADING
from loadgen.report.analysis import Tally

TAB = "loadgen"
RECENT_S = 5
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

    def feed(self, window: Window) -> None:
        for w in self.recent:
            if w.t == window.t:
                w.add(window)
                break
        else:
            self.recent.append(window)
            self.recent = deque(sorted(self.recent, key=lambda w: w.t))
        while len(self.recent) > RECENT_S + 2:
            self._retire(self.recent.popleft())

    def _retire(self, w: Window) -> None:
        _add(self.run, self.decisions, w, self.open_loop)
        self.seconds += 1

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
        rows = [_row("requests/s", recent.total / n_recent, whole.total / n_whole, "{:,.1f}")]
        for limit in LIMITS:
            rows.append(_row(f"rate limited/s: {limit}", recent.limits.get(limit, 0) / n_recent,
                             whole.limits.get(limit, 0) / n_whole, "{:,.1f}"))  # fmt: skip
        for p in ("p25", "p50", "p95", "p99"):
            rows.append(_row(f"{p.upper()} (us)", _pct(recent, p), _pct(whole, p), "{:,.0f}"))
        rows.append(_row("jitter P95-P25 (us)", _jitter(recent), _jitter(whole), "{:,.0f}"))
        for cls in DECISIONS:
            name = f"rate-limit decisions: {cls.replace('_', ' ')}"
            rows.append(_row(name, recent_dec[cls], whole_dec[cls], "{:,.0f}"))
        rows.append(
            {"metric": "rate-limit verdict", "recent": "",
             "run": verdict(whole_dec["false_reject"], whole_dec["missed_reject"])}
        )  # fmt: skip
        return rows


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


live: Live | None = None


def feed(window: Window) -> None:
    if live is not None:
        live.feed(window)


@events.init.add_listener
def add_tab(environment: Environment, **_: Any) -> None:
    global live
    web_ui = environment.web_ui
    if web_ui is None:
        return
    opts = environment.parsed_options
    live = Live(bool(opts and opts.loop == "open"), isinstance(environment.runner, MasterRunner))
    web_ui.template_args["extendedTabs"] = [{"title": "loadgen", "key": TAB}]
    web_ui.template_args["extendedTables"] = [
        {
            "key": TAB,
            "structure": [
                {"key": "metric", "title": "loadgen (HDR, microseconds)"},
                {"key": "recent", "title": f"last {RECENT_S} s"},
                {"key": "run", "title": "whole run"},
            ],
        }
    ]

    @web_ui.app.after_request
    def extend_stats(response: Any) -> Any:
        from flask import request

        if request.path != "/stats/requests" or live is None or response.status_code != 200:
            return response
        data = response.get_json(silent=True)
        if not isinstance(data, dict):
            return response
        data["extended_stats"] = [{"key": TAB, "data": live.rows()}]
        response.set_data(json.dumps(data))
        return response
