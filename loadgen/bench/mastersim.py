"""`python -m loadgen.bench.mastersim SPEC_JSON`: many Locust workers in one process, for the
master bench (loadgen.bench.master).

Each simulated worker is a real Locust WorkerRunner (its own Environment, events and ZeroMQ
connection: the same client_ready, heartbeats, spawn handling and stats reports a worker
machine sends, at Locust's own intervals) whose users do nothing; what it reports is what a
busy loadgen worker reports: Locust's per-name stats for the traders' request names, and
loadgen's windows (`loadgen_windows`, one a second, cells and histograms as a mixed worker
records them at a few thousand requests a second), and at stop its last windows in the
message loadgen's workers send. The master is the real one (`locustfiles/profile.py`, loadgen's
recording, its results writer), so its CPU and its delay are the master's own.

What comes back (the JSON file SPEC names): the master's CPU seconds per second over the steady
part (every worker joined and running), and the write lag of each window: from the moment a
worker's report left to the moment its line was in windows.jsonl (the master's own delay);
Locust's 3 s report interval comes on top of it for every real worker.
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path
from typing import Any

import gevent
import psutil
from locust import User, argument_parser, constant, task
from locust.env import Environment
from locust.event import Events

from loadgen.metrics.recorder import Recorder, Window
from loadgen.metrics.store import complete_lines
from loadgen.outcome import OK, RATE_LIMITED, REJECTED, Outcome
from loadgen.procs import wait_for_end
from loadgen.protocol.operations import OPS
from loadgen.users.recording import FINAL_MESSAGE, KEYS_QUIET, PACE_MESSAGE

PROTOCOLS = ("rest", "ws", "fix")
TEMPLATES = 8  # distinct windows each worker cycles through
RATE = 3000  # requests a second a simulated worker's windows hold
REPORT_S = 3.0  # Locust's WORKER_REPORT_INTERVAL: workers' reports fall anywhere in it
STATS_PER_REPORT = 4  # Locust stats entries' samples per name per report
TAIL_S = 0.005  # windows.jsonl is looked at this often: the lag's resolution


# Locust's worker rebuilds its whole argument parser once per option of every spawn message
# (default_args_dict() inside a comprehension: 78 options, ~270 ms on the reference machine),
# a cost each real worker pays on its own core. Simulated workers share one core, so the
# defaults are worked out once here, or that cost (N workers' worth) would starve their
# heartbeats and the master would see them all lost.
_defaults = argument_parser.default_args_dict()
argument_parser.default_args_dict = lambda: _defaults


class _Idle(User):
    abstract = True
    wait_time = constant(1)

    @task
    def idle(self) -> None:
        pass


# The master dispatches users by class name: the names of locustfiles/profile.py's classes
RestTrader = type("RestTrader", (_Idle,), {"abstract": False, "__module__": __name__})
WsTrader = type("WsTrader", (_Idle,), {"abstract": False, "__module__": __name__})
FixTrader = type("FixTrader", (_Idle,), {"abstract": False, "__module__": __name__})


def templates(seed: int = 1) -> list[dict[str, Any]]:
    """Encoded windows as a mixed worker writes them: every protocol and op, ok mostly, some
    rejected and rate limited, log-normal latencies around 200 us."""
    rng = random.Random(seed)
    now = [1_000_000.0]
    out: list[Window] = []
    rec = Recorder(out.append, clock=lambda: now[0], gauges=lambda: (3, 0.0))
    for second in range(TEMPLATES):
        for i in range(RATE):
            now[0] = 1_000_000.0 + second + i / RATE
            protocol, op = PROTOCOLS[i % 3], OPS[rng.randrange(len(OPS))]
            kind = rng.choices((OK, REJECTED, RATE_LIMITED), (90, 8, 2))[0]
            limit = "trading" if kind == RATE_LIMITED else ""
            rec.record(Outcome(protocol, op, kind, int(rng.lognormvariate(5.3, 0.5)), "",
                               limit))  # fmt: skip
    rec.flush()
    return [w.encode() for w in out[:TEMPLATES]]


class SimWorker:
    def __init__(self, host: str, port: int, shapes: list[dict[str, Any]], sent: dict) -> None:
        self.env = Environment(user_classes=[RestTrader, WsTrader, FixTrader], events=Events())
        self.shapes, self.sent = shapes, sent
        self.pending: list[dict[str, Any]] = []
        self.env.events.report_to_master.add_listener(self._report)
        self.env.events.test_stop.add_listener(self._stop)
        self.runner = self.env.create_worker_runner(host, port)
        self.runner.register_message(PACE_MESSAGE, lambda *_, **__: None)
        self.id = self.runner.client_id

    def tick(self, second: int) -> None:
        if self.runner.worker_state in ("running", "spawning"):
            window = dict(self.shapes[second % len(self.shapes)], t=second)
            self.pending.append(window)

    def _report(self, client_id: str, data: dict[str, Any]) -> None:
        stats = self.env.stats
        for protocol in PROTOCOLS:
            for op in OPS:
                for _ in range(STATS_PER_REPORT):
                    stats.log_request(protocol, op, random.randint(1, 3), 0)
        if self.pending:
            now = time.time()
            for w in self.pending:
                self.sent[(self.id, w["t"])] = now
            data["loadgen_windows"], self.pending = self.pending, []

    def _stop(self, **_: Any) -> None:
        data: dict[str, Any] = {KEYS_QUIET: {}}
        self._report(self.id, data)
        self.runner.send_message(FINAL_MESSAGE, data)


def tail(path: Path, sent: dict, lags: list[float], stop: list[bool]) -> None:
    """Each line of windows.jsonl as it appears: its lag from when its report was sent."""
    offset = 0
    while not stop[0]:
        gevent.sleep(TAIL_S)
        try:
            lines, offset = complete_lines(path, offset)
        except OSError:
            continue  # not written yet
        seen = time.time()
        for line in lines:
            data = json.loads(line)
            at = sent.get((data.get("source"), data.get("t")))
            if at is not None:
                lags.append(seen - at)


def main(spec: dict[str, Any]) -> dict[str, Any]:
    shapes = templates()
    sent: dict[tuple[str, int], float] = {}
    lags: list[float] = []
    stop = [False]
    gevent.spawn(tail, Path(spec["windows"]), sent, lags, stop)
    workers = []
    for _ in range(spec["workers"]):  # joining over one report interval, as machines started
        workers.append(SimWorker(spec["host"], spec["port"], shapes, sent))  # apart would
        gevent.sleep(REPORT_S / spec["workers"])

    def ticker() -> None:
        while True:
            second = int(time.time())
            for w in workers:
                w.tick(second)
            gevent.sleep(second + 1 - time.time())

    gevent.spawn(ticker)
    master = psutil.Process(spec["master_pid"])
    deadline = time.monotonic() + spec["timeout_s"]
    while not all(w.runner.worker_state == "running" for w in workers):
        if time.monotonic() > deadline:
            return {"error": "the simulated workers were never all running"}
        gevent.sleep(0.1)
    gevent.sleep(spec["settle_s"])
    me = psutil.Process()
    cpu0, t0, n0, mine0 = _cpu(master), time.monotonic(), len(lags), _cpu(me)
    per_second = []
    for _ in range(int(spec["measure_s"])):
        before = _cpu(master)
        gevent.sleep(1.0)
        per_second.append(_cpu(master) - before)
    cpu1, t1, mine1 = _cpu(master), time.monotonic(), _cpu(me)
    measured = sorted(lags[n0:])
    stop[0] = True
    return {
        "workers": spec["workers"],
        "seconds": round(t1 - t0, 2),
        "master_cpu_per_s": round((cpu1 - cpu0) / (t1 - t0), 4),
        "master_cpu_per_s_max": round(max(per_second), 4),
        "windows_written": len(measured),
        "windows_per_s": round(len(measured) / (t1 - t0), 1),
        "lag_ms": _percentiles(measured),
        "window_bytes": len(json.dumps(shapes[0])),
        # the simulator's own core: near 1.0, the workers' reports came late through its
        # fault, and the master's figures are a floor, not its limit
        "simulator_cpu_per_s": round((mine1 - mine0) / (t1 - t0), 4),
    }


def _cpu(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": 0.0, "p99": 0.0, "max": 0.0}

    def at(q: float) -> float:
        return round(values[min(len(values) - 1, int(q * len(values)))] * 1000, 2)

    return {"p50": at(0.5), "p99": at(0.99), "max": round(values[-1] * 1000, 2)}


if __name__ == "__main__":
    spec = json.loads(sys.argv[1])
    result = main(spec)
    Path(spec["out"]).write_text(json.dumps(result))
    # The workers stay until the master ends the test (stop, their last windows, quit), as
    # real ones do; bounded by the master's own end or a minute
    wait_for_end(spec["master_pid"], 60 + spec["measure_s"], gevent.sleep)
    sys.exit(0 if "error" not in result else 1)
