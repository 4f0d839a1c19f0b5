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
from pathlib import Path
from typing import Any

from locust import events
from locust.env import Environment
from locust.runners import MasterRunner

from loadgen.metrics.recorder import Window
from loadgen.users.live import CHARTS_PATH, RECENT_S, Live

TAB = "loadgen"
VENDOR = Path(__file__).resolve().parents[1] / "report" / "vendor"


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
