"""Open-loop pacing and the hard rate cap: pure functions of time, no sleeping here.

Schedule: a user's intended send times at `rate` requests per second, one after another,
whatever the replies do. A send that starts after its intended time is behind schedule and
goes at once ("behind schedule: send now", as wrk2 and vegeta do); its latency is then taken
from the intended time too, which is the coordinated-omission correction: a venue that
stalls for a second delays every send that was due in that second, and each of them counts
the whole wait it caused.

Throttle: slots at most `rate` per second shared by every caller in a process, the run's hard
cap on total request rate (its share of it).

Pace: what a process's users pace themselves by, as the shape (or the master) sets it.
"""

from __future__ import annotations

import math
from typing import Final

# a send held over 1 ms past its intended time by the venue's last reply is late
LATE_S: Final = 0.001
# A send the generator itself let slip is late once it is a whole send interval behind (its
# next send is already due: the schedule slipped), and never under 10 ms: the event loop runs a
# ready greenlet or a timer a few milliseconds late on a shared machine (the lag sampler
# measures that part), and a slip that leaves the next slot untouched costs the venue nothing
# (the open-loop latency never charges it for the generator's delay).
GENERATOR_LATE_S: Final = 0.010
MAX_PIPELINE: Final = 256  # requests a user may put on the wire per turn
# Open loop: the requests a user may have unanswered at once. Sends go on schedule whatever the
# answers do until this many are owed; past it the venue is holding the user back (a stalled
# venue would otherwise be sent an unbounded backlog), and that wait is charged to the venue.
OPEN_WINDOW: Final = 64


def pipeline_problem(pipeline: int, open_loop: bool, stay_under: bool) -> str:
    """What is wrong with a pipeline depth for this loop ('' when nothing): the profile's
    load.pipeline and the traders' --pipeline follow the same rule."""
    if not 1 <= pipeline <= MAX_PIPELINE:
        return f"must be between 1 and {MAX_PIPELINE} requests, got {pipeline}"
    if pipeline > 1 and (open_loop or stay_under):
        return (
            "works in the closed loop without stay_under (each user sends its requests in "
            "groups; a schedule or a wait per request would split them)"
        )
    return ""


class Schedule:
    """Intended send times at `rate` per second; a new rate re-times the next send from the
    last one (so a rate given while it is tiny, at the foot of a ramp, never leaves a user
    parked minutes ahead), but never before the moment the rate changed: a faster rate heard
    a little after the last send must not make its first slot overdue on arrival (that send
    would count as behind schedule through no one's fault).

    Users hear a new rate at one moment (the pace moves at the shape's step, pacing.Pace), so
    each keeps a phase of its own: re-timed, a user's next slot is the first one not before the
    change on the grid of its own last send; started (first rate, or after a rate of 0) it is
    `phase` of an interval after the change. Otherwise every user would send at once, a
    step's burst repeated every interval for the whole stage."""

    def __init__(self, start: float, rate: float, phase: float = 0.0) -> None:
        self.next_at = start
        self.rate = rate
        self.phase = phase  # of an interval, in [0, 1): where this user starts on a new rate
        self.last: float | None = None  # the intended time of the last send

    def set_rate(self, rate: float, now: float) -> None:
        """A new rate from now on (0: no sends until a rate comes back)."""
        if rate == self.rate:
            return
        if rate > 0:
            if self.rate <= 0 or self.last is None:
                start = now + self.phase / rate
                self.next_at = max(self.next_at, start) if self.last is None else start
            else:
                steps = max(1, math.ceil((now - self.last) * rate))
                self.next_at = self.last + steps / rate
        self.rate = rate

    def take(self) -> float:
        """The intended time of the next send (the caller waits until then)."""
        intended = self.last = self.next_at
        self.next_at = intended + 1.0 / self.rate
        return intended


def take_due(schedule: Schedule, cap: Throttle, now: float, room: int) -> float | None:
    """Open loop, a user sending: the intended time of its next send when that is due at `now`
    already (the generator fell behind), with `room` left in its window and a slot under the
    cap within BURST_S, both taken; None otherwise. Sends due together go in one write."""
    if room <= 0 or schedule.rate <= 0 or schedule.next_at > now or not cap.free(now):
        return None
    cap.take(now)
    return schedule.take()


# How far ahead of the cap's steady pace a user's batch of sends already due may run (the
# sends of one write: pacing.take_due). A single send still waits for its slot: letting every
# send run 2 ms ahead (the generic cell rate algorithm) made sends burst and the readers late,
# measured: at 5,000 req/s on 30 users the P99 that loadgen read was 5.5-6.3 ms against
# 0.7-1.5 ms on the wire, 0.7-1.4 ms against the same with each send waiting (bench wire, two
# alternating rounds).
BURST_S: Final = 0.002


class Throttle:
    """At most `rate` slots per second; rate 0 means no cap. A batch of sends already due may
    take slots up to BURST_S ahead of the pace (free()), never more over time."""

    def __init__(self, rate: float = 0.0) -> None:
        self.rate = rate
        self.next_at = 0.0

    def free(self, now: float) -> bool:
        """Whether a batch may take a slot at `now`: the next one is at most BURST_S away."""
        return self.rate <= 0 or self.next_at - BURST_S <= now

    def take(self, now: float, n: int = 1) -> float:
        """The time this caller may send `n` requests at (now, or later when the cap is
        reached)."""
        if self.rate <= 0:
            return now
        slot = max(now, self.next_at)
        self.next_at = slot + n / self.rate
        return slot


# Users waiting across a step of the load wake this long after it, once the ticker (on a
# worker, the master's message) has moved the pace on.
PACE_SLACK_S: Final = 0.005
PACE_GRACE_S: Final = 0.05  # then a short poll, for a new pace that comes late...
PACE_POLL_S: Final = 0.002  # ...this often


class Pace:
    """A process's pace: the open-loop rate per user, its share of the hard cap, the op mix of
    the stage the shape is in (None: the run's own mix), and when the shape changes them next.

    Users asleep until their next send look at the pace again every `tick` seconds, and just
    after the shape's next step: one asleep on the old pace through a step up would send late
    into the new one (measured before this: 600 users stepping from 2,000 to 6,000 req/s
    achieved 5,800-5,900 in the new step, the missed sends of its first quarter second).
    """

    def __init__(self, tick: float) -> None:
        self.tick = tick
        self.per_user = 0.0
        self.cap = Throttle()
        self.mix: dict[str, float] | None = None
        self.next_change = math.inf  # when (monotonic) the shape's step ends

    def apply(
        self,
        per_user: float,
        cap: float,
        mix: dict[str, float] | None,
        next_in: float | None,
        now: float,
    ) -> None:
        """The pace from `now` on, and in how many seconds the shape's stage ends (None: the
        run is over, or the shape has no stages)."""
        self.per_user, self.cap.rate, self.mix = per_user, cap, mix
        self.next_change = math.inf if next_in is None else now + next_in

    def nap(self, now: float) -> float:
        """How long a user waiting for its next send may sleep before it looks again: a tick,
        or until just after the shape's next change; and while the new pace is late (on a
        worker, the master's message), a short poll for PACE_GRACE_S."""
        until = self.next_change + PACE_SLACK_S - now
        if until > 0:
            return min(self.tick, until)
        return PACE_POLL_S if -until < PACE_GRACE_S else self.tick
