"""The "loadgen" tab in Locust's web UI: it appears, and its numbers move during a run.

Headless Chromium is driven through its DevTools protocol (the `websockets` client we already
depend on): one page, read twice, so "moves" means the same tab updating itself. A master with
workers is checked through the same endpoint the tab reads.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.clients import free_port

ROOT = Path(__file__).resolve().parents[2]
LOCUSTFILE = ROOT / "locustfiles" / "exchange.py"


def _wait_http(url: str, deadline_s: float = 60.0) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)  # the interval of the poll
    raise AssertionError(f"{url} did not answer in {deadline_s:g} s")


@pytest.fixture
def locust_ui(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    port = free_port()
    extra = getattr(request, "param", [])
    proc = subprocess.Popen(
        [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--web-host", "127.0.0.1",
         "--web-port", str(port), "--autostart", "-u", "6", "-r", "6", "-t", "40s",
         "--tier", "starter", "--pairs", "XBTUSD,ETHUSD", *extra],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_http(f"http://127.0.0.1:{port}/")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _rows(base: str) -> dict[str, dict[str, str]]:
    with urllib.request.urlopen(f"{base}/stats/requests", timeout=5) as resp:
        data = json.load(resp)
    tab = next((t for t in data.get("extended_stats", []) if t["key"] == "loadgen"), None)
    assert tab is not None, "no loadgen table in /stats/requests"
    return {row["metric"]: row for row in tab["data"]}


def _poll(check, deadline_s: float = 40.0):  # type: ignore[no-untyped-def]
    end = time.monotonic() + deadline_s
    while True:
        value = check()
        if value or time.monotonic() > end:
            return value
        time.sleep(0.25)  # the interval of the poll


def test_the_tab_reports_loadgen_figures_locally_and_they_move(locust_ui: str) -> None:
    first = _poll(lambda: (r := _rows(locust_ui)) and r["P99 (ms)"]["run"] != "-" and r)
    assert first, "no figures in the loadgen table"
    assert first["P99 (ms)"]["run"] != "-" and "rate-limit verdict" in first
    later = _poll(
        lambda: (r := _rows(locust_ui))["requests/s"]["run"] != first["requests/s"]["run"] and r
    )
    assert later, "the figures did not move"


@pytest.mark.parametrize("locust_ui", [["--processes", "2"]], indirect=True)
def test_the_tab_works_on_a_master_with_workers(locust_ui: str) -> None:
    rows = _poll(lambda: (r := _rows(locust_ui)) and r["P99 (ms)"]["run"] != "-" and r)
    assert rows, "the master's table stayed empty"
    decided = _poll(
        lambda: int(_rows(locust_ui)["rate-limit decisions: agreed"]["run"].replace(",", ""))
    )
    assert decided > 0


class DevTools:
    """Just enough of Chromium's DevTools protocol: open a page, evaluate JavaScript in it."""

    def __init__(self, ws: object) -> None:
        self.ws = ws
        self.ids = 0

    @staticmethod
    def open_page(port: int, url: str) -> str:
        """A new page at `url`; its DevTools WebSocket address."""
        req = urllib.request.Request(f"http://127.0.0.1:{port}/json/new?{url}", method="PUT")
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.load(resp)["webSocketDebuggerUrl"]

    def evaluate(self, expression: str) -> object:
        self.ids += 1
        self.ws.send(json.dumps({"id": self.ids, "method": "Runtime.evaluate",
                                 "params": {"expression": expression, "returnByValue": True}}))  # fmt: skip
        while True:
            msg = json.loads(self.ws.recv(timeout=10))
            if msg.get("id") == self.ids:
                return msg.get("result", {}).get("result", {}).get("value")


@pytest.mark.skipif(not shutil.which("chromium"), reason="Debian's chromium is not installed")
def test_the_tab_appears_in_headless_chromium_and_its_numbers_move(
    locust_ui: str, tmp_path: Path
) -> None:
    port = free_port()
    browser = subprocess.Popen(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'chromium'}",
         f"--remote-debugging-port={port}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_http(f"http://127.0.0.1:{port}/json/version")
        from websockets.sync.client import connect

        with connect(DevTools.open_page(port, f"{locust_ui}/?tab=loadgen"), max_size=None) as ws:
            _see_the_tab_move(DevTools(ws))
    finally:
        browser.terminate()
        browser.wait(timeout=30)


@pytest.mark.skipif(not shutil.which("chromium"), reason="Debian's chromium is not installed")
def test_the_charts_page_draws_and_grows_as_the_run_goes(locust_ui: str, tmp_path: Path) -> None:
    """The tab names /loadgen; there three uPlot charts redraw every 2 s with a point a second."""
    rows = _poll(lambda: (r := _rows(locust_ui)) and r)
    assert rows["charts"]["run"] == "/loadgen"
    port = free_port()
    browser = subprocess.Popen(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={tmp_path / 'chromium'}", f"--remote-debugging-port={port}",
         "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_http(f"http://127.0.0.1:{port}/json/version")
        from websockets.sync.client import connect

        with connect(DevTools.open_page(port, f"{locust_ui}/loadgen"), max_size=None) as ws:
            page = DevTools(ws)
            read = "({...document.body.dataset})"
            first = _poll(lambda: (v := page.evaluate(read)) and int(v["points"]) > 0 and v)
            assert first and first["charts"] == "3" and first["errors"] == "0", first
            grew = _poll(lambda: (v := page.evaluate(read)) and
                         int(v["points"]) > int(first["points"]) and v)  # fmt: skip
            assert grew, f"the charts stayed at {first['points']} points"
    finally:
        browser.terminate()
        browser.wait(timeout=30)


def _see_the_tab_move(page: DevTools) -> None:
    read = (
        "(() => { const t = [...document.querySelectorAll('table')].find(x =>"
        " x.innerText.includes('loadgen (HDR')); if (!t) return null;"
        " const r = [...t.querySelectorAll('tr')].find(x => x.innerText.startsWith('requests/s'));"
        " const tabs = [...document.querySelectorAll('[role=tab]')].map(x => x.innerText);"
        " return r ? {tabs: tabs, row: r.innerText} : null; })()"
    )
    first = _poll(lambda: (v := page.evaluate(read)) and "-" not in v["row"].split("\t")[1:] and v)
    assert first, "the loadgen tab's table never showed figures"
    assert any("LOADGEN" in t.upper() for t in first["tabs"]), first["tabs"]
    moved = _poll(lambda: (v := page.evaluate(read)) and v["row"] != first["row"] and v)
    assert moved, f"the tab's numbers did not move from {first['row']!r}"


def test_the_web_ui_listens_on_loopback_only_unless_asked(tmp_path: Path) -> None:
    """Issue 13: Locust's web UI has no login and served every interface; ours binds 127.0.0.1
    by default (--web-host to change it)."""
    import psutil

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--web-port", str(port)],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_http(f"http://127.0.0.1:{port}/")
        listening = {
            c.laddr.ip
            for c in psutil.Process(proc.pid).net_connections(kind="tcp")
            if c.status == psutil.CONN_LISTEN and c.laddr.port == port
        }
        assert listening == {"127.0.0.1"}, listening
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_the_tab_shows_the_book_subscribers_figures_when_any_ran() -> None:
    from loadgen.metrics.hist import Latencies
    from loadgen.metrics.recorder import Window
    from loadgen.users.live import Live

    live = Live(open_loop=False, partial_last=False)
    assert not [r for r in live.rows() if r["metric"].startswith("book")]
    for t in range(1, 12):
        live.feed(Window(t, md={"updates": 100, "checksum_failures": int(t == 3)},
                         md_latency=Latencies.from_tally({2_000: 99, 30_000: 1})))  # fmt: skip
    rows = {r["metric"]: r for r in live.rows()}
    assert rows["book updates/s"]["run"] == "100.0" and rows["book updates/s"]["recent"] == "100.0"
    assert rows["book checksum failures"]["run"] == "1"
    assert rows["book checksum failures"]["recent"] == "0"
    assert rows["book fan-out P50 (ms)"]["run"].startswith("2")
    assert "trade sequence gaps" not in rows  # no subscriber followed trades
    live.feed(Window(12, md={"trades": 40, "sequence_gaps": 2}))
    rows = {r["metric"]: r for r in live.rows()}
    assert rows["trade sequence gaps"]["run"] == "2" and rows["trades heard/s"]["run"] != "-"
