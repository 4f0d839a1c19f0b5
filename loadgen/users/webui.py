"""A "loadgen" tab in Locust's web UI: loadgen's own figures, live, local or on a master.

Locust's UI polls /stats/requests every couple of seconds; its extension points (template
args extendedTabs/extendedTables, and an `extended_stats` list in that response) show a table
per tab. Ours comes from the windows the recorder closes (on a master, the windows the workers
ship), so its latency percentiles are the HDR figures of the run, not Locust's rounded ones:
rate-limit rejections per second by limit, the conformance decisions, P25, P50, P95, P99 and
jitter in milliseconds to three significant figures, over the last 5 seconds and the whole run.
Locust's tabs hold tables only, so the charts live on a page of ours on the same server,
/loadgen (named in the tab's first row): requests per second by outcome, P50/P95/P99, and the
generator's event-loop lag, second by second, redrawn as the run goes (uPlot, as the report).
"""

from __future__ import annotations

import json
from collections import deque
from pathlib import Path
from typing import Any

from locust import events
from locust.env import Environment
from locust.runners import MasterRunner

from loadgen.conformance import DECISIONS, verdict
from loadgen.metrics.recorder import Window, merge
from loadgen.outcome import LIMIT_REST, LIMIT_THROTTLE, LIMIT_TRADING
from loadgen.report.analysis import Tally, second

TAB = "loadgen"
RECENT_S = 5
HISTORY_S = 600  # seconds the charts page keeps
CHARTS_PATH = "/loadgen"
LIMITS = (LIMIT_TRADING, LIMIT_REST, LIMIT_THROTTLE)
VENDOR = Path(__file__).resolve().parents[1] / "report" / "vendor"


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
        else:
            self.recent.append(window)
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
    """The MarketDataUsers' figures: book updates, checksum failures, fan-out latency."""

    def pct(w: Window, p: float) -> float | None:
        return w.md_latency.percentile(p) if w.md_latency.count else None

    updates = [w.md.get("updates", 0) for w in (recent, whole)]
    failures = [w.md.get("checksum_failures", 0) for w in (recent, whole)]
    return [
        _row("book updates/s", updates[0] / n_recent, updates[1] / n_whole, "{:,.1f}"),
        _row("book checksum failures", failures[0], failures[1], "{:,.0f}"),
        *(_ms_row(f"book fan-out P{p:g} (ms)", pct(recent, p), pct(whole, p)) for p in (50, 99)),
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
                {"key": "metric", "title": "loadgen (HDR histograms)"},
                {"key": "recent", "title": f"last {RECENT_S} s"},
                {"key": "run", "title": "whole run"},
            ],
        }
    ]

    @web_ui.app.route(CHARTS_PATH)
    def charts_page() -> Any:
        return _PAGE.replace("/*UPLOT*/", (VENDOR / "uPlot.iife.min.js").read_text()).replace(
            "/*UPLOT_CSS*/", (VENDOR / "uPlot.min.css").read_text()
        )

    @web_ui.app.route(CHARTS_PATH + "/series")
    def charts_series() -> Any:
        from flask import jsonify

        return jsonify(live.series() if live is not None else [])

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


_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>loadgen: live</title>
<style>/*UPLOT_CSS*/ body { font: 14px system-ui, sans-serif; margin: 20px; }</style></head>
<body data-charts="0" data-points="0" data-errors="0">
<h1>loadgen, live (one point a second; HDR percentiles)</h1>
<div id="rate"></div><div id="latency"></div><div id="lag"></div>
<script>window.onerror = function () { document.body.dataset.errors++; };</script>
<script>/*UPLOT*/</script>
<script>
(function () {
  var charts = {}, dpr = window.devicePixelRatio || 1;
  function fit(u, values, i, cycle) {  // as the report's: every label measured, only growing
    var axis = u.axes[i], widest = 0;
    u.ctx.font = axis.font[0];
    (values || []).forEach(function (v) {
      if (v != null) widest = Math.max(widest, u.ctx.measureText(String(v)).width / dpr);
    });
    var need = Math.ceil(axis.ticks.size + axis.gap + 8 + widest);
    return cycle > 1 && axis._size ? Math.max(axis._size, need) : need;
  }
  var specs = {
    rate: ["Requests per second by outcome", "requests/s",
           [["ok", "#2e7d32"], ["rate_limited", "#f9a825"], ["rejected", "#6a1b9a"],
            ["failed", "#c62828"]]],
    latency: ["Latency", "ms", [["p50", "#1e88e5"], ["p95", "#fb8c00"], ["p99", "#c62828"]]],
    lag: ["Generator event-loop lag (worst per second)", "ms", [["lag", "#6d4c41"]]]
  };
  function draw(points) {
    Object.keys(specs).forEach(function (id) {
      var spec = specs[id];
      var data = [points.map(function (p) { return p.t; })].concat(spec[2].map(function (s) {
        return points.map(function (p) { return p[s[0]]; }); }));
      if (charts[id]) { charts[id].setData(data); return; }
      charts[id] = new uPlot({title: spec[0], width: Math.min(1100, document.body.clientWidth - 40),
        height: 240, series: [{}].concat(spec[2].map(function (s) {
          return {label: s[0], stroke: s[1], width: 2}; })),
        axes: [{label: "time"}, {label: spec[1], size: fit}]}, data, document.getElementById(id));
      document.body.dataset.charts = Object.keys(charts).length;
    });
    document.body.dataset.points = points.length;
  }
  function poll() {
    fetch(location.pathname.replace(/\\/$/, "") + "/series")
      .then(function (r) { return r.json(); }).then(draw).catch(function () {});
  }
  poll();
  setInterval(poll, 2000);
})();
</script></body></html>
"""
