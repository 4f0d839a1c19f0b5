"""A run across hosts: Locust's master and workers on separate network hosts, as in a lab.

Four network namespaces on one bridge (tests/netns): the venue's host (`loadgen venue` bound
to its own address, allowed on purpose), the master's (`loadgen run PROFILE --master`) and two
workers' (`loadgen worker --master-host`). Nothing is on loopback between them: every request,
window and heartbeat crosses a veth pair. Skipped, with the reason, where namespaces cannot be
made (not root, no iproute2, a container that refuses).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from loadgen.metrics.store import read_raw
from loadgen.report import analysis
from tests.clients import free_port, wait_until
from tests.netns import Lan, NetnsUnavailable

ROOT = Path(__file__).resolve().parents[1]
HOSTS = ("venue", "master", "w1", "w2")
PORTS = {"rest": 8080, "ws": 8081, "fix": 8082}
NO_BATCHES = "{ add = 50, cancel = 30, amend = 10, edit = 8, cancel_all = 2 }"
PROFILE = """
name = "{name}"
[target]
venue = "url"
rest = "http://{venue}:8080"
ws = "ws://{venue}:8081/v2"
fix = "tcp://{venue}:8082"
keys_file = "{keys}"
allow_hosts = ["{venue}"]
tier = "pro"
[users]
rest = 1
ws = 1
fix = 1
[flow]
mix = {mix}
[load]
loop = "closed"
max_rate = 300
spawn_rate = 100
[[stages]]
kind = "step"
duration = "{duration}"
users = 6
"""


@pytest.fixture
def lan() -> Iterator[Lan]:
    """Fresh hosts for each test (a second or so to make): whatever a failing test left
    running goes with them."""
    try:
        with Lan(HOSTS) as made:
            yield made
    except NetnsUnavailable as exc:
        pytest.skip(f"network namespaces cannot be made here: {exc}")


def python(*args: str) -> list[str]:
    return [sys.executable, "-m", "loadgen.cli", *args]


def start_venue(lan: Lan, tmp: Path) -> subprocess.Popen:
    addr = lan.address("venue")
    proc = lan.popen("venue", python(
        "venue", "--host", addr, "--allow-host", addr, "--tier", "pro", "--pairs", "30",
        "--keys", "200", "--keys-file", str(tmp / "keys.json"),
        *(x for p, port in PORTS.items() for x in (f"--{p}-port", str(port))),
    ), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("ready"):
            return proc
    pytest.fail(f"the venue did not start: {proc.wait()}")


def stop_venue(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    return out


def write_profile(lan: Lan, tmp: Path, name: str, duration: str) -> Path:
    path = tmp / f"{name}.toml"
    path.write_text(PROFILE.format(name=name, venue=lan.address("venue"), mix=NO_BATCHES,
                                   keys=tmp / "keys.json", duration=duration))  # fmt: skip
    return path


def start_run(lan: Lan, path: Path, results: Path) -> tuple[subprocess.Popen, list]:
    """The master, then the two workers (each told only where the master is)."""
    master = lan.popen("master", python(
        "run", str(path), "--master", "--expect-workers", "2", "--wait-workers", "90",
        "--master-bind", f"{lan.address('master')}:5557", "--results", str(results),
    ), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    # one as loadgen names it, one as Locust users know it; their output to a file (a pipe
    # nobody reads could block them)
    commands = {
        "w1": python("worker", "--master-host", lan.address("master")),
        "w2": [sys.executable, "-m", "locust", "-f", str(ROOT / "locustfiles" / "exchange.py"),
               "--worker", "--master-host", lan.address("master")],
    }  # fmt: skip
    workers = []
    for host, cmd in commands.items():
        with open(results.parent / f"{host}.log", "w") as log:
            workers.append(lan.popen(host, cmd, stdout=log, stderr=subprocess.STDOUT))
    return master, workers


def run_dir_of(results: Path) -> Path:
    (found,) = results.glob("*-*")
    return found


def summary_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def sources(run_dir: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    for source, w in read_raw(run_dir):
        out[source] = out.get(source, 0) + w.count
    return out


def test_a_run_across_four_hosts_counts_what_the_venue_served(lan: Lan, tmp_path: Path) -> None:
    venue = start_venue(lan, tmp_path)
    path = write_profile(lan, tmp_path, "across", "8s")
    master, workers = start_run(lan, path, tmp_path / "results")
    out, _ = master.communicate(timeout=240)
    for w in workers:  # the master's quit tells them to go: they exit by themselves
        w.communicate(timeout=60)
        assert w.returncode == 0
    venue_out = stop_venue(venue)
    assert master.returncode == 0, out
    run_dir = run_dir_of(tmp_path / "results")
    s = summary_of(run_dir)
    by_source = sources(run_dir)
    assert len(by_source) == 2 and all(n > 0 for n in by_source.values()), by_source
    counted = dict.fromkeys(("rest", "ws", "fix"), 0)
    for o in s["operations"]:
        counted[o["protocol"]] += o["count"]
    for cell, n in s["cleanup"].items():
        counted[cell.split("/")[0]] += n
    served = re.search(r"served rest (\d+), ws (\d+), fix (\d+) trading requests", venue_out)
    assert served, venue_out
    in_flight = 6  # closed loop: at most one request per user when the venue stopped counting
    for protocol, venue_count in zip(counted, map(int, served.groups()), strict=True):
        assert 0 <= venue_count - counted[protocol] <= in_flight, (protocol, counted, served)
    assert "0 orders were still open" in venue_out, venue_out
    assert s["totals"]["outcomes"].get("error", 0) == 0, s["totals"]  # e.g. nonce races: none
    # the master's percentiles are those of every worker's raw windows taken in one process
    raw = analysis.tally([w for _, w in read_raw(run_dir)], open_loop=False)
    assert raw.total == s["totals"]["count"]
    expected = raw.latency.summary()
    assert {k: s["totals"]["latency_us"][k] for k in expected} == expected
    assert len(list(run_dir.glob("keys-used-*-w*.json"))) == 2  # the master's, one per worker


def test_a_worker_killed_mid_run_is_named_and_leaves_no_order_open(
    lan: Lan, tmp_path: Path
) -> None:
    """The run's own embedded venue this time, on the master's host and bound to its address
    (`[target] bind`, named in allow_hosts), so the workers on the other hosts reach it."""
    master_addr = lan.address("master")
    target = (f'[target]\nvenue = "embedded"\nbind = "{master_addr}"\n'
              f'allow_hosts = ["{master_addr}"]\ntier = "pro"\npairs = 30\n')  # fmt: skip
    path = tmp_path / "lost.toml"
    text = write_profile(lan, tmp_path, "lost", "14s").read_text()
    path.write_text(text[: text.index("[target]")] + target + text[text.index("[users]") :])
    results = tmp_path / "results"
    master, workers = start_run(lan, path, results)
    assert wait_until(lambda: list(results.glob("*/windows.jsonl")), timeout=120)
    run_dir = run_dir_of(results)
    assert wait_until(lambda: len(sources(run_dir)) == 2, timeout=60)  # both are trading
    for pid in lan.pids("w2"):  # every process of that host, as a machine failing would
        subprocess.run(["kill", "-KILL", str(pid)], check=False)
    out, _ = master.communicate(timeout=240)
    workers[0].communicate(timeout=60)
    s = summary_of(run_dir)
    reasons = {r["code"]: r["text"] for r in s["verdict"]["reasons"]}
    assert master.returncode == 3, out
    assert "worker_lost" in reasons, reasons
    assert "stopped sending heartbeats" in reasons["worker_lost"], reasons
    assert any("CancelAll sent for its" in i["text"] for i in s["incidents"]), s["incidents"]
    assert "0 orders were still open" in out, out  # the embedded venue's last words


ALONE = """
name = "alone"
[target]
venue = "embedded"
tier = "unlimited"
pairs = 10
[users]
rest = 1
[load]
loop = "closed"
max_rate = 100
[[stages]]
duration = "5s"
users = 2
"""


def test_a_master_whose_workers_never_come_gives_up_and_says_so(tmp_path: Path) -> None:
    """No network namespace needed: a master on loopback that nobody joins."""
    path = tmp_path / "alone.toml"
    path.write_text(ALONE)
    proc = subprocess.run(
        python("run", str(path), "--master", "--expect-workers", "2", "--wait-workers", "3",
               "--master-bind", f"127.0.0.1:{free_port()}", "--results", str(tmp_path / "results")),
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert proc.returncode == 3, proc.stdout + proc.stderr
    s = summary_of(run_dir_of(tmp_path / "results"))
    codes = [r["code"] for r in s["verdict"]["reasons"]]
    assert "workers_missing" in codes, codes
    text = next(r["text"] for r in s["verdict"]["reasons"] if r["code"] == "workers_missing")
    assert "fewer than the 2 workers expected joined the master within 3 s" in text


def test_master_mode_refuses_local_workers_and_the_web_ui(tmp_path: Path) -> None:
    for extra in (["--workers", "2"], ["--ui"]):
        proc = subprocess.run(python("run", "profiles/smoke.toml", "--master", *extra),
                              capture_output=True, text=True, timeout=60, check=False, cwd=ROOT)  # fmt: skip
        assert proc.returncode == 2, proc.stderr
        assert "--master runs workers on other machines" in proc.stderr


@pytest.fixture
def spawned() -> Iterator[list[subprocess.Popen]]:
    """Processes a loopback test starts: whatever a failing test left running is killed."""
    procs: list[subprocess.Popen] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


def test_a_worker_joining_after_the_start_is_named_and_the_run_stays_valid(
    tmp_path: Path, spawned: list[subprocess.Popen]
) -> None:
    """On loopback (no namespace needed): the master waits for one worker, a second joins
    once the load runs; Locust moves users onto it, and the report says when it joined."""
    path = tmp_path / "late.toml"
    path.write_text(ALONE.replace('duration = "5s"', 'duration = "8s"'))
    port = free_port()
    results = tmp_path / "results"
    master = subprocess.Popen(
        python("run", str(path), "--master", "--expect-workers", "1", "--master-bind",
               f"127.0.0.1:{port}", "--results", str(results)),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    spawned.append(master)
    worker = python("worker", "--master-host", f"127.0.0.1:{port}")
    with open(tmp_path / "w1.log", "w") as log:
        spawned.append(subprocess.Popen(worker, stdout=log, stderr=subprocess.STDOUT))
    assert wait_until(lambda: list(results.glob("*/windows.jsonl")), timeout=120)
    with open(tmp_path / "w2.log", "w") as log:
        spawned.append(subprocess.Popen(worker, stdout=log, stderr=subprocess.STDOUT))
    out, _ = master.communicate(timeout=180)
    for w in spawned[1:]:
        w.communicate(timeout=60)
    assert master.returncode == 0, out
    run_dir = run_dir_of(results)
    s = summary_of(run_dir)
    joined = [i["text"] for i in s["incidents"] if i["kind"] == "worker_joined"]
    assert len(joined) == 1 and "joined after the load had started" in joined[0], s["incidents"]
    assert len(sources(run_dir)) == 2  # the late worker traded too
