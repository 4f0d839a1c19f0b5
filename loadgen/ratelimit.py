"""Kraken's Spot rate-limit model: one module, two uses (the venue enforces, the tester predicts).

Pure: no clocks, no I/O. Time comes in as `now` (seconds, any monotonic origin).

Two counters, both "leaky buckets" that rise per call and decay linearly per second (facts 2, 3):
- the REST call counter, one per API key, for non-trading REST calls;
- the trading counter, one per key per pair, shared by REST, WebSocket and FIX, charged a fixed
  cost on receipt plus an age-based penalty when an order is amended, edited or cancelled soon
  after it was placed (or last amended).

Choices where the facts are silent (written down in the README too):
- A call is refused when the counter *after* its charge would exceed the maximum, so the
  published example (Pro: 20 place+cancel pairs within 3 s = 180) reaches exactly the threshold
  without a rejection, and the next order is refused.
- A refused call is not charged: the counter stays where it was and decays on.
- Batch cancels (and cancel-all, which is a batch cancel of every open order) are accepted even
  when they push the counter over the threshold, as the docs say of batch cancels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

INF: Final = float("inf")
# Decay rates like 3.75/s and 2.34/s are not exact in binary floating point: a counter that has
# decayed by exactly one point may read 179.0000000001. Comparisons allow this much slack.
EPSILON: Final = 1e-9


@dataclass(frozen=True, slots=True)
class Tier:
    name: str
    rest_max: float  # REST call counter maximum (facts 2, S7)
    rest_decay: float  # REST counter decay per second
    trade_threshold: float  # per-pair trading counter threshold (facts 3, S8)
    trade_decay: float  # trading counter decay per second
    max_open_orders: int  # open orders per pair


TIERS: Final[dict[str, Tier]] = {
    # Kraken's published tiers (S7 for the REST counter, S8/S9 for the trading counter).
    "starter": Tier("starter", 15, 0.33, 60, 1.0, 60),
    "intermediate": Tier("intermediate", 20, 0.5, 125, 2.34, 80),
    "pro": Tier("pro", 20, 1.0, 180, 3.75, 225),
    # Not Kraken's: for measuring the venue's or the generator's raw capacity.
    "unlimited": Tier("unlimited", INF, 0.0, INF, 0.0, 1_000_000),
}
DEFAULT_TIER: Final = "pro"

# Age-based penalties, (age below seconds, points), from the table in S8. Past the last row: 0.
AMEND_PENALTY: Final = ((5.0, 3), (10.0, 2), (15.0, 1))
EDIT_PENALTY: Final = ((5.0, 6), (10.0, 5), (15.0, 4), (45.0, 2), (90.0, 1))
CANCEL_PENALTY: Final = ((5.0, 8), (10.0, 6), (15.0, 5), (45.0, 4), (90.0, 2), (300.0, 1))

ADD_COST: Final = 1.0  # fixed cost of AddOrder
AMEND_FIXED: Final = 1.0
EDIT_FIXED: Final = 1.0

# REST counter costs (S7): most calls +1; ledger and trade-history calls +2.
REST_DEFAULT_COST: Final = 1.0
REST_COSTS: Final = {"Ledgers": 2.0, "QueryLedgers": 2.0, "TradesHistory": 2.0, "QueryTrades": 2.0}


def penalty(table: tuple[tuple[float, int], ...], age: float) -> int:
    """Points of an age-penalty table for an order `age` seconds old."""
    for below, points in table:
        if age < below:
            return points
    return 0


def add_cost() -> float:
    return ADD_COST


def amend_cost(age: float) -> float:
    return AMEND_FIXED + penalty(AMEND_PENALTY, age)


def edit_cost(age: float) -> float:
    return EDIT_FIXED + penalty(EDIT_PENALTY, age)


def cancel_cost(age: float) -> float:
    """A cancel has no fixed part (S9: place, cancel after 8 s = 1 + 6)."""
    return float(penalty(CANCEL_PENALTY, age))


def batch_add_cost(n: int) -> float:
    return n / 2


def batch_cancel_cost(ages: list[float]) -> float:
    return float(sum(penalty(CANCEL_PENALTY, age) for age in ages))


def rest_cost(method: str) -> float:
    return REST_COSTS.get(method, REST_DEFAULT_COST)


class Counter:
    """A counter that decays linearly to zero; `maximum` is its refusal threshold."""

    __slots__ = ("decay", "maximum", "stamp", "total", "value")

    def __init__(self, maximum: float, decay: float) -> None:
        self.maximum = maximum
        self.decay = decay
        self.value = 0.0
        self.stamp = 0.0
        self.total = 0.0  # everything ever charged (worked examples, reports)

    def level(self, now: float) -> float:
        """The counter at `now` (never below zero)."""
        value = self.value - self.decay * (now - self.stamp)
        return value if value > 0.0 else 0.0

    def would_refuse(self, cost: float, now: float) -> bool:
        return self.level(now) + cost > self.maximum + EPSILON

    def charge(self, cost: float, now: float) -> bool:
        """Charge if it fits under the maximum; False (and no charge) when refused."""
        value = self.level(now) + cost
        if value > self.maximum + EPSILON:
            self.value, self.stamp = value - cost, now
            return False
        self.value, self.stamp = value, now
        self.total += cost
        return True

    def force(self, cost: float, now: float) -> None:
        """Charge whatever the level (batch cancels are accepted over the threshold)."""
        self.value = self.level(now) + cost
        self.stamp = now
        self.total += cost


def rest_counter(tier: Tier) -> Counter:
    return Counter(tier.rest_max, tier.rest_decay)


def trading_counter(tier: Tier) -> Counter:
    return Counter(tier.trade_threshold, tier.trade_decay)
