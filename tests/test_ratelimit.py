"""The Kraken rate-limit model: published worked examples, tiers, decay, penalties."""

from __future__ import annotations

import pytest

from loadgen import ratelimit
from loadgen.ratelimit import TIERS, Counter


def test_pro_twenty_place_and_cancel_within_3s_reach_exactly_180():
    """Support article (S9): Pro, 20 orders each placed and cancelled within 3 s = 180."""
    counter = ratelimit.trading_counter(TIERS["pro"])
    for _ in range(20):
        assert counter.charge(ratelimit.add_cost(), now=0.0)
        assert counter.charge(ratelimit.cancel_cost(age=2.9), now=0.0)
    assert counter.level(0.0) == 180 == TIERS["pro"].trade_threshold
    assert not counter.charge(ratelimit.add_cost(), now=0.0)  # the 21st order is refused
    assert counter.level(0.0) == 180  # and a refusal is not charged


def test_add_amend_at_7s_cancel_36s_later_costs_8():
    """Docs (S8): add (1), amend at 7 s (1 + 2), cancel 36 s after the amend (4) = 8."""
    counter = ratelimit.trading_counter(TIERS["pro"])
    assert counter.charge(ratelimit.add_cost(), now=0.0)
    assert counter.charge(ratelimit.amend_cost(age=7.0), now=7.0)
    assert counter.charge(ratelimit.cancel_cost(age=36.0), now=43.0)
    assert counter.total == 8


def test_place_then_cancel_after_8s_costs_7():
    """S9: a cancel has no fixed part: 1 + 6."""
    assert ratelimit.add_cost() + ratelimit.cancel_cost(8.0) == 7


@pytest.mark.parametrize(
    ("age", "amend", "edit", "cancel"),
    [
        (0.0, 4, 7, 8),
        (4.99, 4, 7, 8),
        (5.0, 3, 6, 6),
        (10.0, 2, 5, 5),
        (15.0, 1, 3, 4),
        (45.0, 1, 2, 2),
        (90.0, 1, 1, 1),
        (299.0, 1, 1, 1),
        (300.0, 1, 1, 0),
    ],
)
def test_penalty_table_edges(age, amend, edit, cancel):
    """Each row: the cost of amend, edit and cancel at that age (S8 table; fixed parts included)."""
    assert ratelimit.amend_cost(age) == amend
    assert ratelimit.edit_cost(age) == edit
    assert ratelimit.cancel_cost(age) == cancel


def test_batch_costs():
    assert ratelimit.batch_add_cost(15) == 7.5
    assert ratelimit.batch_cancel_cost([1.0, 6.0, 400.0]) == 8 + 6 + 0


@pytest.mark.parametrize(
    ("tier", "threshold", "decay", "open_orders", "rest_max", "rest_decay"),
    [
        ("starter", 60, 1.0, 60, 15, 0.33),
        ("intermediate", 125, 2.34, 80, 20, 0.5),
        ("pro", 180, 3.75, 225, 20, 1.0),
    ],
)
def test_published_tiers(tier, threshold, decay, open_orders, rest_max, rest_decay):
    t = TIERS[tier]
    assert (t.trade_threshold, t.trade_decay, t.max_open_orders) == (threshold, decay, open_orders)
    assert (t.rest_max, t.rest_decay) == (rest_max, rest_decay)


def test_decay_is_linear_and_floors_at_zero():
    counter = Counter(maximum=60, decay=1.0)
    counter.charge(10, now=0.0)
    assert counter.level(4.0) == 6
    assert counter.level(100.0) == 0


def test_refused_until_decay_makes_room():
    counter = ratelimit.trading_counter(TIERS["starter"])  # 60, 1/s
    assert counter.charge(60, now=0.0)
    assert not counter.charge(1, now=0.5)
    assert counter.charge(1, now=1.0)  # 60 - 1 + 1 = 60, not over


def test_batch_cancel_is_accepted_over_the_threshold():
    counter = ratelimit.trading_counter(TIERS["starter"])
    counter.charge(60, now=0.0)
    counter.force(ratelimit.batch_cancel_cost([0.0, 0.0]), now=0.0)
    assert counter.level(0.0) == 76


def test_rest_counter_costs():
    assert ratelimit.rest_cost("OpenOrders") == 1
    assert ratelimit.rest_cost("Ledgers") == 2
    counter = ratelimit.rest_counter(TIERS["starter"])
    for _ in range(15):
        assert counter.charge(1, now=0.0)
    assert not counter.charge(1, now=0.0)
    assert counter.charge(1, now=1 / 0.33 + 1e-9)
