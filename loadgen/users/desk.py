"""A trader's desk: what each of its turns does, ask the flow, call the client, report, learn,
apart from Locust (users/base.py holds one per user and calls it from its task).

Compiled with the clients (native.COMPILED): this is the generator's per-request path, and as
Python it was the last of it interpreted (perf of `loadgen bench traders`). It reaches Locust
only through the callables the user hands it: the request event and the user-error event.

Each Outcome becomes one Locust request event: request_type is the protocol, name is the
operation. A rate-limited reply gets its own row ("add [rate_limited:trading]") and so does a
business rejection, with the venue's reason ("cancel [rejected:EOrder:Unknown order]": a cancel
of an order that filled meanwhile is a normal outcome of trading, not a failure); errors and
timeouts are failures with the venue's words.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Final

import gevent

from loadgen import conformance
from loadgen.clients.api import TraderClient
from loadgen.clients.dispatch import Done
from loadgen.conformance import KeyShadow
from loadgen.flow.mix import OpMix
from loadgen.flow.model import Action, FlowModel
from loadgen.flow.pacing import GENERATOR_LATE_S, LATE_S, OPEN_WINDOW, Schedule, take_due
from loadgen.outcome import ERROR, OK, RATE_LIMITED, REJECTED, TIMEOUT, Outcome
from loadgen.users import recording

WINDOW_POLL_S: Final = 0.001  # open loop, a full window: how often to look for room again
OPEN_TURNS: Final = 100  # open loop: sends per call of the task (bounded; Locust stops it)
OPEN_BATCH: Final = 16  # open loop: at most this many sends already due go out in one write
_WALL_OFFSET: Final = time.time() - time.monotonic()

RequestEvent = Callable[..., None]  # Locust's events.request.fire
UserError = Callable[[Exception], None]  # a failure in a reader's callback, as Locust shows one


def wall(mono: float) -> float:
    return mono + _WALL_OFFSET


def _mono(wall_ns: int, now: float) -> float:
    """A client's wall-clock stamp (ns) on the monotonic clock: `now` less how long ago it was
    (exact over a request's span, where a fixed offset between the clocks drifts with NTP)."""
    return now - max(0, time.time_ns() - wall_ns) / 1e9 if wall_ns else now


def _issue(client: TraderClient, a: Action) -> Outcome | None:
    """The client call for an action: its Outcome, or None while the client queues."""
    op = a.op
    if op == "add":
        return client.add(a.new[0])
    if op == "cancel":
        return client.cancel(a.targets[0])
    if op == "amend":
        return client.amend(a.targets[0], a.price, a.qty)
    if op == "edit":
        return client.edit(a.targets[0], a.price, a.qty)
    if op == "batch_add":
        return client.batch_add(a.new)
    if op == "batch_cancel":
        return client.batch_cancel(a.targets)
    if op == "cancel_all":
        return client.cancel_all()
    raise ValueError(f"no client call for operation {op!r}")


def _disjoint(busy: set[int], action: Action) -> bool:
    return all(id(order) not in busy for order in action.targets)


class VenueRefusal(Exception):
    """A failed or timed-out request, as Locust shows it: the venue's own words."""


class Desk:
    """One user's trading: its flow, client and rate-limit shadow, a turn at a time.

    The closed loop's turns (one request, or --pipeline N in one write) wait for their answers;
    the open loop's send on the user's schedule and never wait (DESIGN, data path 3).
    """

    def __init__(
        self,
        protocol: str,
        flow: FlowModel,
        client: TraderClient,
        shadow: KeyShadow | None,
        stay_under: bool,
        pipeline: int,
        schedule: Schedule | None,
        request_event: RequestEvent,
        user_error: UserError,
    ) -> None:
        self.protocol = protocol
        self.flow = flow
        self.client = client
        self.shadow = shadow
        self.stay_under = stay_under
        self.pipeline = pipeline
        self.schedule = schedule
        self.request_event = request_event
        self.user_error = user_error
        self.busy: set[int] = set()  # open loop: orders with a request in flight
        self.base_mix = flow.mix
        self.stage_mix: dict[str, float] | None = None

    def turn(self) -> None:
        """One call of the user's task."""
        if self.pipeline > 1:
            self.turn_pipelined()
        elif self.schedule is not None:
            for _ in range(OPEN_TURNS):  # a task call per many sends: Locust's loop costs too
                self.turn_open()
        else:
            self.turn_closed()

    def turn_closed(self) -> None:
        """Closed loop: one request, its answer awaited."""
        self.wait_turn()
        self.follow_stage_mix()
        now = time.monotonic()
        action = self.flow.next_action(now)
        shadow = self.shadow
        if shadow is None:
            outcome = self.perform(action, now)
        else:
            charges = conformance.plan(self.protocol, action)  # before the flow re-ages orders
            if self.stay_under:
                wait = shadow.wait_s(charges, now)
                if wait > 0:
                    gevent.sleep(wait)
                    now = time.monotonic()
            outcome = self.perform(action, now)
            self.judge(shadow, action, charges, outcome, now)
        self.report(outcome, -1)

    def turn_open(self) -> None:
        """Open loop: send on this user's schedule, never waiting for the answers (DESIGN, data
        path 3). The client's reader hands each Outcome to answered() as it arrives.

        Its latency is taken from the intended send time too (coordinated omission corrected)
        for the part of the delay the venue caused: a send held because OPEN_WINDOW requests
        were still unanswered. What the generator adds (a timer woken late, a busy core) is not
        the venue's; `late` counts those sends.

        Sends of this user's that are already due when one goes (the generator fell a whole
        interval or more behind) go with it in the same write, up to OPEN_BATCH: each is as
        late as it is, but the write, its stamp and the reader's wake-up are paid once for all
        of them, as the pipelined loop pays them, so a generator that has fallen behind
        catches up instead of falling further behind (issue 14: "sends due in the same tick go
        out in one write per connection"). With stay_under each send waits for its own room.
        """
        self.wait_turn()
        self.follow_stage_mix()
        held = self.hold_for_window()
        now = time.monotonic()
        action = self.free_action(now)
        shadow = self.shadow
        charges = conformance.plan(self.protocol, action) if shadow is not None else []
        if shadow is not None and self.stay_under:
            wait = shadow.wait_s(charges, now)
            if wait > 0:
                gevent.sleep(wait)
                now = time.monotonic()
        self.client.begin()
        dones = [self.queue(action, charges, held, now)]
        while (
            not self.stay_under
            and action.op != "cancel_all"  # it would take the next ones' orders from under them
            and len(dones) < OPEN_BATCH
            and self.another_due(now, len(dones))
        ):
            action = self.free_action(now)
            charges = conformance.plan(self.protocol, action) if shadow is not None else []
            dones.append(self.queue(action, charges, 0.0, now))
        if len(dones) == 1:
            self.client.dispatch(dones[0])
        else:
            self.client.dispatch(dones)

    def hold_for_window(self) -> float:
        """Open loop: wait while OPEN_WINDOW requests are unanswered; how long that was the
        venue's doing (seconds; 0 when this process could not read its answers meanwhile)."""
        if self.client.in_flight() < OPEN_WINDOW:
            return 0.0
        start = time.monotonic()
        while self.client.in_flight() >= OPEN_WINDOW:
            gevent.sleep(WINDOW_POLL_S)
        now = time.monotonic()
        if recording.generator_stalled(start, now):
            return 0.0  # answers may have been in while this process could not read them
        if now - start > LATE_S:
            recording.behind_schedule(True)
        return now - start

    def queue(self, action: Action, charges: list[Any], held: float, now: float) -> Done:
        """Queue an open-loop action on the client; where its Outcome goes."""
        busy = self.busy
        for order in action.targets:
            busy.add(id(order))
        _issue(self.client, action)
        return lambda outcome: self.answered(action, charges, held, now, outcome)

    def another_due(self, now: float, queued: int) -> bool:
        """Whether this user's next send is due already (pacing.take_due), its slot taken."""
        schedule = self.schedule
        assert schedule is not None
        room = OPEN_WINDOW - self.client.in_flight() - queued
        intended = take_due(schedule, recording.pace.cap, now, room)
        if intended is None:
            return False
        self.note_late(schedule, now, intended)
        return True

    def note_late(self, schedule: Schedule, now: float, intended: float) -> None:
        """Count a send the generator let slip a whole interval behind (pacing.py)."""
        if now - intended > max(GENERATOR_LATE_S, 1.0 / schedule.rate):
            recording.behind_schedule(False)  # the generator fell a send behind

    def free_action(self, now: float) -> Action:
        """The flow's next action, drawn again (up to 3 times) while it targets an order with
        a request in flight; then a new order instead."""
        for _ in range(3):
            action = self.flow.next_action(now)
            if action.op == "cancel_all" or _disjoint(self.busy, action):
                return action
        return self.flow.add_action(now)

    def answered(
        self, action: Action, charges: list[Any], held: float, sent: float, outcome: Outcome
    ) -> None:
        """An open-loop request's Outcome, in the reader's greenlet: learn, judge, report."""
        try:
            busy = self.busy
            for order in action.targets:
                busy.discard(id(order))
            self.flow.learn(action, outcome, sent)
            if self.shadow is not None:
                self.judge(self.shadow, action, charges, outcome, sent)
            self.report(outcome, outcome.latency_us + int(held * 1e6))
        except Exception as exc:  # a user's failure, as Locust reports one raised in a task
            self.user_error(exc)

    def follow_stage_mix(self) -> None:
        """The flow takes the op mix of the stage the shape is in, when it has its own."""
        mix = recording.pace.mix
        if mix is not self.stage_mix:
            self.stage_mix = mix
            self.flow.mix = self.base_mix if mix is None else OpMix(mix)

    def wait_turn(self) -> None:
        """Wait for this user's next slot: its open-loop schedule (the slot taken), then the
        run's rate cap. The schedule is looked at again at least every TICK_S, so a new rate
        (a ramp, a spike) applies at once."""
        now = time.monotonic()
        schedule = self.schedule
        if schedule is not None:
            while True:
                schedule.set_rate(recording.pace.per_user, now)
                if schedule.rate > 0 and schedule.next_at <= now:
                    break
                wait = schedule.next_at - now if schedule.rate > 0 else recording.TICK_S
                gevent.sleep(min(wait, recording.pace.nap(now)))
                now = time.monotonic()
            self.note_late(schedule, now, schedule.take())
        slot = recording.pace.cap.take(now)
        if slot > now:
            gevent.sleep(slot - now)

    def judge(
        self,
        shadow: KeyShadow,
        action: Action,
        charges: list[Any],
        outcome: Outcome,
        sent: float,
    ) -> None:
        """Hold the venue's rate-limit decisions against the published limits (conformance),
        at the times the request went and its answer arrived (the clients' stamps)."""
        now = time.monotonic()
        answered = _mono(outcome.answered_ns, now)
        if outcome.sent_ns:
            sent = _mono(outcome.sent_ns, now)
        for d in shadow.settle(self.protocol, action.op, charges, outcome, sent, answered):
            recording.decision(shadow.name, d)
        conformance.mark_acked(action, outcome, answered)
        if self.protocol == "fix" and outcome.outcome in (ERROR, TIMEOUT):
            # A dropped FIX session: the venue cancels its orders, a batch cancel it charges
            gone = Action("cancel_all", targets=list(self.flow.orders))
            shadow.settle(
                "fix", "disconnect", conformance.plan("fix", gone), outcome, sent, answered
            )

    def perform(self, action: Action, now: float) -> Outcome:
        """Send the action, then teach the flow what the venue said."""
        outcome = _issue(self.client, action)
        assert outcome is not None
        self.flow.learn(action, outcome, now)
        return outcome

    def turn_pipelined(self) -> None:
        """One turn of --pipeline N: N actions on the wire in one write, then every answer.

        The actions are drawn one after another from the flow, none touching an order another
        of them touches (an order's id may change with an edit in the same turn); a cancel-all
        ends the turn. Orders added in a turn are only known, and so only targeted, from the
        next turn on, as the venue's answers tell the flow.
        """
        self.follow_stage_mix()
        now = time.monotonic()
        slot = recording.pace.cap.take(now, self.pipeline)
        if slot > now:
            gevent.sleep(slot - now)
            now = time.monotonic()
        actions = self.draw_turn(now)
        shadow = self.shadow
        plans = [conformance.plan(self.protocol, a) for a in actions] if shadow else []
        client = self.client
        client.begin()
        for action in actions:
            _issue(client, action)
        outcomes = client.flush()
        if len(outcomes) != len(actions):
            raise RuntimeError(f"{len(outcomes)} outcomes for {len(actions)} requests")
        for i, action in enumerate(actions):
            outcome = outcomes[i]
            self.flow.learn(action, outcome, now)
            if shadow is not None:
                self.judge(shadow, action, plans[i], outcome, now)
            self.report(outcome, -1)

    def draw_turn(self, now: float) -> list[Action]:
        """A pipelined turn's actions (turn_pipelined)."""
        actions: list[Action] = []
        busy: set[int] = set()
        for _ in range(self.pipeline):
            action = None
            for _retry in range(3):
                drawn = self.flow.next_action(now)
                if _disjoint(busy, drawn):
                    action = drawn
                    break
            if action is None:
                break
            if action.op == "cancel_all" and actions:
                break  # next turn: it would take the other actions' orders from under them
            actions.append(action)
            for order in action.targets:
                busy.add(id(order))
            if action.op == "cancel_all":
                break
        return actions

    def report(self, outcome: Outcome, response_us: int) -> None:
        """Record an Outcome and hand it to Locust as a request event; `response_us` is the
        open loop's latency from the intended send (-1: the Outcome's own)."""
        recorder = recording.recorder  # (read here, not through a Python call a request)
        if recorder is not None:
            recorder.record(outcome, None if response_us < 0 else response_us)
        name = outcome.op
        exception = None
        if outcome.outcome == RATE_LIMITED:
            name = f"{outcome.op} [rate_limited:{outcome.limit}]"
        elif outcome.outcome == REJECTED:
            name = f"{outcome.op} [rejected:{outcome.error}]"
        elif outcome.outcome != OK:
            name = f"{outcome.op} [{outcome.outcome}]"
            exception = VenueRefusal(outcome.error)
        self.request_event(
            request_type=self.protocol,
            name=name,
            response_time=outcome.latency_us / 1000.0,
            response_length=0,
            exception=exception,
            context={},
        )
