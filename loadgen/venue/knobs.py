"""Fault and latency knobs: how the venue misbehaves on purpose. All off by default.

`Knobs` is the plain config a CLI flag or (later) a profile sets; `Faults` is its runtime, with
a seeded RNG so a run's faults are reproducible.

Latency specs (milliseconds), per protocol:
  fixed:MS | uniform:LO:HI | normal:MEAN:SD | lognormal:MEDIAN:SIGMA | exp:MEAN
A bare number means fixed. Samples below zero are clipped to zero.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

PROTOCOLS = ("rest", "ws", "fix")


class KnobError(ValueError):
    """A knob value that cannot be used; the message names the knob."""


def parse_latency(spec: str) -> Callable[[random.Random], float]:
    """A sampler returning seconds for a latency spec in milliseconds (see module doc)."""
    kind, *args = spec.strip().split(":")
    try:
        if not args:
            values = [float(kind)]
            kind = "fixed"
        else:
            values = [float(a) for a in args]
    except ValueError:
        raise KnobError(
            f"latency {spec!r}: numbers expected, e.g. fixed:2 or uniform:1:5"
        ) from None
    arity = {"fixed": 1, "uniform": 2, "normal": 2, "lognormal": 2, "exp": 1}
    if kind not in arity:
        raise KnobError(f"latency {spec!r}: unknown distribution {kind!r} (use {', '.join(arity)})")
    if len(values) != arity[kind] or any(v < 0 or not math.isfinite(v) for v in values):
        raise KnobError(f"latency {spec!r}: {kind} takes {arity[kind]} non-negative number(s)")
    a = values[0] / 1000.0
    b = values[1] / 1000.0 if len(values) > 1 else 0.0
    if kind == "fixed":
        return lambda rng: a
    if kind == "uniform":
        return lambda rng: rng.uniform(a, b)
    if kind == "normal":
        return lambda rng: max(0.0, rng.gauss(a, b))
    if kind == "lognormal":
        sigma = values[1]  # dimensionless
        return lambda rng: a * math.exp(rng.gauss(0.0, sigma))
    return lambda rng: rng.expovariate(1.0 / a) if a > 0 else 0.0


@dataclass
class Knobs:
    latency: dict[str, str] = field(default_factory=dict)  # protocol -> spec (ms)
    unavailable_ratio: float = 0.0  # share of requests answered EService:Unavailable
    stall_every_s: float = 0.0  # a stall starts every this many seconds (0 = never)
    stall_for_s: float = 0.0  # and lasts this long: requests wait, unread, until it ends
    # chance per request that the venue drops the connection instead of handling it: on all
    # three protocols the request is never handled (no order placed, none cancelled)
    drop_ratio: float = 0.0
    # A venue that slows with load: added reply latency, ms, per 1,000 requests/s it answered
    # in the previous second (what a queue in front of a saturating engine does, roughly)
    latency_per_krps: float = 0.0
    # Rate limits set wrong on purpose, to prove the conformance check catches it: the trading
    # counter's threshold and decay per second (None: the tier's published figures), and
    # whether cancels carry their age-based penalty.
    limit_threshold: float | None = None
    limit_decay: float | None = None
    cancel_penalty: bool = True
    seed: int = 0

    def validate(self) -> None:
        for proto, spec in self.latency.items():
            if proto not in PROTOCOLS:
                raise KnobError(f"latency: unknown protocol {proto!r} (use {', '.join(PROTOCOLS)})")
            parse_latency(spec)
        for name in ("unavailable_ratio", "drop_ratio"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise KnobError(f"{name} must be between 0 and 1, got {value}")
        if self.latency_per_krps < 0:
            raise KnobError(f"latency_per_krps must not be negative, got {self.latency_per_krps}")
        for name in ("limit_threshold", "limit_decay"):
            value = getattr(self, name)
            if value is not None and (value < 0 or not math.isfinite(value)):
                raise KnobError(f"{name} must be a finite number >= 0, got {value}")
        if self.stall_every_s < 0 or self.stall_for_s < 0:
            raise KnobError("stall_every_s and stall_for_s must not be negative")
        if self.stall_every_s and self.stall_for_s >= self.stall_every_s:
            raise KnobError("stall_for_s must be shorter than stall_every_s")


class Faults:
    """The knobs at run time. `origin` is the monotonic time stalls are counted from."""

    def __init__(self, knobs: Knobs, origin: float) -> None:
        knobs.validate()
        self.knobs = knobs
        self.origin = origin
        self.rng = random.Random(knobs.seed)
        self.samplers = {p: parse_latency(s) for p, s in knobs.latency.items()}
        self.unavailable_ratio = knobs.unavailable_ratio
        self.drop_ratio = knobs.drop_ratio
        self.stalls = knobs.stall_every_s > 0 and knobs.stall_for_s > 0
        self.per_request = knobs.latency_per_krps / 1e6  # s per (request/s)
        self.any_delay = bool(self.samplers) or self.per_request > 0
        self._second, self._count, self._last_rate = 0, 0, 0

    def delay(self, protocol: str) -> float:
        """Seconds of added latency for one reply (a sample of the protocol's spec)."""
        sampler = self.samplers.get(protocol)
        delay = sampler(self.rng) if sampler is not None else 0.0
        if self.per_request:
            delay += self.per_request * self._load(time.monotonic())
        return delay

    def _load(self, now: float) -> int:
        """Requests answered in the previous whole second (this one counted as it goes)."""
        second = int(now)
        if second != self._second:
            self._last_rate = self._count if second == self._second + 1 else 0
            self._second, self._count = second, 0
        self._count += 1
        return self._last_rate

    def stall_left(self, now: float) -> float:
        """Seconds until the current stall ends (0 when the engine is not stalled).

        Stalls fill the last stall_for_s of each period, so the venue starts healthy. During a
        stall the venue reads nothing it can act on: requests wait and are handled, in order,
        when it ends, as a paused engine would (so deadlines can elapse and rate-limit counters
        decay meanwhile).
        """
        if not self.stalls:
            return 0.0
        k = self.knobs
        into = (now - self.origin) % k.stall_every_s
        return k.stall_every_s - into if into >= k.stall_every_s - k.stall_for_s else 0.0

    def unavailable(self) -> bool:
        return self.unavailable_ratio > 0 and self.rng.random() < self.unavailable_ratio

    def drop(self) -> bool:
        return self.drop_ratio > 0 and self.rng.random() < self.drop_ratio


def misset_flags(
    threshold: float | None, decay: float | None, cancel_penalty: bool = True
) -> list[str]:
    """`loadgen venue` flags for rate limits mis-set on purpose (none for the published ones)."""
    flags = []
    if threshold is not None:
        flags += ["--limit-threshold", str(threshold)]
    if decay is not None:
        flags += ["--limit-decay", str(decay)]
    if not cancel_penalty:
        flags += ["--no-cancel-penalty"]
    return flags
