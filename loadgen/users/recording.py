"""loadgen's measurements inside Locust: the recorder, results/, open-loop pace, the rate cap.

Through Locust's public hooks only (STYLE):
- init_command_line_parser: --results-dir, --loop, --rate, --rate-per-user, --max-rate;
- test_start: each process that runs users gets a Recorder; the process that owns the run
  (the local runner, or the master) opens results/<run>/ when --results-dir is given;
- report_to_master / worker_report: workers ship their closed windows with Locust's own
  periodic report, and the master appends them as they arrive (merged per second on reading);
- test_stop: what the users left open is cancelled (counted as cleanup, not load), the partial
  last window is closed and recording ends; a worker sends its last windows at once in a
  message of its own, and the master waits for every worker's (bounded) before it writes the end;
- user_error: a user whose on_start raised failed at spawn; the text goes into the windows;
- the master watches its workers: one that stops sending heartbeats, or quits while the test
  runs, is named in incidents.jsonl, and its keys get a CancelAll at stop, so nothing it left
  stays open;
- a sampler greenlet measures the event loop's lag (how late a timer fires) in every process
  that records, so a second where the generator was stalled or saturated says so;
- the pace: the local runner or master works out the per-user rate (open loop) and each
  process's share of the hard cap, and tells the workers with a custom message when it changes.
"""

from __future__ import annotations

import argparse
import gc
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gevent
from locust import events
from locust.env import Environment
from locust.runners import (
    STATE_MISSING,
    STATE_RUNNING,
    STATE_SPAWNING,
    MasterRunner,
    WorkerRunner,
)

from loadgen.conformance import Decision
from loadgen.flow.pacing import Pace
from loadgen.metrics.recorder import Recorder, Window
from loadgen.metrics.store import (
    EXIT_RESULTS_UNWRITABLE,
    ResultsWriteError,
    ResultsWriter,
    encoded_problem,
)
from loadgen.outcome import Outcome
from loadgen.procs import die_with_parent
from loadgen.users import options, webui
from loadgen.users.encoding import WindowEncoder
from loadgen.users.locust_stats import trim_per_second

log = logging.getLogger("loadgen.recording")

PACE_MESSAGE = "loadgen-pace"
FINAL_MESSAGE = "loadgen-final"  # a worker's last windows, sent as it stops
KEYS_QUIET = "loadgen_keys_quiet"  # ...with when its keys are quiet (keyuse), for the master
TICK_S = 0.25  # windows close within a quarter second of their end; pace changes as quickly
LAG_EVERY_S = 0.02  # the lag sampler's timer: 50 wakes a second, a few microseconds each
STALL_S = 0.05  # a timer 50 ms late: the loop stalled (a freeze, a swap storm, a long callback)
FINAL_WAIT_S = 15.0  # how long the master waits at stop for every worker's last windows


@events.init_command_line_parser.add_listener
def add_options(parser: Any) -> None:
    parser.add_argument(
        "--results-dir",
        default="",
        env_var="LOADGEN_RESULTS_DIR",
        help="write loadgen's per-second windows (HDR histograms, us) here ('' = none)",
    )
    parser.add_argument(
        "--loop",
        default="closed",
        choices=["closed", "open"],
        env_var="LOADGEN_LOOP",
        help="closed: each user sends when answered; open: on a schedule (--rate)",
    )
    parser.add_argument(
        "--rate",
        type=_rate,
        default=0.0,
        env_var="LOADGEN_RATE",
        help="open loop: total requests/s split across the users (0 = use --rate-per-user)",
    )
    parser.add_argument(
        "--rate-per-user",
        type=_rate,
        default=1.0,
        env_var="LOADGEN_RATE_PER_USER",
        help="open loop: requests/s per user when --rate is 0 (default 1)",
    )
    parser.add_argument(
        "--max-rate",
        type=_rate,
        default=DEFAULT_MAX_RATE,
        env_var="LOADGEN_MAX_RATE",
        help="hard cap on the total request rate, requests/s, all processes "
        f"(default {DEFAULT_MAX_RATE:g}; 0 = no cap, a choice to make on purpose)",
    )


# `locust -f` with no flags must not be able to flood whatever --host names: a finite cap by
# default, as a profile's required load.max_rate is (issue 13). 1,000/s is well above what one
# exploring user needs and far below what would hurt a venue; `loadgen run` passes the profile's.
DEFAULT_MAX_RATE = 1000.0


def _rate(text: str) -> float:
    """A rate in requests/s: a finite number, 0 or more (argparse type)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of requests/s") from None
    if not _is_rate(value):
        raise argparse.ArgumentTypeError(f"{text!r}: a rate must be a finite number, 0 or more")
    return value


def _is_rate(value: object) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value >= 0


pace = Pace(TICK_S)
recorder: Recorder | None = None
_writer: ResultsWriter | None = None
_pending: list[dict[str, Any]] = []  # a worker's encoded windows, until its next report
_encoder: WindowEncoder | None = None  # closed windows, encoded off the request path
_ticker: gevent.Greenlet | None = None
_sampler: gevent.Greenlet | None = None
_environment: Environment | None = None
_workers: dict[str, int] = {}  # master: worker id -> index, every worker that ran users
_lost: dict[str, int] = {}  # master: workers lost (no heartbeats, or gone while running)
_final: set[str] = set()  # master: workers whose last windows arrived
_known: set[str] = set()  # master: every worker seen since the test started


def market_data(kind: str, latency_us: int | None = None, n: int = 1) -> None:
    if recorder is not None:
        recorder.market_data(kind, latency_us, n)


def decision(key: str, d: Decision) -> None:
    if recorder is not None:
        recorder.decision(
            d.cls, key, d.protocol, d.op, d.pair, d.refused, d.after, d.reach, d.record
        )


def open_loop(environment: Environment) -> bool:
    opts = environment.parsed_options
    return bool(opts and opts.loop == "open")


# ---- set-up per process --------------------------------------------------------------------------


# The cyclic garbage collector, as a load generator needs it: every request allocates a few
# short-lived objects (an Outcome, a reply, a closure), which by CPython's default (a young
# collection every 700 net allocations) means a collection every ~50 requests, each walking
# every young object. Start-up's objects (Locust, gevent, the markets) are frozen out of the
# walks; young collections come 100x less often (measured in `loadgen bench`: see issue 14).
GC_THRESHOLD = (70_000, 10, 10)


def _tune_gc() -> None:
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)


@events.init.add_listener
def on_init(environment: Environment, **_: Any) -> None:
    global _environment
    _environment = environment
    if isinstance(environment.runner, WorkerRunner):
        environment.runner.register_message(PACE_MESSAGE, _on_pace_message)
        if getattr(environment.parsed_options, "processes", None):
            # Forked by the master (--processes): a parent-death signal is not inherited over
            # fork, and a SIGKILLed master left its workers running (issue 13). SIGTERM stops
            # one as Locust stops, its users cancelling what they left.
            die_with_parent()
    if isinstance(environment.runner, MasterRunner):
        environment.runner.register_message(FINAL_MESSAGE, _on_final_message)


def _on_pace_message(msg: Any, **_: Any) -> None:
    next_in = msg.data.get("next_in")
    pace.apply(
        float(msg.data["per_user"]),
        float(msg.data["cap"]),
        msg.data.get("mix"),
        None if next_in is None else float(next_in),
        time.monotonic(),
    )


@events.test_start.add_listener
def on_test_start(environment: Environment, **_: Any) -> None:
    global recorder, _writer, _ticker
    _tune_gc()
    runner = environment.runner
    opts = environment.parsed_options
    owner = not isinstance(runner, WorkerRunner)
    for seen in (_workers, _lost, _final, _known):  # a new test (the web UI can start several)
        seen.clear()
    if isinstance(runner, MasterRunner):
        _known.update(node.id for node in runner.clients.all)  # those there at the start
    if owner and _writer is None and opts is not None and opts.results_dir:
        meta = {
            "loop": opts.loop,
            "host": environment.host,
            "profile": getattr(opts, "profile", "") or "",
            "max_rate": opts.max_rate,
            "tier": getattr(opts, "tier", ""),
            "stay_under": bool(getattr(opts, "stay_under", False)),
            "planned_s": _planned_seconds(environment),
        }
        try:
            _writer = ResultsWriter(Path(opts.results_dir), meta)
        except ResultsWriteError as exc:
            _results_failed(exc, environment)
    if not isinstance(runner, MasterRunner):
        global _encoder
        _drain()  # a new test: the last one's windows first
        worker = isinstance(runner, WorkerRunner)
        _encoder = WindowEncoder(_pending.append if worker else _write_local)
        sink = _encoder.put if worker else _local_window
        recorder = Recorder(sink, gauges=lambda: _gauges(environment))
        global _sampler, _sampled_at
        if _sampler is None:
            _sampled_at = time.monotonic()
            _sampler = gevent.spawn(_sample_lag)
    if _ticker is None:
        _ticker = gevent.spawn(_tick, environment)


_sampled_at = 0.0  # monotonic time the sampler last ran
_last_stall = (0.0, 0.0)  # the latest stretch (monotonic) in which the event loop stalled


def _sample_lag() -> None:
    """How late the event loop runs a timer: a busy or stalled generator shows here first."""
    global _sampled_at, _last_stall
    clock = time.monotonic
    while True:
        before = clock()
        gevent.sleep(LAG_EVERY_S)
        _sampled_at = now = clock()
        late = now - before - LAG_EVERY_S
        if late > STALL_S:
            _last_stall = (before + LAG_EVERY_S, now)
        if recorder is not None and late > 0:
            recorder.lag(late * 1000.0)


def generator_stalled(since: float, now: float) -> bool:
    """Whether this process's event loop stalled (over STALL_S) after `since`: a reply that
    came in meanwhile was read late through the generator's fault, not the venue's. A stall
    just ending shows as a sampler that has not run for a while (it may wake after the users)."""
    if _sampler is None:
        return False
    return _last_stall[1] > since or now - _sampled_at > STALL_S + LAG_EVERY_S


def _planned_seconds(environment: Environment) -> float:
    """How long the load is meant to run: the shape's stages, or Locust's -t (0: unbounded)."""
    profile = getattr(environment.shape_class, "profile", None)
    if profile is not None:
        return float(profile.duration)
    opts = environment.parsed_options
    return float(getattr(opts, "run_time", 0) or 0)


def _local_window(window: Window) -> None:
    if _writer is not None and _encoder is not None:
        _encoder.put(window)
    webui.feed(window)


def _write_local(record: dict[str, Any]) -> None:
    if _writer is not None:
        _write(_writer.append_encoded, record, "local")


def _drain() -> None:
    """Every closed window encoded and written (or queued for the master) now."""
    if _encoder is not None:
        _encoder.drain()


def _gauges(environment: Environment) -> tuple[int, float]:
    users = environment.runner.user_count if environment.runner else 0
    offered = pace.per_user * traders(environment, users) if open_loop(environment) else 0.0
    return users, offered


def _tick(environment: Environment) -> None:
    """Close windows on time, and (local runner or master) keep the pace up to date."""
    last: tuple[Any, ...] | None = None
    while True:
        if recorder is not None:
            recorder.tick()
        runner = environment.runner
        if isinstance(runner, MasterRunner):
            _watch_workers(runner)
        nap = TICK_S
        if not isinstance(runner, WorkerRunner):
            shape = environment.shape_class
            ends = shape.next_change() if hasattr(shape, "next_change") else None
            # (the shape's start: a new test in the same stage is a new pace all the same)
            wanted: tuple[Any, ...] = (
                *_wanted_pace(environment),
                ends,
                getattr(shape, "start_time", None),
            )
            if isinstance(runner, MasterRunner):  # a worker joining or lost: new shares
                nodes = runner.clients.ready + runner.clients.spawning + runner.clients.running
                wanted = (*wanted, frozenset(n.id for n in nodes))  # what worker_count counts
            next_in = None if ends is None else max(0.0, ends - shape.get_run_time())
            if wanted != last:
                last = wanted
                per_user, cap, mix = wanted[:3]
                if isinstance(runner, MasterRunner):
                    share = cap / max(1, runner.worker_count)
                    msg = {"per_user": per_user, "cap": share, "mix": mix, "next_in": next_in}
                    runner.send_message(PACE_MESSAGE, msg)
                else:
                    pace.apply(per_user, cap, mix, next_in, time.monotonic())
            _trim_locust_stats(environment)
            if next_in is not None:  # wake as the step ends (just after: its new stage)
                nap = min(TICK_S, next_in + 0.001)
        gevent.sleep(nap)


def _trim_locust_stats(environment: Environment) -> None:
    stats = environment.stats
    if stats is None or int(time.time()) % 30:
        return
    trim_per_second([stats.total, *stats.entries.values()], time.time())


def _watch_workers(runner: MasterRunner) -> None:
    """Note every worker that runs users, name one that joined after the start, and one the
    master lost: it stopped sending heartbeats, or it left (quit) while the test still ran."""
    present = {node.id: node for node in runner.clients.all}
    running = runner.state in (STATE_RUNNING, STATE_SPAWNING)
    for node in present.values():
        if node.id not in _known and running:
            _known.add(node.id)
            _incident("worker_joined", f"worker {runner.get_worker_index(node.id)} ({node.id}) "
                      "joined after the load had started; Locust moved users onto it, so the "
                      "seconds around its join carry spawn and stop churn")  # fmt: skip
        if node.state in (STATE_RUNNING, STATE_SPAWNING) and node.id not in _workers:
            _workers[node.id] = runner.get_worker_index(node.id)
    for worker_id, index in _workers.items():
        if worker_id in _lost:
            continue
        node = present.get(worker_id)
        if node is not None and node.state == STATE_MISSING:
            why = "stopped sending heartbeats"
        elif node is None and running:
            why = "left the run while it was still running"
        else:
            continue
        _lost[worker_id] = index
        _incident("worker_lost", f"worker {index} ({worker_id}) {why}; its users and their "
                  "load are gone from the run")  # fmt: skip


def _incident(kind: str, text: str) -> None:
    if _writer is not None:
        text += f" ({time.time() - _writer.start:.0f} s into the run)"
        _write(_writer.incident, kind, text)
    log.warning("%s: %s", kind, text)


def _wanted_pace(environment: Environment) -> tuple[float, float, Any]:
    """(open-loop requests/s per user, total cap, stage mix) as the options and shape say."""
    opts = environment.parsed_options
    if opts is None:
        return 0.0, 0.0, None
    shape = environment.shape_class
    mix = shape.current_mix() if hasattr(shape, "current_mix") else None
    shape_rate = shape.current_rate() if hasattr(shape, "current_rate") else None
    cap = _sane(opts, "max_rate", DEFAULT_MAX_RATE)
    if shape_rate is not None:  # a profile's open loop: its rate now (0 at a ramp's foot)
        users = traders(environment, shape.current_users())
        return (shape_rate / users if users else 0.0), cap, mix
    rate = _sane(opts, "rate", 0.0)
    if rate:  # --rate: a total split across the users
        users = traders(environment, environment.runner.target_user_count if environment.runner
                        else 0)  # fmt: skip
        return (rate / users if users else 0.0), cap, mix
    return _sane(opts, "rate_per_user", 1.0), cap, mix


def traders(environment: Environment, users: float) -> float:
    """Of `users`, how many trade, by the user classes' weights: MarketDataUsers send no
    orders, so the open loop's rate is split over the others."""
    classes = environment.user_classes
    total = sum(c.weight for c in classes)
    trading = sum(c.weight for c in classes if not getattr(c, "market_data", False))
    return users * trading / total if total else users


def _sane(opts: Any, name: str, fallback: float) -> float:
    """A rate option as the web UI may have set it (it converts with float(), past `_rate`):
    not a finite number of 0 or more is the fallback, said once."""
    value = getattr(opts, name)
    if _is_rate(value):
        return float(value)
    log.error("%s %r is no rate (a finite number, 0 or more); using %g", name, value, fallback)
    setattr(opts, name, fallback)
    return fallback


# ---- the results folder ------------------------------------------------------------------------


def _write(call: Callable[..., None], *args: Any) -> None:
    """One write to the results; the first that fails stops the run with a named error."""
    try:
        call(*args)
    except ResultsWriteError as exc:
        _results_failed(exc, _environment)


def _results_failed(exc: ResultsWriteError, environment: Environment | None) -> None:
    """A full or unwritable results folder: say so, stop the load (test_stop cancels what the
    users left, on a venue still there), and exit EXIT_RESULTS_UNWRITABLE, never a run that
    goes on measuring into nothing (issue 13: the live line just stopped)."""
    global _writer
    writer, _writer = _writer, None
    if writer is not None:
        writer.close()
    log.error("loadgen: %s; stopping the run", exc)
    if environment is None:
        return
    environment.process_exit_code = EXIT_RESULTS_UNWRITABLE
    runner = environment.runner
    if runner is not None and not isinstance(runner, WorkerRunner):
        gevent.spawn(runner.quit)


# ---- shipping and ending -------------------------------------------------------------------------


@events.report_to_master.add_listener
def ship_windows(client_id: str, data: dict[str, Any]) -> None:
    if _pending:
        data["loadgen_windows"] = list(_pending)
        _pending.clear()


@events.worker_report.add_listener
def receive_windows(client_id: str, data: dict[str, Any]) -> None:
    """The master: each window as the worker encoded it goes to the results as it came (no
    histogram decoded, the master's main cost: bench master); decoded only for a web UI."""
    for encoded in data.get("loadgen_windows", ()):
        problem = encoded_problem(encoded)
        if problem:  # not from a loadgen worker of this version: named, never a crash
            _incident("bad_window", f"a window from {client_id} was dropped: {problem}")
            continue
        if _writer is not None:
            _write(_writer.append_encoded, encoded, client_id)
        if webui.live is not None:
            webui.feed(Window.decode(encoded))


def _on_final_message(msg: Any, **_: Any) -> None:
    receive_windows(msg.node_id, msg.data)
    _final.add(msg.node_id)
    quiet = msg.data.get(KEYS_QUIET)
    if _environment is not None and isinstance(quiet, dict):
        index = _workers.get(msg.node_id)
        if index is None and isinstance(_environment.runner, MasterRunner):
            index = _environment.runner.get_worker_index(msg.node_id)
        options.record_key_use(_environment, quiet, source=f"w{index}")


@events.user_error.add_listener
def on_user_error(user_instance: Any, exception: Exception, tb: Any, **_: Any) -> None:
    kind = "task" if getattr(user_instance, "started", True) else "spawn"
    if recorder is not None:
        recorder.user_error(kind, f"{type(exception).__name__}: {exception}")


@events.test_stop.add_listener
def on_test_stop(environment: Environment, **_: Any) -> None:
    """The end of the load: clean up, close the last window, stop recording; a worker sends
    what it has at once, and the master waits for every worker's last windows."""
    global recorder
    runner = environment.runner
    for outcome in options.cancel_everything(environment):
        cleanup(outcome)
    quiet = options.key_quiet(environment)
    if recorder is not None:
        recorder.flush()
        recorder = None
    _drain()
    if isinstance(runner, WorkerRunner):  # results are the master's: it writes what we send
        data: dict[str, Any] = {KEYS_QUIET: quiet}
        ship_windows("", data)
        runner.send_message(FINAL_MESSAGE, data)
    elif not isinstance(runner, MasterRunner):
        options.record_key_use(environment, quiet)
    elif isinstance(runner, MasterRunner):
        _await_workers(runner)
    if _writer is not None:
        _write(_writer.ended)


def _await_workers(runner: MasterRunner) -> None:
    """Wait (bounded) for the last windows of every worker that ran and was not lost; a lost
    worker's keys get a CancelAll here, since nobody else will cancel what it left."""
    _watch_workers(runner)
    for node in runner.clients.all:  # a master quitting (Ctrl-C) has not told its workers yet
        if node.state in (STATE_RUNNING, STATE_SPAWNING):
            runner.send_message("stop", None, node.id)
    deadline = time.monotonic() + FINAL_WAIT_S
    while set(_workers) - set(_lost) - _final and time.monotonic() < deadline:
        gevent.sleep(0.05)
    for worker_id in sorted(set(_workers) - set(_lost) - _final):
        _incident("worker_silent", f"worker {_workers[worker_id]} ({worker_id}) sent no last "
                  f"windows within {FINAL_WAIT_S:g} s; its last seconds are missing")  # fmt: skip
    for index in sorted(_lost.values()):
        sent, failed = options.cancel_worker_keys(runner.environment, index)
        _incident("worker_cleanup", f"worker {index}: CancelAll sent for its {sent} keys "
                  f"({failed} failed)")  # fmt: skip


@events.quit.add_listener
def on_quit(**_: Any) -> None:
    global _writer
    if _ticker is not None:
        _ticker.kill(block=False)
    _drain()
    if _writer is not None:
        _writer.close()
        _writer = None


def behind_schedule(venue: bool) -> None:
    if recorder is not None:
        recorder.behind_schedule(venue)


def cleanup(outcome: Outcome) -> None:
    if recorder is not None:
        recorder.cleanup(outcome)
