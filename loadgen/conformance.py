"""Rate-limit conformance: a shadow of the venue's trading counters, fed by what the tester sent.

For every key and pair the tester keeps the counter the venue should be keeping, by the same
model the venue enforces (ratelimit.py) and the tier the run names, and judges each of the
venue's rate-limit decisions against it:

- agreed: the venue refused when the published limits refuse, or accepted when they allow;
- false_reject: the venue refused although the published limits allow the request;
- missed_reject: the venue accepted although the published limits refuse it;
- ambiguous: the request was too close to the threshold to tell, given when it was handled.

The tester cannot see when the venue handled a request, only that it was between the send and
the answer. So the shadow is a pair of counters bracketing the venue's: `lo` charges every
accepted request at its send time and is read at the answer, `hi` charges at the answer and is
read at the send. A linearly decaying counter floored at zero only ever rises when charges move
later, so the venue's counter lies between the two. Costs that hang on an order's age (cancel,
amend and edit penalties) are brackets too: the order's age is known to within the round trips
that placed it and that touch it. A decision is a divergence only when the whole bracket is on
the wrong side of the threshold.

What the venue answered is what the shadow charges: an accepted request (or one refused for
another reason after the charge, as an order over the funds) is charged, a refused one is not,
as the model says. Errors and timeouts leave the tester unsure whether the charge happened, so
they widen the bracket (hi only). A cancel of an order already gone costs nothing (the venue
finds no order to age).

Pure: no clocks, no I/O, no Locust. Times are monotonic seconds; `wall` turns them into unix
time for the report.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from loadgen import ratelimit
from loadgen.outcome import ERROR, LIMIT_TRADING, RATE_LIMITED, TIMEOUT, Outcome, classify
from loadgen.protocol import errors
from loadgen.ratelimit import AMEND_PENALTY, CANCEL_PENALTY, EDIT_PENALTY, Tier, penalty

# A reach this close to the threshold is too close to call, whichever side it lies: the venue
# and the shadow sum the same charges and decays in different orders and at different times,
# and a venue that refused a batch cancel at a reach of [179.999, 180.0] (172 + 8 against 180)
# was once called too strict (issue 13). 1e-6 points is far above the rounding either side can
# gather over a run (ratelimit.EPSILON is 1e-9), and a millionth of the smallest charge.
TOLERANCE: Final = 1e-6

AGREED: Final = "agreed"
FALSE_REJECT: Final = "false_reject"
MISSED_REJECT: Final = "missed_reject"
AMBIGUOUS: Final = "ambiguous"
DECISIONS: Final = (AGREED, FALSE_REJECT, MISSED_REJECT, AMBIGUOUS)
DIVERGENCES: Final = (FALSE_REJECT, MISSED_REJECT)

CONFORMS: Final = "conforms"
TOO_STRICT: Final = "too_strict"  # refuses what the published limits allow
TOO_LENIENT: Final = "too_lenient"  # allows what the published limits refuse
BOTH: Final = "both"
VERDICTS: Final = (CONFORMS, TOO_STRICT, TOO_LENIENT, BOTH)

HISTORY: Final = 8  # requests per key and pair kept to show what led to a divergence
UNKNOWN_ORDER: Final = errors.UNKNOWN_ORDER


def verdict(false_rejects: int, missed_rejects: int) -> str:
    if false_rejects and missed_rejects:
        return BOTH
    if false_rejects:
        return TOO_STRICT
    if missed_rejects:
        return TOO_LENIENT
    return CONFORMS


@dataclass(slots=True)
class Charge:
    """What one rate-limit decision would add to one pair's counter: a fixed part plus the
    age penalty of each order it touches, given as (placed, acked): the send and answer times
    of the request that last set the order's age."""

    pair: str
    fixed: float
    table: tuple[tuple[float, int], ...] = ()
    ages: list[tuple[float, float]] = field(default_factory=list)
    forced: bool = False  # batch cancels: accepted over the threshold (never a refusal)
    part: int = -1  # FIX batches: which of the messages this is

    def bounds(self, sent: float, answered: float) -> tuple[float, float]:
        """(lowest, highest) cost at the venue, handled somewhere in [sent, answered]."""
        lo = hi = self.fixed
        table = self.table
        for placed, acked in self.ages:
            lo += penalty(table, answered - placed)  # oldest the order can be
            hi += penalty(table, max(0.0, sent - acked))  # youngest
        return lo, hi


@dataclass(slots=True)
class Decision:
    cls: str  # one of DECISIONS
    protocol: str
    op: str
    pair: str
    refused: bool
    after: float  # the shadow counter after the request (its lower bound), for the chart
    reach: tuple[float, float]  # what the request would take the counter to: (lo, hi)
    record: dict[str, Any] | None = None  # a divergence: the request and what led to it


class _PairShadow:
    __slots__ = ("hi", "hi_t", "lo", "lo_t", "recent")

    def __init__(self) -> None:
        self.lo = self.hi = 0.0
        self.lo_t = self.hi_t = 0.0
        self.recent: deque[dict[str, Any]] = deque(maxlen=HISTORY)

    def levels(self, decay: float, sent: float, answered: float) -> tuple[float, float]:
        """(lo read at the answer, hi read at the send): the venue's counter is between."""
        lo = self.lo - decay * max(0.0, answered - self.lo_t)
        hi = self.hi - decay * max(0.0, sent - self.hi_t)
        return max(lo, 0.0), max(hi, 0.0)

    def charge(self, decay: float, lo_cost: float, sent: float, hi_cost: float, at: float) -> None:
        lo = self.lo - decay * max(0.0, sent - self.lo_t)
        self.lo, self.lo_t = max(lo, 0.0) + lo_cost, max(sent, self.lo_t)
        hi = self.hi - decay * max(0.0, at - self.hi_t)
        self.hi, self.hi_t = max(hi, 0.0) + hi_cost, max(at, self.hi_t)


def plan(protocol: str, action: Any) -> list[Charge]:
    """The charges an action makes, worked out before it is sent (the flow re-ages an order as
    soon as an amend or edit succeeds, so the ages are read first)."""
    return _PLANS[action.op](protocol, action)


def _plan_add(protocol: str, action: Any) -> list[Charge]:
    return [Charge(action.market.name, ratelimit.ADD_COST)]


def _plan_batch_add(protocol: str, action: Any) -> list[Charge]:
    name = action.market.name
    if protocol == "fix":  # one NewOrderSingle per order, each charged on its own
        return [Charge(name, ratelimit.ADD_COST, part=i) for i in range(len(action.new))]
    return [Charge(name, ratelimit.batch_add_cost(len(action.new)))]


def _plan_amend(protocol: str, action: Any) -> list[Charge]:
    target = action.targets[0]
    table: tuple[tuple[float, int], ...] = AMEND_PENALTY
    fixed = ratelimit.AMEND_FIXED
    if action.op == "edit" and protocol != "fix":  # FIX's cancel-replace is an amend at Kraken
        fixed, table = ratelimit.EDIT_FIXED, EDIT_PENALTY
    return [Charge(target.market.name, fixed, table, [_age(target)])]


def _plan_cancel(protocol: str, action: Any) -> list[Charge]:
    target = action.targets[0]
    return [Charge(target.market.name, 0.0, CANCEL_PENALTY, [_age(target)])]


def _plan_batch_cancel(protocol: str, action: Any) -> list[Charge]:
    if protocol == "fix":  # single cancels, each judged
        return [
            Charge(o.market.name, 0.0, CANCEL_PENALTY, [_age(o)], part=i)
            for i, o in enumerate(action.targets)
        ]
    return _plan_forced(protocol, action)


def _plan_forced(protocol: str, action: Any) -> list[Charge]:
    """batch_cancel, cancel_all: forced, one charge per pair touched."""
    by_pair: dict[str, Charge] = {}
    for order in action.targets:
        name = order.market.name
        charge = by_pair.get(name)
        if charge is None:
            charge = by_pair[name] = Charge(name, 0.0, CANCEL_PENALTY, forced=True)
        charge.ages.append(_age(order))
    return list(by_pair.values())


# What each of the traders' operations charges (a dropped FIX session is planned as the
# cancel-all the venue makes of its orders: users/desk.Desk.judge)
_PLANS: Final = {
    "add": _plan_add,
    "batch_add": _plan_batch_add,
    "amend": _plan_amend,
    "edit": _plan_amend,
    "cancel": _plan_cancel,
    "batch_cancel": _plan_batch_cancel,
    "cancel_all": _plan_forced,
}


def _age(order: Any) -> tuple[float, float]:
    acked = order.acked
    return order.placed, acked if acked >= order.placed else order.placed


class KeyShadow:
    """The shadow counters of one API key, one per pair, for its tier's published limits."""

    def __init__(self, name: str, tier: Tier, wall: Callable[[float], float]) -> None:
        self.name = name
        self.tier = tier
        self.wall = wall
        self.threshold = tier.trade_threshold
        self.decay = tier.trade_decay
        self.pairs: dict[str, _PairShadow] = {}

    def _pair(self, name: str) -> _PairShadow:
        shadow = self.pairs.get(name)
        if shadow is None:
            shadow = self.pairs[name] = _PairShadow()
        return shadow

    def level(self, now: float) -> float:
        """The highest any of this key's counters can be at `now` (the upper bound)."""
        return max((s.levels(self.decay, now, now)[1] for s in self.pairs.values()), default=0.0)

    # ---- staying under ------------------------------------------------------------------------

    def wait_s(self, charges: Sequence[Charge], now: float) -> float:
        """Seconds to wait before these charges fit under the threshold for sure (0: now)."""
        if not self.decay:
            return 0.0
        need: dict[str, float] = {}  # per pair: a FIX batch is many charges on one counter
        for charge in charges:
            if not charge.forced:
                need[charge.pair] = need.get(charge.pair, 0.0) + charge.bounds(now, now)[1]
        wait = 0.0
        for pair, cost in need.items():
            shadow = self.pairs.get(pair)
            hi = shadow.levels(self.decay, now, now)[1] if shadow is not None else 0.0
            # more than the threshold never fits: send it when the counter is empty
            over = hi + min(cost, self.threshold) - self.threshold
            if over > 0:
                wait = max(wait, over / self.decay)
        return wait

    # ---- judging ------------------------------------------------------------------------------

    def settle(
        self,
        protocol: str,
        op: str,
        charges: list[Charge],
        outcome: Outcome,
        sent: float,
        answered: float,
    ) -> list[Decision]:
        """Judge the venue's answer to a request planned as `charges`, and charge the shadow."""
        cls = outcome.outcome
        if cls == RATE_LIMITED and outcome.limit != LIMIT_TRADING:
            return []  # another limiter refused it before the trading counter saw it
        if cls in (ERROR, TIMEOUT):
            self._unsure(charges, sent, answered)
            return []
        decisions: list[Decision] = []
        # a batch cancel says how many orders it found: the cost of the ones the tester knew
        count = outcome.detail if isinstance(outcome.detail, int) else None
        asked = sum(len(c.ages) for c in charges if c.forced)
        if count is not None and op in ("cancel_all", "batch_cancel") and count > asked:
            self._surplus(count - asked, sent, answered)
        parts = outcome.parts
        for charge in charges:
            error = outcome.error
            if charge.part >= 0 and parts is not None and charge.part < len(parts):
                error = parts[charge.part]
            if error == UNKNOWN_ORDER:
                continue  # nothing found to cancel or amend: no charge
            refused = error.startswith(errors.TRADE_RATE)
            if not refused and error and charge.part >= 0 and classify(error)[0] == ERROR:
                self._unsure([charge], sent, answered)
                continue
            if charge.forced and not refused and count is not None and count < asked:
                lo_cost, hi_cost = self._counted(charge, count, asked - count, sent, answered)
            else:
                lo_cost, hi_cost = charge.bounds(sent, answered)
            decision = self._decide(protocol, op, charge, refused, lo_cost, hi_cost, sent, answered)
            if decision is not None:
                decisions.append(decision)
        return decisions

    def _surplus(self, extra: int, sent: float, answered: float) -> None:
        """A batch cancel that cancelled `extra` orders more than the tester knew of (an order
        it took for filled was only partly filled, say): each may have been on any pair, at
        the dearest penalty, so every pair's upper bound takes them all."""
        cost = extra * float(CANCEL_PENALTY[0][1])
        for shadow in self.pairs.values():
            shadow.charge(self.decay, 0.0, sent, cost, answered)

    @staticmethod
    def _counted(
        charge: Charge, count: int, missing: int, sent: float, answered: float
    ) -> tuple[float, float]:
        """A batch cancel that found `missing` fewer orders than asked (they filled unseen:
        REST hears of no fills), not knowing which: the lowest cost counts this pair's
        cheapest orders and the highest its dearest."""
        table = charge.table
        cheap = sorted(penalty(table, answered - placed) for placed, _ in charge.ages)
        dear = sorted((penalty(table, max(0.0, sent - acked)) for _, acked in charge.ages),
                      reverse=True)  # fmt: skip
        n = len(charge.ages)
        return (
            charge.fixed + sum(cheap[: max(0, n - missing)]),
            charge.fixed + sum(dear[: min(n, count)]),
        )

    def _decide(
        self,
        protocol: str,
        op: str,
        charge: Charge,
        refused: bool,
        lo_cost: float,
        hi_cost: float,
        sent: float,
        answered: float,
    ) -> Decision | None:
        shadow = self._pair(charge.pair)
        decay, threshold = self.decay, self.threshold
        lo, hi = shadow.levels(decay, sent, answered)
        reach = (lo + lo_cost, hi + hi_cost)
        cls: str | None
        if charge.forced:
            cls = FALSE_REJECT if refused else None  # batch cancels are never refused
        elif reach[0] > threshold + TOLERANCE:  # over the threshold however the timing fell
            cls = AGREED if refused else MISSED_REJECT
        elif reach[1] > threshold - TOLERANCE:  # over or under, by timing or by rounding
            cls = AMBIGUOUS
        else:  # under the threshold however the timing fell
            cls = FALSE_REJECT if refused else AGREED
        if not refused:
            shadow.charge(decay, lo_cost, sent, hi_cost, answered)
        shadow.recent.append(
            {
                "t": round(self.wall(sent), 6),
                "protocol": protocol,
                "op": op,
                "cost": [lo_cost, hi_cost],
                "counter": [round(lo, 3), round(hi, 3)],
                "venue": "refused" if refused else "accepted",
            }
        )
        if cls is None:
            return None
        after = shadow.levels(decay, answered, answered)[0]
        decision = Decision(cls, protocol, op, charge.pair, refused, after, reach)
        if cls in DIVERGENCES:
            decision.record = {
                "t": round(self.wall(sent), 6),
                "class": cls,
                "key": self.name,
                "pair": charge.pair,
                "protocol": protocol,
                "op": op,
                "tier": self.tier.name,
                "threshold": self.threshold,
                "reach": [round(reach[0], 3), round(reach[1], 3)],
                "recent": list(shadow.recent),
            }
        return decision

    def _unsure(self, charges: list[Charge], sent: float, answered: float) -> None:
        """No answer to trust: the venue may or may not have charged (hi only)."""
        for charge in charges:
            shadow = self._pair(charge.pair)
            hi_cost = charge.bounds(sent, answered)[1]
            shadow.charge(self.decay, 0.0, sent, hi_cost, answered)


def mark_acked(action: Any, outcome: Outcome, answered: float) -> None:
    """The venue answered a request that set orders' ages: they were set by `answered`."""
    op = action.op
    if op in ("add", "batch_add"):
        for order in action.new:
            order.acked = answered
    elif op in ("amend", "edit") and outcome.ok:
        action.targets[0].acked = answered
