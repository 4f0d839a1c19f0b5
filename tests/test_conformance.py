"""The conformance shadow judged against a venue simulated by the same model, exactly."""

from __future__ import annotations

import dataclasses

import pytest

from loadgen import conformance, ratelimit
from loadgen.conformance import (
    AGREED,
    AMBIGUOUS,
    FALSE_REJECT,
    MISSED_REJECT,
    KeyShadow,
    plan,
    verdict,
)
from loadgen.flow.market import Market
from loadgen.flow.model import Action
from loadgen.flow.orders import LiveOrder
from loadgen.outcome import OK, Outcome

STARTER = ratelimit.TIERS["starter"]
MARKET = Market("XBTUSD", "XBT/USD", 1, 8, 0.0001, 50000.0)
RATE = "EOrder:Rate limit exceeded"


def add_action(now: float) -> Action:
    return Action("add", MARKET, new=[LiveOrder(f"{now}", MARKET, "buy", 100, 1, now)])


class Venue:
    """The venue's side: one trading counter, charged at a receipt time we choose."""

    def __init__(self, tier: ratelimit.Tier, cancel_penalty: bool = True) -> None:
        self.counter = ratelimit.trading_counter(tier)
        self.cancel_penalty = cancel_penalty

    def add(self, at: float) -> Outcome:
        ok = self.counter.charge(ratelimit.ADD_COST, at)
        return Outcome("ws", "add", OK, 1) if ok else Outcome.from_error("ws", "add", 1, RATE)

    def cancel(self, order: LiveOrder, at: float) -> Outcome:
        cost = ratelimit.cancel_cost(at - order.placed) if self.cancel_penalty else 0.0
        ok = self.counter.charge(cost, at)
        return Outcome("ws", "cancel", OK, 1) if ok else Outcome.from_error("ws", "cancel", 1, RATE)


def drive(venue: Venue, tier: ratelimit.Tier, n: int, gap: float, rtt: float) -> dict[str, int]:
    """n adds, one every `gap` s, each handled mid-way through its round trip."""
    shadow = KeyShadow("k0", tier, wall=lambda m: m)
    counts = dict.fromkeys((AGREED, FALSE_REJECT, MISSED_REJECT, AMBIGUOUS), 0)
    for i in range(n):
        sent = 10.0 + i * gap
        action = add_action(sent)
        charges = plan("ws", action)
        outcome = venue.add(sent + rtt / 2)
        for d in shadow.settle("ws", "add", charges, outcome, sent, sent + rtt):
            counts[d.cls] += 1
    return counts


def test_a_venue_holding_the_published_limits_never_diverges() -> None:
    counts = drive(Venue(STARTER), STARTER, 2000, 0.01, 0.001)
    assert counts[FALSE_REJECT] == counts[MISSED_REJECT] == 0
    assert counts[AGREED] > 1900  # a few straddle the threshold within their round trip
    assert counts[AMBIGUOUS] > 0


def test_a_threshold_set_too_low_shows_as_false_rejects_only() -> None:
    low = dataclasses.replace(STARTER, trade_threshold=40)
    counts = drive(Venue(low), STARTER, 500, 0.01, 0.001)
    assert counts[FALSE_REJECT] > 0 and counts[MISSED_REJECT] == 0


def test_a_decay_too_fast_shows_as_missed_rejects_only() -> None:
    fast = dataclasses.replace(STARTER, trade_decay=3.0)
    counts = drive(Venue(fast), STARTER, 2000, 0.01, 0.001)
    assert counts[MISSED_REJECT] > 0 and counts[FALSE_REJECT] == 0


def test_a_missing_cancel_penalty_shows_as_missed_rejects() -> None:
    venue, shadow = Venue(STARTER, cancel_penalty=False), KeyShadow("k0", STARTER, lambda m: m)
    classes = []
    for i in range(200):
        sent = 10.0 + i * 0.02
        order = LiveOrder(f"{i}", MARKET, "buy", 100, 1, sent)
        add = Action("add", MARKET, new=[order])
        charges = plan("ws", add)
        shadow.settle("ws", "add", charges, venue.add(sent + 0.0005), sent, sent + 0.001)
        conformance.mark_acked(add, Outcome("ws", "add", OK, 1), sent + 0.001)
        cancel = Action("cancel", MARKET, targets=[order])
        charges = plan("ws", cancel)  # the order's age is read before the cancel is sent
        t = sent + 0.01
        outcome = venue.cancel(order, t + 0.0005)
        classes += [d.cls for d in shadow.settle("ws", "cancel", charges, outcome, t, t + 0.001)]
    assert MISSED_REJECT in classes and FALSE_REJECT not in classes


def test_a_decision_within_the_round_trip_of_the_threshold_is_ambiguous_not_a_divergence() -> None:
    # the counter is full (60) at t=0; one second later it is 59 somewhere within a 20 ms round
    # trip, so an add (cost 1) may or may not fit: either answer is right
    for answer in (Outcome("ws", "add", OK, 1), Outcome.from_error("ws", "add", 1, RATE)):
        shadow = KeyShadow("k0", STARTER, lambda m: m)
        for _ in range(60):
            ok = Outcome("ws", "add", OK, 1)
            shadow.settle("ws", "add", plan("ws", add_action(0.0)), ok, 0.0, 0.0)
        d = shadow.settle("ws", "add", plan("ws", add_action(0.99)), answer, 0.99, 1.01)
        assert [x.cls for x in d] == [AMBIGUOUS]
        assert d[0].reach == pytest.approx((59.99, 60.01))


def test_a_refusal_exactly_at_the_threshold_is_too_close_to_call_not_a_false_reject() -> None:
    """Issue 13: a reach of [179.999, 180.0] refused by the venue was called a false reject;
    the venue's own sum of the same charges can round past the threshold. Well clear of it
    (a whole point under), a refusal is still a false reject."""
    for filled, expected in ((59, AMBIGUOUS), (58, FALSE_REJECT)):
        shadow = KeyShadow("k0", STARTER, lambda m: m)
        for _ in range(filled):
            ok = Outcome("ws", "add", OK, 1)
            shadow.settle("ws", "add", plan("ws", add_action(5.0)), ok, 5.0, 5.0)
        refused = Outcome.from_error("ws", "add", 1, RATE)
        d = shadow.settle("ws", "add", plan("ws", add_action(5.0)), refused, 5.0, 5.0)
        assert [x.cls for x in d] == [expected], filled


def test_a_batch_cancel_is_never_refused_by_the_published_rules() -> None:
    shadow = KeyShadow("k0", STARTER, lambda m: m)
    order = LiveOrder("1", MARKET, "buy", 100, 1, 0.0, acked=0.001)
    action = Action("batch_cancel", targets=[order, order])
    refused = Outcome.from_error("rest", "batch_cancel", 1, RATE)
    decisions = shadow.settle("rest", "batch_cancel", plan("rest", action), refused, 1.0, 1.001)
    assert [d.cls for d in decisions] == [FALSE_REJECT]
    ok = Outcome("rest", "batch_cancel", OK, 1, detail=2)
    assert shadow.settle("rest", "batch_cancel", plan("rest", action), ok, 2.0, 2.001) == []


def test_an_unknown_order_costs_nothing_and_decides_nothing() -> None:
    shadow = KeyShadow("k0", STARTER, lambda m: m)
    order = LiveOrder("1", MARKET, "buy", 100, 1, 0.0, acked=0.001)
    gone = Outcome.from_error("ws", "cancel", 1, "EOrder:Unknown order")
    action = Action("cancel", MARKET, targets=[order])
    assert shadow.settle("ws", "cancel", plan("ws", action), gone, 1.0, 1.001) == []
    assert shadow.pairs == {}


def test_the_cost_of_an_order_near_an_age_boundary_is_a_bracket() -> None:
    order = LiveOrder("1", MARKET, "buy", 100, 1, placed=0.0, acked=0.002)
    (charge,) = plan("ws", Action("cancel", MARKET, targets=[order]))
    # handled somewhere in [4.999, 5.001]: under 5 s old costs 8, over costs 6
    assert charge.bounds(4.999, 5.001) == (6.0, 8.0)
    assert charge.bounds(3.0, 3.001) == (8.0, 8.0)


def test_stay_under_waits_exactly_until_the_next_order_fits() -> None:
    shadow = KeyShadow("k0", STARTER, lambda m: m)
    for _ in range(60):
        shadow.settle("ws", "add", plan("ws", add_action(0.0)), Outcome("ws", "add", OK, 1), 0, 0)
    assert shadow.wait_s(plan("ws", add_action(0.0)), 0.0) == pytest.approx(1.0)
    assert shadow.wait_s(plan("ws", add_action(0.5)), 0.5) == pytest.approx(0.5)
    assert shadow.wait_s(plan("ws", add_action(1.0)), 1.0) == 0.0


@pytest.mark.parametrize(
    ("false", "missed", "expected"),
    [(0, 0, "conforms"), (3, 0, "too_strict"), (0, 2, "too_lenient"), (1, 1, "both")],
)
def test_verdicts(false: int, missed: int, expected: str) -> None:
    assert verdict(false, missed) == expected
