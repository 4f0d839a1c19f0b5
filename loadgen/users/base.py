"""The trader all three protocols share, as a Locust User: it starts (a key, the markets, the
flow, the client, the shadow), hands each call of its task to its desk (users/desk.py: ask the
flow, call the client, report, learn) and at its stop cancels what is still open. The
cancel-all at a user's stop is cleanup, counted apart by the recorder and not shown as load.
"""

from __future__ import annotations

import time

import gevent
from locust import User, constant, task

from loadgen import keyuse
from loadgen.clients.api import TraderClient
from loadgen.conformance import KeyShadow
from loadgen.flow.mix import OpMix, parse_kinds, parse_weights
from loadgen.flow.model import FlowModel
from loadgen.flow.pacing import Schedule, pipeline_problem
from loadgen.ratelimit import INF, TIERS, batch_cancel_cost
from loadgen.users import options, recording
from loadgen.users.desk import Desk, wall

PHI = 0.6180339887  # users' phases on a new rate: user n at n * PHI (mod 1), evenly spread
DRAIN_S = 2.0  # at its stop, a user waits this long at most for the answers it is owed
DRAIN_POLL_S = 0.005
_MIX_CACHE: dict[str, OpMix] = {}
_SHADOWS: dict[str, KeyShadow] = {}  # api key -> its shadow counters (users of a key share it)


def shadow_for(api_key: str, name: str, tier_name: str) -> KeyShadow | None:
    """The conformance shadow of a key, for a tier with limits (None for 'unlimited')."""
    tier = TIERS.get(tier_name)
    if tier is None or tier.trade_threshold == INF:
        return None
    shadow = _SHADOWS.get(api_key)
    if shadow is None:
        shadow = _SHADOWS[api_key] = KeyShadow(name, tier, wall)
    return shadow


def parse_mix(spec: str) -> OpMix:
    """'add:45,cancel:35' -> OpMix; '' -> the default mix."""
    mix = _MIX_CACHE.get(spec)
    if mix is None:
        mix = _MIX_CACHE[spec] = OpMix(parse_weights(spec, "--order-mix") if spec else None)
    return mix


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
        schedule = (
            Schedule(time.monotonic(), recording.pace.per_user, (self.number * PHI) % 1.0)
            if recording.open_loop(self.environment)
            else None
        )
        self.shadow = shadow_for(self.api_key, f"k{self.number}", opts.tier)
        pipeline = int(getattr(opts, "pipeline", 1))
        problem = pipeline_problem(pipeline, schedule is not None, opts.stay_under)
        if problem:
            raise ValueError(f"--pipeline: {problem}")
        self.client = self.connect()
        self.desk = Desk(
            self.protocol,
            self.flow,
            self.client,
            self.shadow,
            bool(opts.stay_under) and self.shadow is not None,
            pipeline,
            schedule,
            self.environment.events.request.fire,
            self.user_error,
        )
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
        self.desk.turn()

    def user_error(self, exc: Exception) -> None:
        """A failure in an open-loop reader's callback, as Locust reports one raised in a task."""
        self.environment.events.user_error.fire(
            user_instance=self, exception=exc, tb=exc.__traceback__
        )
