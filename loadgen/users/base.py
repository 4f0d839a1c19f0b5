"""The trader all three protocols share: ask the flow, call the client, report, learn.

Each Outcome becomes one Locust request event: request_type is the protocol, name is the
operation. A rate-limited reply gets its own row ("add [rate_limited:trading]") and so does a
business rejection, with the venue's reason ("cancel [rejected:EOrder:Unknown order]": a cancel
of an order that filled meanwhile is a normal outcome of trading, not a failure); errors and
timeouts are failures with the venue's words. The cancel-all at a user's stop is cleanup,
counted apart by the recorder and not shown as load.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import gevent
from locust import User, constant, task

from loadgen import conformance, keyuse
from loadgen.clients.api import TraderClient
from loadgen.clients.dispatch import Done
from loadgen.conformance import KeyShadow
from loadgen.flow.mix import OpMix, parse_kinds, parse_weights
from loadgen.flow.model import Action, FlowModel
from loadgen.flow.pacing import (
    GENERATOR_LATE_S,
    LATE_S,
    OPEN_WINDOW,
    Schedule,
    pipeline_problem,
    take_due,
)
from loadgen.outcome import ERROR, OK, RATE_LIMITED, REJECTED, TIMEOUT, Outcome
from loadgen.ratelimit import INF, TIERS, batch_cancel_cost
from loadgen.users import options, recording

WINDOW_POLL_S = 0.001  # open loop, a full window: how often to look for room again
OPEN_TURNS = 100  # open loop: sends per call of the task (bounded; Locust stops it any time)
OPEN_BATCH = 16  # open loop: at most this many sends already due go out in one write
PHI = 0.6180339887  # users' phases on a new rate: user n at n * PHI (mod 1), evenly spread
DRAIN_S = 2.0  # at its stop, a user waits this long at most for the answers it is owed
DRAIN_POLL_S = 0.005
_MIX_CACHE: dict[str, OpMix] = {}
_SHADOWS: dict[str, KeyShadow] = {}  # api key -> its shadow counters (users of a key share it)
_WALL_OFFSET = time.time() - time.monotonic()


def _wall(mono: float) -> float:
    return mono + _WALL_OFFSET


def _mono(wall_ns: int, now: float) -> float:
    """A client's wall-clock stamp (ns) on the monotonic clock: `now` less how long ago it was
    (exact over a request's span, where a fixed offset between the clocks drifts with NTP)."""
    return now - max(0, time.time_ns() - wall_ns) / 1e9 if wall_ns else now


def shadow_for(api_key: str, name: str, tier_name: str) -> KeyShadow | None:
    """The conformance shadow of a key, for a tier with limits (None for 'unlimited')."""
    tier = TIERS.get(tier_name)
    if tier is None or tier.trade_threshold == INF:
        return None
    shadow = _SHADOWS.get(api_key)
    if shadow is None:
        shadow = _SHADOWS[api_key] = KeyShadow(name, tier, _wall)
    return shadow


def parse_mix(spec: str) -> OpMix:
    """'add:45,cancel:35' -> OpMix; '' -> the default mix."""
    mix = _MIX_CACHE.get(spec)
    if mix is None:
        mix = _MIX_CACHE[spec] = OpMix(parse_weights(spec, "--order-mix") if spec else None)
    return mix


# The client call each operation makes (one home: the clients share these methods).
_ISSUE: dict[str, Callable[[TraderClient, Action], Outcome | None]] = {
    "add": lambda client, a: client.add(a.new[0]),
    "batch_add": lambda client, a: client.batch_add(a.new),
    "cancel": lambda client, a: client.cancel(a.targets[0]),
    "batch_cancel": lambda client, a: client.batch_cancel(a.targets),
    "cancel_all": lambda client, a: client.cancel_all(),
    "amend": lambda client, a: client.amend(a.targets[0], a.price, a.qty),
    "edit": lambda client, a: client.edit(a.targets[0], a.price, a.qty),
}


class TraderUser(User):
    abstract = True
    protocol = ""
    wait_time = constant(0)  # closed loop: the next request as soon as the last is answered

    def on_start(self) -> None:
        self.started = False  # until on_start is through: a failure here is a failed spawn
        opts = self.environment.parsed_options
        self.number, self.api_key, self.secret, self.fix_sender = options.next_key(self.environment)
        markets, weights = options.markets(
            self.environment.host, opts.pairs, options.tls_context(self.environment)
        )
        self.flow = FlowModel(
            markets,
            market_weights=weights,
            mix=parse_mix(opts.order_mix),
            seed=opts.flow_seed,
            user=self.number,
            cross_share=opts.cross_share,
            kinds=parse_kinds(getattr(opts, "order_types", ""), self.protocol),
        )
        self._busy: set[int] = set()  # open loop: orders with a request in flight
        self._base_mix = self.flow.mix
        self._stage_mix: dict[str, float] | None = None
        self.schedule = (
            Schedule(time.monotonic(), recording.pace.per_user, (self.number * PHI) % 1.0)
            if recording.open_loop(self.environment)
            else None
        )
        self.shadow = shadow_for(self.api_key, f"k{self.number}", opts.tier)
        self.stay_under = bool(opts.stay_under) and self.shadow is not None
        self.pipeline = int(getattr(opts, "pipeline", 1))
        problem = pipeline_problem(self.pipeline, self.schedule is not None, opts.stay_under)
        if problem:
            raise ValueError(f"--pipeline: {problem}")
        self.client = self.connect()
        self.started = True

    def connect(self) -> TraderClient:
        raise NotImplementedError

    def on_stop(self) -> None:
        """Cancel what is still open, on a fresh connection (a kill may have cut the last),
        after the answers still owed in open loop have come (for at most DRAIN_S)."""
        if getattr(self, "client", None) is None:
            return
        deadline = time.monotonic() + DRAIN_S
        while self.client.in_flight() and time.monotonic() < deadline:
            gevent.sleep(DRAIN_POLL_S)
        self.client.close()
        self.client = self.connect()
        now = time.monotonic()
        cost = batch_cancel_cost([now - order.placed for order in self.flow.orders])
        outcome = self.client.cancel_all()
        recording.cleanup(outcome)
        if outcome.ok:
            self.flow.all_gone()
        self.client.close()
        self._note_quiet(cost if outcome.ok else INF)

    def _note_quiet(self, last_cost: float) -> None:
        """When this key's trading counter will be quiet again (keyuse: the next run waits)."""
        if self.shadow is None:
            return
        level = self.shadow.level(time.monotonic()) + last_cost
        tier = self.environment.parsed_options.tier
        options.note_quiet(self.api_key, keyuse.quiet_after(tier, level))

    @task
    def trade(self) -> None:
        if self.pipeline > 1:
            self.trade_pipelined()
            return
        if self.schedule is not None:
            for _ in range(OPEN_TURNS):  # a task call per many sends: Locust's loop costs too
                self.trade_open()
            return
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
        self.report(outcome)

    def trade_open(self) -> None:
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
        intended = self.wait_turn()
        assert intended is not None
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
        self.client.dispatch(dones[0] if len(dones) == 1 else dones)

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
            recording.behind_schedule(venue=True)
        return now - start

    def queue(self, action: Action, charges: list, held: float, now: float) -> Done:
        """Queue an open-loop action on the client; where its Outcome goes."""
        self._busy.update(map(id, action.targets))
        self.issue(action)
        return lambda outcome: self.answered(action, charges, held, now, outcome)

    def another_due(self, now: float, queued: int) -> bool:
        """Whether this user's next send is due already (pacing.take_due), its slot taken."""
        assert self.schedule is not None
        room = OPEN_WINDOW - self.client.in_flight() - queued
        intended = take_due(self.schedule, recording.pace.cap, now, room)
        if intended is None:
            return False
        self.note_late(now, intended)
        return True

    def note_late(self, now: float, intended: float) -> None:
        """Count a send the generator let slip a whole interval behind (pacing.py)."""
        assert self.schedule is not None
        if now - intended > max(GENERATOR_LATE_S, 1.0 / self.schedule.rate):
            recording.behind_schedule(venue=False)  # the generator fell a send behind

    def free_action(self, now: float) -> Action:
        """The flow's next action, drawn again (up to 3 times) while it targets an order with
        a request in flight; then a new order instead."""
        for _ in range(3):
            action = self.flow.next_action(now)
            if action.op == "cancel_all" or self._busy.isdisjoint(map(id, action.targets)):
                return action
        return self.flow.add_action(now)

    def answered(self, action: Action, charges: list, held: float, sent: float,
                 outcome: Outcome) -> None:  # fmt: skip
        """An open-loop request's Outcome, in the reader's greenlet: learn, judge, report."""
        try:
            self._busy.difference_update(map(id, action.targets))
            self.learn(action, outcome, sent)
            if self.shadow is not None:
                self.judge(self.shadow, action, charges, outcome, sent)
            self.report(outcome, outcome.latency_us + int(held * 1e6))
        except Exception as exc:  # a user's failure, as Locust reports one raised in a task
            self.environment.events.user_error.fire(
                user_instance=self, exception=exc, tb=exc.__traceback__
            )

    def follow_stage_mix(self) -> None:
        """The flow takes the op mix of the stage the shape is in, when it has its own."""
        if recording.pace.mix is not self._stage_mix:
            self._stage_mix = recording.pace.mix
            self.flow.mix = self._base_mix if self._stage_mix is None else OpMix(self._stage_mix)

    def wait_turn(self) -> float | None:
        """Wait for this user's next slot: its open-loop schedule, then the run's rate cap.

        Returns the intended send time in open loop (None in closed loop). The schedule is
        looked at again at least every TICK_S, so a new rate (a ramp, a spike) applies at once.
        """
        intended = None
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
            intended = schedule.take()
            self.note_late(now, intended)
        slot = recording.pace.cap.take(now)
        if slot > now:
            gevent.sleep(slot - now)
        return intended

    def judge(
        self, shadow: KeyShadow, action: Action, charges: list, outcome: Outcome, sent: float
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
        outcome = self.issue(action)
        assert outcome is not None
        self.learn(action, outcome, now)
        return outcome

    def issue(self, action: Action) -> Outcome | None:
        """The client call for an action: its Outcome, or None while the client queues."""
        return _ISSUE[action.op](self.client, action)

    def learn(self, action: Action, outcome: Outcome, now: float) -> None:
        """Teach the flow what the venue said about an action."""
        self.flow.learn(action, outcome, now)

    def trade_pipelined(self) -> None:
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
        actions: list[Action] = []
        busy: set[int] = set()
        for _ in range(self.pipeline):
            for _retry in range(3):
                action = self.flow.next_action(now)
                if busy.isdisjoint(map(id, action.targets)):
                    break
            else:
                break
            if action.op == "cancel_all" and actions:
                break  # next turn: it would take the other actions' orders from under them
            actions.append(action)
            busy.update(id(o) for o in action.targets)
            if action.op == "cancel_all":
                break
        shadow = self.shadow
        plans = [conformance.plan(self.protocol, a) for a in actions] if shadow else []
        self.client.begin()
        for action in actions:
            self.issue(action)
        outcomes = self.client.flush()
        for i, (action, outcome) in enumerate(zip(actions, outcomes, strict=True)):
            self.learn(action, outcome, now)
            if shadow is not None:
                self.judge(shadow, action, plans[i], outcome, now)
            self.report(outcome)

    def report(self, outcome: Outcome, response_us: int | None = None) -> None:
        recording.record(outcome, response_us)
        name = outcome.op
        exception = None
        if outcome.outcome == RATE_LIMITED:
            name = f"{outcome.op} [rate_limited:{outcome.limit}]"
        elif outcome.outcome == REJECTED:
            name = f"{outcome.op} [rejected:{outcome.error}]"
        elif outcome.outcome != OK:
            name = f"{outcome.op} [{outcome.outcome}]"
            exception = VenueRefusal(outcome.error)
        self.environment.events.request.fire(
            request_type=self.protocol,
            name=name,
            response_time=outcome.latency_us / 1000.0,
            response_length=0,
            exception=exception,
            context={},
        )


class VenueRefusal(Exception):
    """A failed or timed-out request, as Locust shows it: the venue's own words."""
