"""`loadgen bench`: the steady-part arithmetic, the table, and one quick run end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from loadgen.bench import openloop, suite, traders


def test_steady_cost_leaves_out_start_up_and_counts_only_the_steady_part():
    # monotonic s, requests so far, CPU s: 1 s of start-up CPU before any request, then
    # 1,000 requests/s at 0.05 CPU-s/s (50 us a request) for 10 s.
    lines = ["0.0,0,0.0", "1.0,0,1.0"]
    lines += [f"{1.0 + t:.1f},{1000 * t},{1.0 + 0.05 * t:.4f}" for t in range(1, 11)]
    sample = traders.steady(lines)
    assert sample is not None
    assert sample.us_per_request == pytest.approx(50.0)
    assert sample.requests_per_s == pytest.approx(1000.0)
    # the steady part starts at 20% of the busy span (2 s .. 11 s): at 4 s of 11
    assert sample.requests == 10_000 - 3_000


def test_steady_cost_needs_a_busy_run():
    assert traders.steady(["0.0,0,0.1", "0.5,0,0.2", "1.0,0,0.3"]) is None
    assert traders.steady(["garbage", "1.0,5,0.1"]) is None


def test_worker_counts_grow_with_the_machine(monkeypatch):
    monkeypatch.setattr(suite.os, "sched_getaffinity", lambda _: set(range(16)))
    assert suite.worker_counts("") == [1, 2, 4, 8]
    monkeypatch.setattr(suite.os, "sched_getaffinity", lambda _: {0, 1})
    assert suite.worker_counts("") == [1, 2]
    assert suite.worker_counts("3,1") == [1, 3]
    with pytest.raises(ValueError, match="--workers"):
        suite.worker_counts("0")


def test_capacity_line_from_the_mixed_cost():
    result = {
        "generator": {"Mixed": {"median_us": 75.0}},
        "venue": {
            "rest": {"median_us": 30.0},
            "ws": {"median_us": 20.0},
            "fix": {"median_us": 25.0},
        },
    }
    c = suite.capacity(result)
    assert c["generator_cores"] == pytest.approx(1.25)  # 16,667/s x 75 us
    assert c["worker_cores_needed"] == 2
    assert c["venue_cores"] == pytest.approx(0.42, abs=0.01)
    assert c["requests_per_s_per_worker_core"] == 13_333


def test_workers_per_master_from_the_measured_slope():
    from loadgen.bench.master import takes

    rows = [{"workers": 10, "master_cpu_per_s": 0.03}, {"workers": 210, "master_cpu_per_s": 0.23}]
    t = takes(rows)
    assert t["cpu_per_worker_s"] == pytest.approx(0.001)
    assert t["base_cpu_s"] == pytest.approx(0.02)
    assert t["workers_per_master"] == 680  # (0.7 - 0.02) / 0.001


def test_the_simulator_sees_the_master_end_while_it_is_still_unreaped():
    """The master bench's simulator waits for the master, a child of the bench that the bench
    reaps only after the simulator exits: an exited, unreaped master (a zombie) is an end."""
    import time

    from loadgen.procs import wait_for_end

    child = subprocess.Popen([sys.executable, "-c", "pass"])  # exits, not reaped: a zombie
    try:
        started = time.monotonic()
        wait_for_end(child.pid, 30)
        assert time.monotonic() - started < 10 and child.poll() == 0
    finally:
        child.wait()
    started = time.monotonic()
    wait_for_end(child.pid, 30)  # reaped: gone
    assert time.monotonic() - started < 1


def test_the_open_loop_ceiling_names_what_stopped_it():
    """The median run's first step not held, with why: its late share and the generator's CPU."""

    def run(held: int, late: float) -> dict:
        steps = [{"offered": r, "achieved": r * 0.99, "late_share": 0.0, "held": True,
                  "generator_cpu": r / 10_000} for r in openloop.CEILING_STEPS if r <= held]  # fmt: skip
        steps.append({"offered": held + 2000, "achieved": held + 1900.0, "late_share": late,
                      "held": False, "generator_cpu": 0.97})  # fmt: skip
        return {"held_rps": held, "top_rps": held + 1900.0, "steps": steps}

    result = openloop.summarize([{"p99_us": 1500, "late_share": 0.0}],
                                [run(6000, 0.2), run(8000, 0.05), run(10000, 0.5)])  # fmt: skip
    assert result["ceiling"]["held_rps"] == 8000 and not result["ceiling"]["met"]
    (_, line) = openloop.table_lines(result)
    assert line.endswith("; first step not held: 10,000/s, 9,900 achieved, 5.0% of sends late, "
                         "generator at 0.97 of its core")  # fmt: skip
    assert openloop.first_missed([{"held_rps": 14000, "top_rps": 14000.0, "steps": []}]) == ""


def test_bench_quick_writes_json_and_prints_the_table(tmp_path: Path):
    """The whole bench, one short run of each part, from the command line."""
    done = subprocess.run(
        [sys.executable, "-m", "loadgen.cli", "bench", "--quick", "--workers", "1",
         "--results", str(tmp_path)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (out,) = tmp_path.glob("bench-*")
    result = json.loads((out / "bench.json").read_text())
    assert set(result["venue"]) == {"rest", "ws", "fix"}
    assert all(v["median_us"] > 0 and v["errors"] == 0 for v in result["venue"].values())
    gen = result["generator"]
    assert set(gen) == set(suite.GENERATORS)
    assert gen["FastHttpUser"]["ratio_to_baseline"] == 1.0
    assert all(row["median_us"] > 0 for row in gen.values())
    assert [r["workers"] for r in result["scaling"]] == [1]
    e2e = result["end_to_end"]
    assert e2e["requests_per_min"] > 0 and e2e["p99_us"] >= e2e["p50_us"] > 0
    assert e2e["error_share"] == 0.0
    table = (out / "table.txt").read_text()
    assert any(line.startswith("capacity:") for line in table.splitlines())
    assert "open loop, one worker: ceiling" in table
    assert "targets (issue 14)" in table and "met" in table.splitlines()[-1]
    wire = result["wire"]  # measured where tcpdump runs (as root), else the reason why not
    assert isinstance(wire, str) or [c["protocols"].keys() for c in wire] == [{"rest", "ws", "fix"}]
    (master,) = result["master"]["rows"]  # a real master, ten simulated workers' reports
    assert master["workers"] == 10 and master["windows_written"] > 0 and master["master_exit"] == 0
    assert 0 < master["master_cpu_per_s"] < 1 and master["lag_ms"]["p50"] > 0
    assert "one master takes" in table
    md = result["market_data"]  # the venue's fan-out cost per subscriber, and held subscribers
    assert [row["subscribers"] for row in md["fanout"]["rows"]] == [250, 1000]
    assert all(row["delivered"] > 0 for row in md["fanout"]["rows"])
    assert md["held"]["held"] == 100 and md["held"]["checksum_failures"] == 0
    assert "targets (issue 18)" in table and "book subscribers" in table
    assert "FastHttpUser" in done.stdout and "end to end:" in done.stdout
    assert table.strip() in done.stdout.replace("\r", "")


def test_bench_handshake_ends_when_the_venue_closes_instead_of_answering():
    # A venue that accepts and closes (as one refusing the Logon does): the bench's FIX handshake
    # raises a named error at once. It used to spin on empty reads, never yielding to the loop.
    import asyncio

    from loadgen.bench import venue as bench_venue

    async def close_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)
        writer.close()

    async def attempt() -> str:
        server = await asyncio.start_server(close_at_once, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        session = {"key": {"api_key": "k", "secret": "c2VjcmV0"}, "sender": "S"}
        async with server:
            with pytest.raises(ConnectionError) as refused:
                await bench_venue._fix_open(f"tcp://127.0.0.1:{port}", session)
        return str(refused.value)

    assert "before the FIX Logon reply" in asyncio.run(attempt())


def test_bench_venue_names_the_rate_limit_when_its_keys_run_out_of_room():
    """Enough requests on one pair charge the bench keys' counters past tier starter's: the
    figures are refused, and the reason given is the bench's own plan, not the venue."""
    done = subprocess.run(
        [sys.executable, "-m", "loadgen.cli", "bench", "venue", "--protocols", "fix,rest",
         "--runs", "1", "--requests", "400", "--pairs", "1", "--connections", "1",
         "--tier", "starter"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "some requests were refused" in done.stdout
    assert "for a rate limit" in done.stdout and "--tier unlimited" in done.stdout
