"""The recorder: every Outcome into one-second windows of latency histograms and counters.

A cell is (protocol, op, outcome), the outcome naming its limit when rate limited:
"rest/add/ok", "ws/cancel/rate_limited:trading", "fix/edit/rejected". Each cell of a window
holds how many requests ended that way in that second and two latency distributions:

- service: sent to answered (what a closed-loop tool reports), for every request;
- response: intended send time to answered (coordinated omission corrected), open loop only.

Beside the cells, a window carries what the figures need to be read honestly: the venue's error
texts counted by cell (`reasons`), the end-of-run cleanup calls counted apart from the load
(`cleanup`), users that failed (`user_errors`, "spawn|text" or "task|text"), open-loop sends
behind schedule split by cause (`late`: the generator could not keep up; `late_venue`: the
venue had not answered the previous request yet), the generator's event-loop lag (`lag_ms`, the
worst in the second) and CPU, who stamped the replies' arrival (`stamps`: "kernel" or "user",
clients/net), the number of recording processes (`procs`) and the part of its second the window
covers (`span`: the first and last windows of a process are partial).

Windows are keyed by the wall-clock second they end in, so windows from many processes (Locust
workers) line up and merge cell by cell: merged histograms, summed counts (DESIGN: percentiles
of a run come from merged histograms, never from averaged percentiles).

Not thread-safe; a Locust process is one thread of greenlets, and record() never yields.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from loadgen.metrics.hist import Latencies
from loadgen.outcome import RATE_LIMITED, Outcome


def cell_key(outcome: Outcome) -> str:
    cls = outcome.outcome
    if cls == RATE_LIMITED and outcome.limit:
        cls = f"{cls}:{outcome.limit}"
    return f"{outcome.protocol}/{outcome.op}/{cls}"


def split_key(key: str) -> tuple[str, str, str, str]:
    """ "ws/add/rate_limited:trading" -> ("ws", "add", "rate_limited", "trading")."""
    protocol, op, cls = key.split("/", 2)
    cls, _, limit = cls.partition(":")
    return protocol, op, cls, limit


@dataclass(slots=True)
class Cell:
    count: int = 0
    service: Latencies = field(default_factory=Latencies)
    response: Latencies = field(default_factory=Latencies)

    def add(self, other: Cell) -> None:
        self.count += other.count
        self.service.add(other.service)
        self.response.add(other.response)

    def encode(self) -> dict[str, Any]:
        out: dict[str, Any] = {"n": self.count, "service": self.service.encode()}
        if self.response.count:
            out["response"] = self.response.encode()
        return out

    @classmethod
    def decode(cls, data: dict[str, Any]) -> Cell:
        cell = cls(int(data["n"]), Latencies.decode(data["service"]))
        if "response" in data:
            cell.response = Latencies.decode(data["response"])
        return cell


@dataclass(slots=True)
class Limits:
    """A window's rate-limit conformance: decisions by "protocol/op/class", the shadow counter
    per "key/pair" (its highest, lower bound), the first divergences with what led to them, and
    the edges the venue showed: the lowest counter it refused at, the highest it accepted at
    (as the published model counts; an edge past the threshold is a divergence)."""

    decisions: dict[str, int] = field(default_factory=dict)
    counters: dict[str, float] = field(default_factory=dict)
    divergences: list[dict[str, Any]] = field(default_factory=list)
    refused_min: float | None = None
    accepted_max: float | None = None

    def add(self, other: Limits) -> None:
        for key, n in other.decisions.items():
            self.decisions[key] = self.decisions.get(key, 0) + n
        for key, level in other.counters.items():
            if level > self.counters.get(key, -1.0):
                self.counters[key] = level
        room = MAX_DIVERGENCES - len(self.divergences)
        if room > 0:
            self.divergences.extend(other.divergences[:room])
        if other.refused_min is not None:
            self.refused_min = _pick(min, self.refused_min, other.refused_min)
        if other.accepted_max is not None:
            self.accepted_max = _pick(max, self.accepted_max, other.accepted_max)

    def encode(self) -> dict[str, Any]:
        out: dict[str, Any] = {"decisions": dict(sorted(self.decisions.items()))}
        top = sorted(self.counters.items(), key=lambda kv: -kv[1])[:MAX_COUNTERS]
        out["counters"] = {k: round(v, 3) for k, v in sorted(top)}
        if self.divergences:
            out["divergences"] = self.divergences
        if self.refused_min is not None:
            out["refused_min"] = round(self.refused_min, 3)
        if self.accepted_max is not None:
            out["accepted_max"] = round(self.accepted_max, 3)
        return out

    @classmethod
    def decode(cls, data: dict[str, Any]) -> Limits:
        return cls(
            {k: int(v) for k, v in data.get("decisions", {}).items()},
            {k: float(v) for k, v in data.get("counters", {}).items()},
            list(data.get("divergences", [])),
            data.get("refused_min"),
            data.get("accepted_max"),
        )


MAX_DIVERGENCES: Final = 5  # per window: the first few, each with the requests that led to it
MAX_COUNTERS: Final = 16  # per window and process: the busiest shadow counters


def _pick(fn: Callable[[float, float], float], mine: float | None, theirs: float) -> float:
    return theirs if mine is None else fn(mine, theirs)


# the book updates' fan-out, as an SLO latency selector names it (MarketDataUser)
MD_BOOK: Final = "md/book"

# a window's named counts, summed on merge
COUNTERS: Final = ("reasons", "cleanup", "user_errors", "stamps", "md")
MAX_REASON: Final = 120  # characters of a venue's error text kept as a reason (the texts are short)


def _count(into: dict[str, int], other: dict[str, int]) -> None:
    for key, n in other.items():
        into[key] = into.get(key, 0) + n


@dataclass(slots=True)
class Window:
    """One second [t - 1, t) of one or more processes' requests."""

    t: int  # the wall-clock second the window ends at (unix seconds)
    cells: dict[str, Cell] = field(default_factory=dict)
    late: int = 0  # open loop: sends behind schedule because the generator could not keep up
    offered: float = 0.0  # open loop: the request rate the schedules asked for (req/s)
    users: int = 0  # users running when the window closed
    cpu_s: float = 0.0  # CPU seconds the recording processes used in the window
    limits: Limits | None = None  # rate-limit conformance (conformance.py), when checked
    late_venue: int = 0  # open loop: sends behind schedule because the venue had not answered
    lag_ms: float = 0.0  # the generator's worst event-loop lag in the second (ms)
    procs: int = 1  # recording processes merged into this window
    span: float = 1.0  # seconds of [t - 1, t) the window covers (less for a first or last one)
    reasons: dict[str, int] = field(default_factory=dict)  # "cell|venue's text" -> count
    cleanup: dict[str, int] = field(default_factory=dict)  # end-of-run calls by cell: not load
    user_errors: dict[str, int] = field(default_factory=dict)  # "spawn|text" / "task|text"
    stamps: dict[str, int] = field(default_factory=dict)  # replies by who stamped them
    # Market data (MarketDataUser): book messages by kind ("updates", "snapshots",
    # "checksum_failures", "resubscribes", "reconnects") and the updates' fan-out latency
    md: dict[str, int] = field(default_factory=dict)
    md_latency: Latencies = field(default_factory=Latencies)

    @property
    def count(self) -> int:
        return sum(c.count for c in self.cells.values())

    def copy(self) -> Window:
        """A window of its own with the same figures (a merge into it leaves this one as is)."""
        own = Window(self.t, procs=0, span=0.0)
        own.add(self)
        return own

    def add(self, other: Window) -> None:
        for key, cell in other.cells.items():
            mine = self.cells.get(key)
            if mine is None:
                self.cells[key] = mine = Cell()
            mine.add(cell)
        self.late += other.late
        self.late_venue += other.late_venue
        self.offered += other.offered
        self.users += other.users
        self.cpu_s += other.cpu_s
        self.procs += other.procs
        self.lag_ms = max(self.lag_ms, other.lag_ms)
        self.span = max(self.span, other.span)
        self.md_latency.add(other.md_latency)
        for name in COUNTERS:
            _count(getattr(self, name), getattr(other, name))
        if other.limits is not None:
            if self.limits is None:
                self.limits = Limits()
            self.limits.add(other.limits)

    def encode(self, pause: Callable[[], None] | None = None) -> dict[str, Any]:
        """The window as windows.jsonl holds it and a worker ships it; `pause` is called after
        each cell's histograms (users/encoding.py yields there)."""
        cells = {}
        for key, cell in sorted(self.cells.items()):
            cells[key] = cell.encode()
            if pause is not None:
                pause()
        out: dict[str, Any] = {
            "t": self.t,
            "users": self.users,
            "offered": round(self.offered, 3),
            "late": self.late,
            "late_venue": self.late_venue,
            "cpu_s": round(self.cpu_s, 4),
            "lag_ms": round(self.lag_ms, 3),
            "procs": self.procs,
            "span": round(self.span, 3),
            "cells": cells,
        }
        for name in COUNTERS:
            if getattr(self, name):
                out[name] = dict(sorted(getattr(self, name).items()))
        if self.limits is not None:
            out["limits"] = self.limits.encode()
        if self.md_latency.count:
            out["md_latency"] = self.md_latency.encode()
        return out

    @classmethod
    def decode(cls, data: dict[str, Any]) -> Window:
        cells = {k: Cell.decode(v) for k, v in data["cells"].items()}
        md_latency = data.get("md_latency")
        return cls(
            int(data["t"]),
            cells,
            int(data["late"]),
            float(data["offered"]),
            int(data["users"]),
            float(data.get("cpu_s", 0.0)),
            Limits.decode(data["limits"]) if "limits" in data else None,
            int(data.get("late_venue", 0)),
            float(data.get("lag_ms", 0.0)),
            int(data.get("procs", 1)),
            float(data.get("span", 1.0)),
            md_latency=Latencies.decode(md_latency) if md_latency else Latencies(),
            **{name: {k: int(v) for k, v in data.get(name, {}).items()} for name in COUNTERS},
        )


def merge(windows: Iterable[Window]) -> list[Window]:
    """Windows of many sources -> one window per second, in time order."""
    by_t: dict[int, Window] = {}
    for w in windows:
        merged = by_t.get(w.t)
        if merged is None:
            by_t[w.t] = merged = Window(w.t, procs=0, span=0.0)
        merged.add(w)
    return [by_t[t] for t in sorted(by_t)]


class _Open:
    """The window being filled: cheap tallies (value -> count) per cell."""

    __slots__ = (
        "cleanup", "counts", "lag_ms", "late", "late_venue", "limits", "md", "md_latency",
        "opened", "reasons", "response", "service", "stamps", "t", "user_errors",
    )  # fmt: skip

    def __init__(self, t: int, opened: float) -> None:
        self.t = t
        self.opened = opened  # when this window began to be filled (t - 1, or later at start)
        self.counts: dict[str, int] = {}
        self.service: dict[str, dict[int, int]] = {}
        self.response: dict[str, dict[int, int]] = {}
        self.late = 0
        self.late_venue = 0
        self.lag_ms = 0.0
        self.limits: Limits | None = None
        self.reasons: dict[str, int] = {}
        self.cleanup: dict[str, int] = {}
        self.user_errors: dict[str, int] = {}
        self.stamps: dict[str, int] = {}
        self.md: dict[str, int] = {}
        self.md_latency: dict[int, int] = {}

    @property
    def empty(self) -> bool:
        return not (self.counts or self.late or self.late_venue or self.limits or self.cleanup
                    or self.user_errors or self.md)  # fmt: skip


class Recorder:
    """Records Outcomes; hands each window, once its second is over, to `on_window`."""

    def __init__(
        self,
        on_window: Callable[[Window], None],
        clock: Callable[[], float] = time.time,
        gauges: Callable[[], tuple[int, float]] = lambda: (0, 0.0),
        cpu_clock: Callable[[], float] = time.process_time,
    ) -> None:
        self.on_window = on_window
        self.clock = clock
        self.gauges = gauges  # (users, offered req/s) at a window's close
        self.cpu_clock = cpu_clock
        self._cpu = cpu_clock()
        now = clock()
        self._open = _Open(int(now) + 1, now)

    def _window(self) -> _Open:
        """The open window, after closing the last one if its second is over."""
        if self.clock() >= self._open.t:
            self.tick()
        return self._open

    def record(self, outcome: Outcome, response_us: int | None = None) -> None:
        now = self.clock()
        w = self._open
        if now >= w.t:
            self.tick(now)
            w = self._open
        key = cell_key(outcome)
        w.counts[key] = w.counts.get(key, 0) + 1
        if outcome.error:
            reason = f"{key}|{outcome.error[:MAX_REASON]}"
            w.reasons[reason] = w.reasons.get(reason, 0) + 1
        source = outcome.stamp
        if source:
            w.stamps[source] = w.stamps.get(source, 0) + 1
        tally = w.service.get(key)
        if tally is None:
            tally = w.service[key] = {}
        v = outcome.latency_us
        tally[v] = tally.get(v, 0) + 1
        if response_us is not None:
            tally = w.response.get(key)
            if tally is None:
                tally = w.response[key] = {}
            tally[response_us] = tally.get(response_us, 0) + 1

    def decision(
        self, cls: str, key: str, protocol: str, op: str, pair: str, refused: bool,
        after: float, reach: tuple[float, float], record: dict[str, Any] | None,
    ) -> None:  # fmt: skip
        """One rate-limit decision the conformance shadow judged (conformance.Decision)."""
        w = self._window()
        limits = w.limits
        if limits is None:
            limits = w.limits = Limits()
        name = f"{protocol}/{op}/{cls}"
        limits.decisions[name] = limits.decisions.get(name, 0) + 1
        name = f"{key}/{pair}"
        if after > limits.counters.get(name, -1.0):
            limits.counters[name] = after
        if refused:
            limits.refused_min = _pick(min, limits.refused_min, reach[1])
        else:
            limits.accepted_max = _pick(max, limits.accepted_max, reach[0])
        if record is not None and len(limits.divergences) < MAX_DIVERGENCES:
            limits.divergences.append(record)

    def behind_schedule(self, venue: bool = False) -> None:
        """An open-loop send that started after its intended time: the venue's doing (it had
        not answered this user's previous request by then) or the generator's."""
        w = self._window()
        if venue:
            w.late_venue += 1
        else:
            w.late += 1

    def cleanup(self, outcome: Outcome) -> None:
        """An end-of-run call (cancel what is left): counted apart, never part of the load."""
        w = self._window()
        key = cell_key(outcome)
        w.cleanup[key] = w.cleanup.get(key, 0) + 1

    def user_error(self, kind: str, text: str) -> None:
        """A user that failed: "spawn" (its on_start raised) or "task"."""
        w = self._window()
        key = f"{kind}|{text[:MAX_REASON]}"
        w.user_errors[key] = w.user_errors.get(key, 0) + 1

    def market_data(self, kind: str, latency_us: int | None = None, n: int = 1) -> None:
        """`n` of what a MarketDataUser heard (clients/marketdata kinds), with its fan-out
        latency for a book update."""
        w = self._window()
        w.md[kind] = w.md.get(kind, 0) + n
        if latency_us is not None:
            w.md_latency[latency_us] = w.md_latency.get(latency_us, 0) + 1

    def lag(self, ms: float) -> None:
        """The event loop answered a timer `ms` late (the lag sampler, users/recording)."""
        w = self._window()
        if ms > w.lag_ms:
            w.lag_ms = ms

    def tick(self, now: float | None = None) -> None:
        """Close the open window if its second is over (call at least once a second)."""
        now = self.clock() if now is None else now
        if now < self._open.t:
            return
        done, self._open = self._open, _Open(int(now) + 1, float(int(now)))
        self.on_window(self._close(done, float(done.t)))

    def flush(self) -> None:
        """Close the open window now, partial second included (at the end of a run)."""
        now = self.clock()
        done, self._open = self._open, _Open(self._open.t, now)
        if not done.empty:
            self.on_window(self._close(done, min(now, float(done.t))))

    def _close(self, w: _Open, end: float) -> Window:
        cells = {}
        for key, n in w.counts.items():
            response = w.response.get(key)
            cells[key] = Cell(
                n,
                Latencies.from_tally(w.service[key]),
                Latencies.from_tally(response) if response else Latencies(),
            )
        users, offered = self.gauges()
        cpu, self._cpu = self._cpu, self.cpu_clock()
        span = min(1.0, max(0.0, end - max(w.opened, w.t - 1.0)))
        return Window(
            w.t, cells, w.late, offered, users, self._cpu - cpu, w.limits, w.late_venue,
            w.lag_ms, 1, round(span, 3), w.reasons, w.cleanup, w.user_errors, w.stamps, w.md,
            Latencies.from_tally(w.md_latency) if w.md_latency else Latencies(),
        )  # fmt: skip
