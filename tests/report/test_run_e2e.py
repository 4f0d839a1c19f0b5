"""`loadgen run` end to end: a real venue on loopback, real Locust, the report and the verdict.

Each run is short (a few seconds of load); the profiles are written here so each test says
exactly what it runs.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from loadgen.metrics.hist import Latencies
from loadgen.metrics.store import read_raw, read_windows
from loadgen.protocol.orderkinds import KINDS

BASE = """
name = "{name}"
[target]
venue = "embedded"
tier = "unlimited"
pairs = 30
{knobs}
[users]
{users}
{flow}
[load]
loop = "{loop}"
max_rate = {max_rate}
spawn_rate = 100
{stages}
[slo]
max_error_ratio = 0.01
{slo}
"""


def profile(tmp: Path, name: str, *, loop: str = "closed", knobs: str = "", stages: str,
            users: str = "rest = 1\nws = 1\nfix = 1", slo: str = "",
            max_rate: float = 5000, flow: str = "") -> Path:  # fmt: skip
    path = tmp / f"{name}.toml"
    path.write_text(
        BASE.format(name=name, loop=loop, knobs=knobs, stages=stages, users=users, slo=slo,
                    max_rate=max_rate, flow=flow)
    )  # fmt: skip
    return path


def stage(duration: str, users: int, rate: float = 0, kind: str = "step") -> str:
    return f'[[stages]]\nkind = "{kind}"\nduration = "{duration}"\nusers = {users}\nrate = {rate}\n'


def run(
    path: Path, results: Path, *args: str, timeout: float = 120
) -> tuple[subprocess.CompletedProcess, Path]:
    proc = subprocess.run(
        [sys.executable, "-m", "loadgen.cli", "run", str(path), "--results", str(results), *args],
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
    dirs = sorted(results.glob("*-*"))
    return proc, dirs[-1] if dirs else results


def latencies(run_dir: Path, response: bool) -> Latencies:
    out = Latencies()
    for w in read_windows(run_dir):
        for key, cell in w.cells.items():
            if key.split("/")[2] in ("ok", "rejected", "rate_limited"):
                out.add(cell.response if response else cell.service)
    return out


@pytest.fixture(scope="module")
def breached_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[subprocess.CompletedProcess, Path]:
    """All three traders, closed loop, with one SLO no venue can keep. The run's cap (600
    requests/s, a fraction of what one generator core sends) keeps the generator from being
    the bottleneck even on a loaded machine: a run bound by its generator is an invalid
    measurement (exit 3), not a breach."""
    tmp = tmp_path_factory.mktemp("breach")
    slo = '[slo.latency]\n"ws/add" = { p50 = 0.001 }\n"*" = { p99 = 5000 }\n'
    path = profile(tmp, "breach", stages=stage("5s", 6), slo=slo, max_rate=600)
    return run(path, tmp / "results")


def test_a_breached_slo_fails_the_run_and_names_itself_in_junit(breached_run) -> None:
    proc, run_dir = breached_run
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "SLOs breached: ws/add p50" in proc.stderr
    suite = ET.parse(run_dir / "junit.xml").getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "1"
    failed = [c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None]
    assert failed == ["ws/add p50"]


def test_a_run_mixing_every_order_type_is_served_and_leaves_no_order_open(tmp_path) -> None:
    """Every kind of orderkinds.py at once, on all three APIs: the venue takes each as sent
    (no reason names a parameter) and the stop's cancel-all leaves nothing open, untriggered
    stops included."""
    kinds = ", ".join(f'"{k}" = {4 if k == "limit" else 1}' for k in KINDS)
    flow = f"[flow]\ncross_share = 0.3\norder_types = {{ {kinds} }}\n"
    path = profile(tmp_path, "kinds", stages=stage("6s", 6), max_rate=300, flow=flow)
    proc, run_dir = run(path, tmp_path / "results")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 orders were still open" in proc.stdout
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["totals"]["count"] > 300
    refused = [r for r in summary["reasons"] if "Invalid arguments" in r["reason"]]
    assert not refused, refused
    ops = {(o["protocol"], o["op"]) for o in summary["operations"]}
    assert {("rest", "add"), ("ws", "add"), ("fix", "add")} <= ops


def test_the_report_matches_the_windows_and_no_order_is_left_open(breached_run) -> None:
    proc, run_dir = breached_run
    assert "0 orders were still open" in proc.stdout
    summary = json.loads((run_dir / "summary.json").read_text())
    windows = read_windows(run_dir)
    assert summary["totals"]["count"] == sum(w.count for w in windows) > 0
    assert {o["protocol"] for o in summary["operations"]} == {"rest", "ws", "fix"}
    for o in summary["operations"]:
        lat = o["latency_us"]
        assert lat["p25"] <= lat["p50"] <= lat["p95"] <= lat["p99"] <= lat["p99.9"] <= lat["max"]
        assert lat["jitter"] == lat["p95"] - lat["p25"]
    assert summary["run"]["loop"] == "closed"
    assert summary["run"]["latency_measure"].startswith("service time")
    html = (run_dir / "report.html").read_text()
    assert "closed loop" in html and "BREACHED" in html and "<script>" in html


@pytest.mark.skipif(not shutil.which("chromium"), reason="Debian's chromium is not installed")
def test_the_report_loads_in_headless_chromium_with_no_errors_and_draws_every_chart(
    breached_run, tmp_path: Path
) -> None:
    _, run_dir = breached_run
    proc = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
         f"--user-data-dir={tmp_path}", "--virtual-time-budget=5000", "--dump-dom",
         (run_dir / "report.html").as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    body = proc.stdout[proc.stdout.index("<body") :].split(">", 1)[0]
    # throughput by outcome and by protocol, latency and P99 by protocol, jitter, the
    # generator's lag, the HDR percentile plot, latency against throughput, rejections
    assert 'data-errors="0"' in body and 'data-charts="9"' in body, body
    assert 'data-clipped="0"' in body, body  # no y-axis label wider than its axis
    assert "Uncaught" not in proc.stderr
    assert proc.stdout.count("<canvas") == 9
    assert '<div class="verdict breached" id="verdict">SLOs breached: ws/add p50' in proc.stdout
    for heading in ("Errors and rejections by reason", "Run metadata"):
        assert heading in proc.stdout


def _body_of(page: Path, tmp_path: Path) -> str:
    proc = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path}",
         "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    return proc.stdout[proc.stdout.index("<body") :].split(">", 1)[0]


@pytest.mark.skipif(not shutil.which("chromium"), reason="Debian's chromium is not installed")
def test_no_y_axis_label_is_clipped_even_at_20_seconds(tmp_path: Path) -> None:
    """Latencies of 20,000 ms: uPlot's default 50 px axis cut them to "0,000"; ours are sized
    to their labels. The same page with the default axis shows the check can fail."""
    from loadgen.report import analysis, render
    from tests.report.test_analysis import SLO, write_run

    run_dir = tmp_path / "run"
    write_run(run_dir, [(50, 2_000_000, "ok"), (80, 20_000_000, "ok")], SLO)
    page = run_dir / "report.html"
    page.write_text(render.html(analysis.analyse(run_dir)))
    body = _body_of(page, tmp_path / "a")
    assert 'data-errors="0"' in body and 'data-charts="9"' in body and 'data-clipped="0"' in body
    default = tmp_path / "default-axis.html"
    default.write_text(
        page.read_text().replace("{label: opts.ylabel, size: fit}", "{label: opts.ylabel}")
    )
    assert 'data-clipped="0"' not in _body_of(default, tmp_path / "b")


def test_a_malformed_profile_gives_one_clear_line_and_no_traceback(tmp_path: Path) -> None:
    path = profile(tmp_path, "bad", stages=stage("ten seconds", 3))
    proc, _ = run(path, tmp_path / "results")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines == [
        f"loadgen run: {path}: stages[0].duration: expected a duration such as '30s', '5m' or "
        "'1h30m', got 'ten seconds'"
    ]
    assert not (tmp_path / "results").exists()  # nothing half-written


def test_a_venue_stall_shows_in_open_loop_percentiles_and_hides_in_closed_loop(
    tmp_path: Path,
) -> None:
    """Coordinated omission: one-second stalls every 3 s. Open loop (100 requests/s) sends on
    schedule through a stall (each user's ten sends due in it fit its window of 64 unanswered),
    so every send a stall catches carries its wait; closed loop sends nothing while it waits,
    so the stall touches one request per user and vanishes from P99."""
    knobs = "stall_every = 3\nstall_for = 1"
    users = "rest = 1"
    open_ = profile(
        tmp_path, "open", loop="open", knobs=knobs, users=users, stages=stage("7s", 10, 100)
    )
    closed = profile(tmp_path, "closed", knobs=knobs, users=users, stages=stage("7s", 10))
    proc, open_dir = run(open_, tmp_path / "open")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc, closed_dir = run(closed, tmp_path / "closed")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads((open_dir / "summary.json").read_text())
    assert summary["run"]["late_sends_venue"] == 0  # never waiting: no send was held back...
    assert not any(lv["bound_by"] for lv in summary["levels"])  # ...not the generator's lag
    assert not any("generator was the bottleneck" in f for f in summary["findings"])
    corrected = latencies(open_dir, response=True)
    assert corrected.percentile(99) >= 500_000  # us: the stall is in the tail
    assert corrected.percentile(90) >= 100_000
    naive = latencies(closed_dir, response=False)
    assert naive.max_us >= 500_000  # closed loop saw the stall...
    assert naive.percentile(99) < 50_000  # ...and its percentiles hide it
    assert json.loads((open_dir / "summary.json").read_text())["run"]["loop"] == "open"


def test_the_knee_is_where_a_venue_that_slows_with_load_breaks_its_slo(tmp_path: Path) -> None:
    """The venue adds 40 ms per 1,000 requests/s served: about 4, 8, 16 and 32 ms at 100, 200,
    400 and 800 requests/s. With P50 <= 12 ms the knee is the 200 requests/s step, and latency
    is what broke past it. Robust by design: the SLO sits 4 ms (a third of it) from the steps on
    either side, while the generator's own share of a P50 on a loaded machine is under 1 ms
    (measured with both cores busy: 4.2-4.5 ms at a 4 ms step); the knee can only move if the
    venue's latency does."""
    stages = "".join(stage("4s", 40, r) for r in (100, 200, 400, 800))
    path = profile(
        tmp_path, "knee", loop="open", knobs="latency_per_krps = 40", users="rest = 1",
        stages=stages, slo='[slo.latency]\n"*" = { p50 = 12 }',
    )  # fmt: skip
    proc, run_dir = run(path, tmp_path / "results")
    assert proc.returncode == 1, proc.stdout + proc.stderr  # the later steps breach it
    knee = json.loads((run_dir / "summary.json").read_text())["knee"]
    assert knee["level"] == "stage 2 (step)", knee
    assert 150 <= knee["throughput_rps"] <= 250
    assert knee["broke_first"] == ["latency"]
    assert knee["broke_at"] == "stage 3 (step)"


def test_a_sigkilled_run_leaves_readable_results(tmp_path: Path) -> None:
    path = profile(tmp_path, "killed", users="rest = 1", stages=stage("60s", 4))
    results = tmp_path / "results"
    proc = subprocess.Popen(
        [sys.executable, "-m", "loadgen.cli", "run", str(path), "--results", str(results)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # poll until three windows are on disk
            found = list(results.glob("*/windows.jsonl"))
            if found and found[0].read_text().count("\n") >= 3:
                break
            time.sleep(0.2)
        else:
            pytest.fail("no windows were written")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    run_dir = found[0].parent
    windows = read_windows(run_dir)
    assert len(windows) >= 3 and sum(w.count for w in windows) > 0
    report = subprocess.run(
        [sys.executable, "-m", "loadgen.cli", "report", str(run_dir)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["run"]["complete"] is False
    assert summary["totals"]["count"] == sum(w.count for w in windows)
    assert "did not finish" in (run_dir / "report.html").read_text()
    assert report.returncode == 3, report.stdout + report.stderr  # invalid: a verdict, no crash
    assert [r["code"] for r in summary["verdict"]["reasons"]] == ["cut_short"]


def test_workers_ship_their_windows_to_the_master_and_lose_none(tmp_path: Path) -> None:
    """--workers 2: two sources in windows.jsonl, and every request Locust counted is in them."""
    path = profile(tmp_path, "workers", stages=stage("4s", 4))
    proc, run_dir = run(path, tmp_path / "results", "--workers", "2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len({source for source, _ in read_raw(run_dir)}) == 2
    with open(run_dir / "locust_stats.csv") as fh:
        total = next(
            int(r["Request Count"]) for r in csv.DictReader(fh) if r["Name"] == "Aggregated"
        )
    assert sum(w.count for w in read_windows(run_dir)) == total > 0


def test_a_run_over_tls_measures_without_errors_and_the_report_names_its_tls(tmp_path) -> None:
    # The embedded venue with tls = true: all three traders over https, wss and FIX tls://,
    # verified by the CA the venue wrote into the run's folder; the venue counts what they sent.
    path = profile(tmp_path, "tls", knobs="tls = true", stages=stage("4s", 6))
    proc, run_dir = run(path, tmp_path / "results")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["run"]["tls"] == "TLS, certificates verified against the embedded venue's own CA"
    totals = summary["totals"]
    assert totals["count"] > 100, totals
    assert totals["outcomes"]["error"] == totals["outcomes"]["timeout"] == 0, totals
    assert "TLS, certificates verified" in (run_dir / "report.html").read_text()
    assert (run_dir / "venue-ca.pem").is_file()
    # insecure: the same venue, nothing verified, and the findings say so
    path = profile(tmp_path, "insecure", knobs="tls = true\ninsecure = true", stages=stage("2s", 3))
    proc, run_dir = run(path, tmp_path / "results")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["run"]["tls"] == "TLS, certificates not verified (insecure)"
    assert any("were not verified (insecure)" in line for line in summary["findings"])


def test_the_my_venue_template_runs_against_loadgen_venue_tls_as_the_readme_says(tmp_path) -> None:
    # The README's "Your own venue" steps: `loadgen venue --tls` in another terminal (here a
    # process, from the same folder, on free ports put into the template), then `loadgen run`.
    from tests.clients import free_port

    ports = [free_port() for _ in range(3)]
    template = (Path(__file__).parents[2] / "profiles" / "my-venue.toml").read_text()
    for old, new in zip(("8443", "8444", "8445"), ports, strict=True):
        assert old in template
        template = template.replace(old, str(new))
    template = template.replace('duration = "20s"', 'duration = "4s"')
    (tmp_path / "my-venue.toml").write_text(template)
    venue = subprocess.Popen(
        [sys.executable, "-m", "loadgen.cli", "venue", "--tls", "--rest-port", str(ports[0]),
         "--ws-port", str(ports[1]), "--fix-port", str(ports[2])],
        cwd=tmp_path, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert venue.stdout is not None
        assert any(line.startswith("ready") for line in venue.stdout), "the venue did not start"
        proc = subprocess.run(
            [sys.executable, "-m", "loadgen.cli", "run", "my-venue.toml"],
            cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
    finally:
        venue.terminate()
        venue.wait(timeout=10)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (run_dir,) = (tmp_path / "results").glob("*-my-venue")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["run"]["tls"] == "TLS, certificates verified against results/venue-ca.pem"
    assert summary["totals"]["outcomes"]["ok"] > 0


def test_market_data_users_follow_the_books_and_their_figures_reach_the_summary(tmp_path) -> None:
    """MarketDataUsers beside traders: every book message's checksum holds, the fan-out
    latency and counts are in summary.json and the book SLOs are judged from them; following
    the trade and ticker channels too, they hear the trades without a gap in any sequence."""
    slo = 'book_checksum_failures = 0\n[slo.latency]\n"md/book" = { p99 = 5000 }\n'
    path = profile(tmp_path, "md", stages=stage("6s", 12, 60), loop="open", max_rate=300,
                   users="rest = 1\nws = 1\nmd = 4", slo=slo,
                   flow="[flow]\npairs = { XBTUSD = 1, ETHUSD = 1 }\ncross_share = 0.3\n"
                   '[market_data]\nchannels = ["book", "trade", "ticker"]\n')  # fmt: skip
    proc, run_dir = run(path, tmp_path / "results")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    md = summary["market_data"]
    assert md["updates"] > 20 and md["checksum_failures"] == 0 and md["reconnects"] == 0
    assert md["snapshots"] == 8 * 2  # 8 subscribers (4 of every 6 users), 2 books each
    assert md["trades"] > 0 and md["sequence_gaps"] == 0 and md["tickers"] > 0, md
    lat = md["fanout_us"]
    assert 0 < lat["p25"] <= lat["p50"] <= lat["p95"] <= lat["p99"] <= lat["max"]
    names = {v["name"]: v["ok"] for v in summary["slo"]}
    assert names["book checksum failures"] and names["md/book p99"]
    # the subscribers send no orders: the open loop's rate is the traders' (60/s, not 60/3)
    assert summary["totals"]["throughput_rps"] > 35
    assert any(line.startswith("Market data: ") for line in summary["findings"])
    suite = ET.parse(run_dir / "junit.xml").getroot().find("testsuite")
    props = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert props["market_data.checksum_failures"] == "0" and int(props["market_data.updates"]) > 20
    assert props["market_data.sequence_gaps"] == "0" and int(props["market_data.trades"]) > 0
    assert "book checksum failures" in {c.get("name") for c in suite.findall("testcase")}
    if shutil.which("chromium"):  # the report's market-data table and its two charts
        page = (run_dir / "report.html").read_text()
        assert "Market data (book subscribers)" in page
        body = _body_of(run_dir / "report.html", tmp_path / "chromium")
        assert 'data-errors="0"' in body and 'data-charts="11"' in body, body
