"""report.html: one self-contained file (uPlot and the data inlined), readable offline.

The verdict comes first (passed, breached, invalid, with its reasons), then the findings in
words and the SLO verdicts. Charts (hover for values, drag to zoom, double-click to reset; every
axis titled with its unit, every time axis marked at the stage boundaries): throughput over
time stacked by outcome, and by protocol; P25/P50/P95/P99 over time, and P99 by protocol; jitter;
the generator's event-loop lag (so a slow generator is never read as a slow venue); the HDR
percentile plot (latency against 1/(1 - p) on a log scale, per protocol); latency percentiles
against achieved throughput (one point per load level); rate-limited share against offered rate;
with rate limits checked, the shadow counters of the busiest keys against the published
threshold. Then the rate-limit conformance, the levels (each says whether it measured the venue
or the generator), a table per protocol/operation, the venue's error and rejection texts
counted, and the run's metadata (versions, machine, knobs) with its incidents.
The page sets data-charts (charts drawn), data-errors (script errors) and data-clipped (y-axis
tick labels wider than their axis leaves room for) on <body>, which the headless-browser test
reads.
"""

from __future__ import annotations

import html as _html
import json
from pathlib import Path
from typing import Any

VENDOR = Path(__file__).with_name("vendor")
OUTCOME_COLOURS = {
    "ok": "#2e7d32", "rate_limited": "#f9a825", "rejected": "#6a1b9a",
    "error": "#c62828", "timeout": "#37474f",
}  # fmt: skip

_SCRIPT = r"""
(function () {
  var D = JSON.parse(document.getElementById("data").textContent);
  var drawn = 0, clipped = 0, charts = [];
  var dpr = window.devicePixelRatio || 1;
  function el(id) { return document.getElementById(id); }
  function width() { return Math.min(1100, document.body.clientWidth - 40); }
  function textWidth(u, axis, text) {
    u.ctx.font = axis.font[0];
    return u.ctx.measureText(text).width / dpr;
  }
  // A y axis as wide as its longest label (uPlot's default 50 px cuts "20,000" to "0,000")
  // (uPlot asks again while the layout settles, and the ticks may change between asks: the
  // size only ever grows, so it settles, and each ask measures every label in pixels)
  function fit(u, values, i, cycle) {
    var axis = u.axes[i], widest = 0;
    (values || []).forEach(function (v) {
      if (v != null) widest = Math.max(widest, textWidth(u, axis, String(v)));
    });
    var need = Math.ceil(axis.ticks.size + axis.gap + 8 + widest);
    return cycle > 1 && axis._size ? Math.max(axis._size, need) : need;
  }
  // Stage boundaries on every time axis: a dashed line and the stage's name
  var marks = {hooks: {draw: [function (u) {
    if (!u.scales.x.time) return;
    var ctx = u.ctx, top = u.bbox.top, bottom = top + u.bbox.height;
    ctx.save(); ctx.strokeStyle = "#888"; ctx.fillStyle = "#555"; ctx.setLineDash([4, 4]);
    ctx.font = (11 * dpr) + "px sans-serif";
    D.marks.forEach(function (m) {
      var x = u.valToPos(m.t, "x", true);
      if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) return;
      ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, bottom); ctx.stroke();
      ctx.fillText(m.name, x + 4, top + 12 * dpr);
    });
    ctx.restore();
  }]}};
  function chart(id, title, xs, series, opts) {
    opts = opts || {};
    var o = {title: title, width: width(), height: 280, series: [{}].concat(series),
      cursor: {drag: {x: true, y: false}}, plugins: [marks],
      scales: Object.assign({x: {time: !opts.xlabel}}, opts.scales || {}),
      axes: [{label: opts.xlabel || "time", values: opts.xvalues, splits: opts.xsplits},
             {label: opts.ylabel, size: fit}]};
    charts.push(new uPlot(o, [xs].concat(series.map(function (s) { return s.data; })), el(id)));
    drawn++;
  }
  function line(label, data, colour, extra) {
    return Object.assign({label: label, data: data, stroke: colour, width: 2}, extra || {});
  }
  var palette = {rest: "#1e88e5", ws: "#43a047", fix: "#8e24aa", all: "#222"};
  var S = D.series, T = S.map(function (s) { return s.t - 0.5; });  // a second at its middle
  // throughput stacked by outcome: each band is the running sum of those below it, drawn top
  // first with an opaque fill, so each lower band covers the one above down to its own line
  var acc = S.map(function () { return 0; }), bands = [];
  D.outcomes.forEach(function (name) {
    acc = acc.map(function (v, i) { return v + S[i][name]; });
    bands.push(line(name, acc.slice(), D.colours[name], {fill: D.colours[name]}));
  });
  chart("throughput", "Requests per second, stacked by outcome", T, bands.reverse(),
    {ylabel: "requests/s"});
  var protocols = Object.keys(D.distribution).filter(function (p) { return p !== "all"; });
  chart("protocols", "Requests per second by protocol", T, protocols.map(function (p) {
    return line(p, S.map(function (s) { return s.protocols[p] || 0; }), palette[p]);
  }), {ylabel: "requests/s"});
  var ms = function (k) { return S.map(function (s) { return s[k] / 1000; }); };
  chart("latency", "Latency: P25, P50, P95, P99 per second", T, [
    line("P25", ms("p25"), "#90caf9"), line("P50", ms("p50"), "#1e88e5"),
    line("P95", ms("p95"), "#fb8c00"), line("P99", ms("p99"), "#c62828")], {ylabel: "ms"});
  chart("protocol_latency", "P99 latency per second by protocol", T, protocols.map(function (p) {
    return line(p, S.map(function (s) { return (s.protocol_p99[p] || 0) / 1000; }), palette[p]);
  }), {ylabel: "ms"});
  chart("jitter", "Jitter: P95 - P25 per second", T, [line("jitter", ms("jitter"), "#6a1b9a")],
    {ylabel: "ms"});
  chart("lag", "Generator event-loop lag (worst per second): high here means the generator, " +
    "not the venue, was slow", T, [line("lag", S.map(function (s) { return s.lag_ms; }), "#6d4c41")],
    {ylabel: "ms"});
  // HDR percentile plot: x is 1/(1 - p) on a log scale, labelled as percentiles
  var names = Object.keys(D.distribution), first = D.distribution[names[0]] || [];
  var X = first.map(function (pt) { return 1 / Math.max(1e-6, 1 - pt[0] / 100); });
  chart("distribution", "Latency by percentile (HDR plot; the tail to the right)", X,
    names.map(function (p) {
      return line(p, D.distribution[p].map(function (pt) { return pt[1] / 1000; }), palette[p] || "#222");
    }), {xlabel: "percentile", ylabel: "ms", scales: {x: {time: false, distr: 3}},
      xsplits: function (u, i, lo, hi) {  // one tick a decade of 1/(1 - p): 0%, 90%, 99%...
        var out = [];
        for (var v = 1; v <= hi * 1.0001; v *= 10) { if (v >= lo * 0.9999) out.push(v); }
        return out; },
      xvalues: function (u, vals) { return vals.map(function (v) {
        return v == null ? "" : String(+(100 * (1 - 1 / v)).toFixed(5)) + "%"; }); }});
  var L = D.levels.slice().sort(function (a, b) { return a.throughput_rps - b.throughput_rps; });
  var pts = {show: true, size: 8};
  var lx = L.map(function (l) { return l.throughput_rps; });
  var lms = function (k) { return L.map(function (l) { return l[k] / 1000; }); };
  chart("curve", "Latency against achieved throughput, one point per level", lx, [
    line("P50", lms("p50"), "#1e88e5", {points: pts}), line("P95", lms("p95"), "#fb8c00", {points: pts}),
    line("P99", lms("p99"), "#c62828", {points: pts})],
    {xlabel: "achieved requests/s", ylabel: "ms"});
  var R = D.levels.slice().sort(function (a, b) { return a.offered_rps - b.offered_rps; });
  chart("rejections", "Rate-limited share against offered rate, one point per level",
    R.map(function (l) { return l.offered_rps; }),
    [line("rate limited %", R.map(function (l) { return 100 * l.rate_limited_share; }),
      "#f9a825", {points: pts})],
    {xlabel: "offered requests/s", ylabel: "% of requests"});
  if (D.market_data) {
    var md = function (k) { return S.map(function (s) { return (s[k] || 0) / 1000; }); };
    chart("md_fanout", "Book fan-out latency per second (P50, P99) and checksum failures", T, [
      line("P50", md("md_p50"), "#1e88e5"), line("P99", md("md_p99"), "#c62828"),
      line("checksum failures", S.map(function (s) { return s.md_failures || 0; }), "#000",
        {dash: [4, 4]})], {ylabel: "ms"});
    var U = S.filter(function (s) { return s.md_updates; }).sort(function (a, b) {
      return a.users - b.users; });
    chart("md_users", "Book fan-out P99 against users running (the knee is in subscribers)",
      U.map(function (s) { return s.users; }),
      [line("P99", U.map(function (s) { return s.md_p99 / 1000; }), "#c62828", {points: pts})],
      {xlabel: "users (subscribers and traders)", ylabel: "ms"});
  }
  var RL = D.rate_limits;
  if (RL) {
    var C = RL.counters, keys = Object.keys(C.keys), colours = ["#1e88e5", "#43a047", "#fb8c00",
      "#8e24aa", "#00897b", "#6d4c41", "#3949ab", "#c0ca33"];
    var lines = keys.map(function (n, i) { return line(n, C.keys[n], colours[i % 8], {width: 1}); });
    lines.push(line("threshold", C.t.map(function () { return RL.threshold; }), "#c62828",
      {dash: [6, 4]}));
    chart("counters", "Shadow trading counter per key/pair (at least this high; highest each " +
      "second) against the published threshold", C.t, lines, {ylabel: "counter"});
  }
  // A y tick label is clipped when it is wider than the room its axis leaves it (uPlot draws
  // the labels on the canvas, after this script, in a microtask: each is measured in the
  // axis's own font once they are drawn)
  setTimeout(function () {
    charts.forEach(function (u) {
      var axis = u.axes[1], room = axis._size - axis.ticks.size - axis.gap;
      (axis._values || []).forEach(function (v) {
        if (v != null && textWidth(u, axis, String(v)) > room) clipped++;
      });
    });
    document.body.dataset.clipped = clipped;
    document.body.dataset.charts = drawn;
  }, 0);
})();
"""


def html(summary: dict[str, Any]) -> str:
    run = summary["run"]
    data = {
        "series": summary["series"],
        "levels": summary["levels"],
        "outcomes": list(OUTCOME_COLOURS),
        "colours": OUTCOME_COLOURS,
        "rate_limits": summary.get("rate_limits"),
        "distribution": summary.get("distribution", {}),
        "marks": summary.get("stage_marks", []),
        "market_data": summary.get("market_data"),
    }
    verdict = summary["verdict"]
    title = f"loadgen report: {run['profile'] or run['dir']}"
    e = _html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{e(title)}</title><style>{(VENDOR / 'uPlot.min.css').read_text()}{_CSS}</style>",
        "<script>window.onerror = function (m) { document.body.dataset.errors =",
        " (+(document.body.dataset.errors || 0) + 1); };</script>",
        "</head><body data-errors='0' data-charts='0'>",
        f"<h1>{e(title)}</h1>",
        f"<div class='verdict {e(verdict['status'])}' id='verdict'>{e(verdict['headline'])}</div>",
        f"<p class='meta'>{e(run['loop'])} loop; latency is {e(run['latency_measure'])}; "
        f"{run['seconds']:.0f} s of windows; {run['late_sends']} sends late by the generator, "
        f"{run.get('late_sends_venue', 0)} held by the venue"
        f"; reply times: {e(run['timestamps']['text'])}"
        f"; {e(run.get('tls', 'plain TCP'))}"
        f"{'' if run['complete'] else '; the run did not finish (results up to its last second)'}"
        "</p>",
        "<h2>What the run says</h2><ul class='findings'>",
        *(f"<li>{e(line)}</li>" for line in summary["findings"][1:]),
        "</ul>",
        _slo_table(summary["slo"]),
        *(f"<div class='chart' id='{i}'></div>" for i in CHARTS),
        _rate_limits(summary.get("rate_limits")),
        _market_data(summary.get("market_data")),
        _levels_table(summary["levels"]),
        _ops_table(summary["operations"]),
        _reasons_table(summary.get("reasons", [])),
        _metadata_table(run.get("metadata", {}), summary.get("incidents", [])),
        f"<script id='data' type='application/json'>{_json_for_html(data)}</script>",
        f"<script>{(VENDOR / 'uPlot.iife.min.js').read_text()}</script>",
        f"<script>{_SCRIPT}</script></body></html>",
    ]
    return "\n".join(parts)


CHARTS = ("throughput", "protocols", "latency", "protocol_latency", "jitter", "lag",
          "distribution", "curve", "rejections")  # fmt: skip


def _market_data(md: dict[str, Any] | None) -> str:
    """The MarketDataUsers' figures and their two charts (drawn by the script), when any ran."""
    if not md:
        return ""
    lat = md["fanout_us"]
    rows = [[md["updates"], md["updates_per_s"], md["snapshots"], md["checksum_failures"],
             md["resubscribes"], md["reconnects"],
             *(_ms(lat[k]) if lat else "-" for k in ("p25", "p50", "p95", "p99", "max")),
             md.get("trades", 0), md.get("sequence_gaps", 0), md.get("tickers", 0)]]  # fmt: skip
    head = ["book updates", "updates/s", "snapshots", "checksum failures", "resubscribes",
            "reconnects", "fan-out P25 ms", "P50 ms", "P95 ms", "P99 ms", "max ms", "trades",
            "trade sequence gaps", "ticker updates"]  # fmt: skip
    charts = "".join(f"<div class='chart' id='{i}'></div>" for i in MD_CHARTS)
    return (
        "<h2 id='market-data'>Market data (book subscribers)</h2><p>Fan-out latency: the venue's "
        "timestamp in a book update to the subscriber's kernel receive time (it includes the "
        "venue's coalescing: 10 ms, longer under load).</p>" + _table(head, rows) + charts
    )


MD_CHARTS = ("md_fanout", "md_users")


def _reasons_table(reasons: list[dict[str, Any]]) -> str:
    if not reasons:
        return "<h2>Errors and rejections by reason</h2><p>None: every request was answered ok.</p>"
    rows = [
        [f"{r['protocol']}/{r['op']}", r["outcome"] + (f" ({r['limit']})" if r["limit"] else ""),
         r["reason"], r["count"]]
        for r in reasons[:50]
    ]  # fmt: skip
    return "<h2>Errors and rejections by reason</h2>" + _table(
        ["protocol/operation", "outcome", "the venue's words", "count"], rows
    )


def _metadata_table(meta: dict[str, Any], incidents: list[dict[str, Any]]) -> str:
    rows = [[k, v] for k, v in meta.items() if k != "target"]
    target = meta.get("target", {})
    defaults = ((), [], "", None)
    knobs = {k: v for k, v in target.items()
             if v not in defaults and v is not True and (v is False or v != 0)}  # fmt: skip
    rows.append(["venue knobs", ", ".join(f"{k}={v}" for k, v in knobs.items()) or "none"])
    out = "<h2>Run metadata</h2>" + _table(["what", "value"], rows)
    if incidents:
        out += "<h3>Incidents</h3>" + _table(
            ["kind", "what happened"], [[i["kind"], i["text"]] for i in incidents]
        )
    return out


def _json_for_html(data: Any) -> str:
    return json.dumps(data, separators=(",", ":")).replace("</", "<\\/")


def _table(head: list[str], rows: list[list[Any]]) -> str:
    e = _html.escape
    out = ["<table><tr>", *(f"<th>{e(h)}</th>" for h in head), "</tr>"]
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in row) + "</tr>")
    out.append("</table>")
    return "".join(out)


def _slo_table(verdicts: list[dict[str, Any]]) -> str:
    if not verdicts:
        return "<h2>SLOs</h2><p>The profile sets none.</p>"
    rows = [
        [v["name"], v["limit"], v["measured"], "held" if v["ok"] else "BREACHED"] for v in verdicts
    ]
    return "<h2>SLOs</h2>" + _table(["SLO", "limit", "measured", "verdict"], rows)


def _rate_limits(section: dict[str, Any] | None) -> str:
    if section is None:
        return ""
    c = section["classes"]
    # fmt: off
    out = [
        "<h2>Rate limits: conformance to the published limits</h2>",
        _table(
            ["tier", "threshold", "verdict", "decisions", "agreed", "false rejects",
             "missed rejects", "ambiguous"],
            [[section["tier"], section["threshold"], section["verdict"].replace("_", " "),
              section["decisions"], c["agreed"], c["false_reject"], c["missed_reject"],
              c["ambiguous"]]],
        ),
        "<div class='chart' id='counters'></div>",
        _table(
            ["protocol/operation", "agreed", "false rejects", "missed rejects", "ambiguous"],
            [[r["where"], r["agreed"], r["false_reject"], r["missed_reject"], r["ambiguous"]]
             for r in section["by_operation"]],
        ),
    ]
    first = section["first_divergence"]
    if first:
        out.append(
            f"<h3>First divergence: {_html.escape(first['class'].replace('_', ' '))} on "
            f"{_html.escape(first['key'])}/{_html.escape(first['pair'])}, and the requests that "
            "led to it</h3>"
        )
        t0 = first["recent"][0]["t"] if first["recent"] else first["t"]
        out.append(
            _table(
                ["t (ms)", "protocol", "operation", "cost", "counter before", "venue"],
                [[f"{(r['t'] - t0) * 1000:.1f}", r["protocol"], r["op"],
                  _span(r["cost"]), _span(r["counter"]), r["venue"]] for r in first["recent"]],
            )
        )
    # fmt: on
    return "".join(out)


def _span(pair: list[float]) -> str:
    lo, hi = pair
    return f"{lo:g}" if abs(hi - lo) < 0.001 else f"{lo:g}..{hi:g}"


def _levels_table(levels: list[dict[str, Any]]) -> str:
    rows = [
        [lv["name"], lv["users"], lv["offered_rps"], lv["throughput_rps"], _ms(lv["p50"]),
         _ms(lv["p95"]), _ms(lv["p99"]), f"{lv['rate_limited_share']:.1%}",
         f"{lv['error_share']:.2%}", "held" if lv["ok"] else "broke: " + ", ".join(lv["broke"]),
         "generator: " + "; ".join(lv["generator_why"]) if lv.get("bound_by") else "venue"]
        for lv in levels
    ]  # fmt: skip
    head = ["level", "users", "offered/s", "achieved/s", "P50 ms", "P95 ms", "P99 ms",
            "rate limited", "errors", "SLOs", "measured"]  # fmt: skip
    return "<h2>Load levels</h2>" + _table(head, rows)


def _ops_table(ops: list[dict[str, Any]]) -> str:
    rows = []
    for o in ops:
        lat, n = o["latency_us"], o["outcomes"]
        rows.append(
            [o["protocol"], o["op"], o["count"], o["throughput_rps"], n["ok"], n["rate_limited"],
             n["rejected"], n["error"] + n["timeout"], _ms(lat["p25"]), _ms(lat["p50"]),
             _ms(lat["p95"]), _ms(lat["p99"]), _ms(lat["p99.9"]), _ms(lat["max"]), _ms(lat["jitter"])]
        )  # fmt: skip
    head = ["protocol", "operation", "requests", "req/s", "ok", "rate limited", "rejected",
            "errors", "P25 ms", "P50 ms", "P95 ms", "P99 ms", "P99.9 ms", "max ms", "jitter ms"]  # fmt: skip
    return "<h2>Per protocol and operation</h2>" + _table(head, rows)


def _ms(us: int) -> str:
    return f"{us / 1000:.3f}"


_CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 20px; color: #222; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 28px; }
.meta { color: #555; } .findings li { margin: 4px 0; }
table { border-collapse: collapse; margin: 8px 0; } td, th { border: 1px solid #ccc; padding: 3px 8px; }
th { background: #f3f3f3; } td { text-align: right; } td:first-child { text-align: left; }
.chart { margin: 16px 0; }
.verdict { padding: 10px 14px; border-radius: 4px; margin: 8px 0 16px; font-size: 15px; }
.verdict.passed { background: #e8f5e9; border: 1px solid #2e7d32; }
.verdict.breached { background: #fff3e0; border: 1px solid #e65100; }
.verdict.invalid { background: #ffebee; border: 1px solid #c62828; }
"""
