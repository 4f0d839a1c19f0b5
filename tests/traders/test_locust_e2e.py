"""`locust -f locustfiles/exchange.py` as a user runs it: headless, embedded venue, cleanup."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.clients import as_at_a_terminal

LOCUSTFILE = Path(__file__).resolve().parents[2] / "locustfiles" / "exchange.py"
PROTOCOLS = ("rest", "ws", "fix")
# Rare operations weighted up so a 4 s run meets every one on every protocol.
MIX = "add:40,cancel:20,amend:10,edit:10,batch_add:8,batch_cancel:8,cancel_all:4"
OPS = ("add", "amend", "edit", "cancel", "cancel_all", "batch_add", "batch_cancel")


def run_locust(tmp_path: Path, *extra: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "-u", "9", "-r",
         "9", "-t", "4s", "--only-summary", "--csv", str(tmp_path / "run"), "--order-mix", MIX,
         *extra],
        capture_output=True, text=True, timeout=120, cwd=tmp_path)  # fmt: skip
    out = result.stdout + result.stderr
    assert "Traceback" not in out, out[-3000:]
    assert result.returncode in (0, 1), out[-3000:]  # 1: Locust's "some requests failed"
    return out


@pytest.mark.parametrize("extra", [(), ("--processes", "2")], ids=["local", "processes-2"])
def test_headless_run_trades_every_operation_and_leaves_nothing_open(tmp_path, extra):
    out = run_locust(tmp_path, *extra)
    stats = (tmp_path / "run_stats.csv").read_text()
    for protocol in PROTOCOLS:
        ok_rows = {
            line.split(",")[1] for line in stats.splitlines()[1:] if line.startswith(f"{protocol},")
        }
        assert set(OPS) <= ok_rows, (protocol, ok_rows)  # every operation succeeded at least once
    assert "[rate_limited:trading]" in stats  # a closed loop on one key passes the Pro limit
    failures = (tmp_path / "run_failures.csv").read_text()
    assert "rate_limited" not in failures  # rate-limited replies are not failures
    summary = re.search(
        r"stopped after (\d+) orders, (\d+) trades.*?(\d+) orders were still open", out
    )
    assert summary, out[-3000:]
    orders, trades, still_open = map(int, summary.groups())
    assert orders > 0 and trades > 0 and still_open == 0


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupted_run_leaves_nothing_open(tmp_path, sig):
    proc = subprocess.Popen(
        [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "-u", "9", "-r",
         "9", "-t", "60s", "--only-summary"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path,
        preexec_fn=as_at_a_terminal)  # fmt: skip
    lines = []
    for line in proc.stdout:  # type: ignore[union-attr]
        lines.append(line)
        if "All users spawned" in line:
            break
    time.sleep(2)  # let them trade: orders are open when the signal lands
    proc.send_signal(sig)
    rest, _ = proc.communicate(timeout=60)
    summary = re.search(r"(\d+) orders were still open", rest)
    assert summary and summary.group(1) == "0", [*lines, rest][-40:]


def test_web_ui_shows_the_options_and_trades_with_no_other_step(tmp_path):
    """`locust -f locustfiles/exchange.py`, then Start in the browser (its HTTP API here)."""
    import json
    import urllib.request

    from tests.clients import free_port

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--web-host", "127.0.0.1",
         "--web-port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:  # the log line comes before the server listens: poll the page
            try:
                page = urllib.request.urlopen(base + "/", timeout=10).read().decode()
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, "no web UI"
                time.sleep(0.1)
        for option in ("pairs", "order_mix", "order_types", "cross_share", "tier", "flow_seed"):
            assert f'"{option}"' in page, option
        body = b"user_count=6&spawn_rate=6"  # the form's host field keeps its default
        reply = json.load(urllib.request.urlopen(base + "/swarm", data=body, timeout=10))
        assert reply["success"] and reply["host"].startswith("http://127.0.0.1:")

        def trading() -> bool:
            stats = json.load(urllib.request.urlopen(base + "/stats/requests", timeout=10))
            return stats["total_rps"] > 0 and stats["fail_ratio"] < 0.5

        deadline = time.monotonic() + 20
        while not trading():
            assert time.monotonic() < deadline, "no trading within 20 s"
            time.sleep(0.2)
        urllib.request.urlopen(base + "/stop", data=b"", timeout=10).read()  # POST, as the UI
    finally:
        proc.terminate()
        rest, _ = proc.communicate(timeout=60)
    summary = re.search(r"(\d+) orders were still open", rest)
    assert summary and summary.group(1) == "0", rest[-3000:]


def test_a_non_loopback_host_is_refused_unless_allowed_by_name(tmp_path):
    """Issue 13: `locust -f` had no target guard. `venue.example` is never resolved nor sent
    to: the check runs before any user starts."""
    result = subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "-u", "1", "-t",
         "2s", "--host", "http://venue.example:8080"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path)  # fmt: skip
    assert result.returncode != 0
    assert ("--host http://venue.example:8080: host 'venue.example' is not loopback and not in "
            "--allow-host") in result.stderr, result.stderr[-2000:]  # fmt: skip


def test_the_locustfile_caps_its_rate_by_default_and_refuses_a_rate_that_is_no_number(tmp_path):
    """Issue 13: `--max-rate` defaulted to 0 (no cap) and `--rate nan` was taken."""
    import json

    run_locust(tmp_path, "--results-dir", str(tmp_path / "res"), "-t", "2s")
    (meta,) = (tmp_path / "res").rglob("meta.json")
    assert json.loads(meta.read_text())["max_rate"] == 1000
    for flag, value in (("--rate", "nan"), ("--max-rate", "-5"), ("--rate-per-user", "inf")):
        result = subprocess.run(
            [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "-u", "1",
             "-t", "2s", flag, value],
            capture_output=True, text=True, timeout=60, cwd=tmp_path)  # fmt: skip
        assert result.returncode != 0 and "a rate must be a finite number" in result.stderr, (
            result.stderr[-1500:]
        )
