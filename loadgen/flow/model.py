"""One trader's order flow: the next action, and what it learns from the venue's answers.

Pure and deterministic for a seed: no sockets, no clocks (`now` comes in), no Locust. A user
class asks `next_action(now)`, sends it through a client, and hands the venue's Outcome to
`learn` (which calls `placed`, `gone`, `amended`, `replaced` or `all_gone`); fills seen on the
executions channel or in FIX ExecutionReports arrive as `gone` too. Targets are always orders
the venue confirmed and has not reported gone, so cancels, amends and edits name orders that
are really live.
"""

from __future__ import annotations

import bisect
import itertools
import random
import time
from collections import OrderedDict, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from loadgen.flow import draws
from loadgen.flow.market import BUY, SELL, Market, PriceWalk, slipped
from loadgen.flow.mix import OpMix
from loadgen.flow.orders import LiveOrder, OwnOrders
from loadgen.outcome import Outcome
from loadgen.protocol import errors
from loadgen.protocol.orderkinds import GTD_LIFETIME_S, ICEBERG_SHOWN, KINDS, LIMIT, Kind

# a trader's open orders before it cancels rather than adds (below Starter's 60)
MAX_LIVE: Final = 50
BATCH_MIN: Final = 2  # Kraken batches: 2..15 orders to add, up to 50 ids to cancel (facts 1.3)
BATCH_ADD_MAX: Final = 15
BATCH_CANCEL_MAX: Final = 50
SIZE_SCALE: Final = 1.5  # order size: the pair's minimum times 1 + int(an exponential of this mean)
CL_ORD_ID_DIGITS: Final = 18  # FIX: an ever-increasing number of up to 18 characters (facts 5)
# One sequence for every trader in the process: each trader's ids increase, and so does every
# id the process gives one FIX session, whoever drew it (Kraken refuses a ClOrdID that does not
# rise, facts 11). It starts at the time in units of 10 us (modulo 10^12, 115 days), so a
# process that takes over a session (a restart, the next run on the same keys) goes on above
# the ids of the one before, unless that one drew more than 100,000 ids a second.
_SEQUENCE: Final = itertools.count(time.time_ns() // 10_000 % 10**12)


def cl_ord_id(user: int) -> str:
    """An 18-digit ClOrdID: 6 digits of the user, 12 of the process's sequence."""
    seq: int = next(_SEQUENCE)
    # str(10^n + x)[1:], not a format spec ({x:012d}): a str.format call when compiled
    tail = str(1_000_000_000_000 + seq)[1:] if seq < 1_000_000_000_000 else str(seq)
    return str(1_000_000 + user % 1_000_000)[1:] + tail


# Ids of orders heard ended (on a channel) before their acceptance came back: only orders still
# in flight can match (in closed loop at most a pipeline of batches, 16 x 15; in open loop what
# a slow venue leaves unanswered), so the oldest go first past this. Most ids heard are of
# orders the flow already forgot (a cancel's own event): a trader kept 4,096 of them each
# (issue 13's soak: the generator grew).
EARLY_ENDS_KEPT: Final = 256
GTD_MARGIN_S: Final = 1.0  # a GTD order is forgotten this long before the venue expires it


@dataclass(slots=True, init=False)  # its own __init__: the dataclass one would be Python's
class Action:
    op: str
    market: Market | None
    new: list[LiveOrder]  # orders this action places
    targets: list[LiveOrder]  # live orders it touches
    price: int  # amend/edit: the new price in ticks (0 = unchanged)
    qty: int  # amend/edit: the new quantity in lots (0 = unchanged)

    def __init__(
        self,
        op: str,
        market: Market | None = None,
        new: list[LiveOrder] | None = None,
        targets: list[LiveOrder] | None = None,
        price: int = 0,
        qty: int = 0,
    ) -> None:
        self.op = op
        self.market = market
        self.new = [] if new is None else new
        self.targets = [] if targets is None else targets
        self.price = price
        self.qty = qty


class FlowModel:
    def __init__(
        self,
        markets: Sequence[Market],
        *,
        market_weights: Sequence[float] | None = None,
        mix: OpMix | None = None,
        seed: int = 0,
        user: int = 0,
        cross_share: float = 0.1,
        max_live: int = MAX_LIVE,
        kinds: Mapping[str, float] | None = None,
    ) -> None:
        if not markets:
            raise ValueError("flow: at least one market is needed")
        weights = list(market_weights or [1.0] * len(markets))
        if len(weights) != len(markets) or any(w < 0 for w in weights) or sum(weights) <= 0:
            raise ValueError("flow: one non-negative weight per market, not all zero")
        if max_live < BATCH_MIN:
            raise ValueError(f"flow: max_live must be at least {BATCH_MIN}")
        self.rng = random.Random(f"{seed}:{user}")
        self.markets = list(markets)
        self._market_cum = list(itertools.accumulate(weights))
        self.mix = mix or OpMix()
        self.walks = {m.name: PriceWalk(m, self.rng, cross_share) for m in markets}
        self.orders = OwnOrders()
        self.max_live = max_live
        self.user = user
        self._kinds, self._kind_cum = _kind_table(kinds)
        self._expiring: deque[LiveOrder] = deque()  # GTD orders placed, oldest first
        # ids ended before their answer, oldest first (OrderedDict: an O(1) drop of the oldest)
        self._ended_early: OrderedDict[str, None] = OrderedDict()

    # ---- choosing --------------------------------------------------------------------------

    def next_cl_ord_id(self) -> str:
        """Unique per trader and ever-increasing: 6 digits of user, 12 of sequence."""
        return cl_ord_id(self.user)

    def next_action(self, now: float) -> Action:
        if self._expiring and self._expiring[0].expires <= now:
            self._drop_expired(now)
        live = len(self.orders)
        op = self.mix.choose(self.rng, live)
        if op == "add" and live >= self.max_live:
            op = "cancel"
        if op == "batch_add" and live + BATCH_MIN > self.max_live:
            op = "cancel" if live else "add"
        # By name, not getattr(self, f"_{op}"): that built a string and a bound method and
        # called it through Python (2% of a compiled trader's time, by perf).
        if op == "add":
            return self._add(now)
        if op == "cancel":
            return self._cancel(now)
        if op == "amend":
            return self._amend(now)
        if op == "edit":
            return self._edit(now)
        if op == "batch_add":
            return self._batch_add(now)
        if op == "batch_cancel":
            return self._batch_cancel(now)
        if op == "cancel_all":
            return self._cancel_all(now)
        raise ValueError(f"the order mix drew an unknown operation {op!r}")

    def _drop_expired(self, now: float) -> None:
        """Forget GTD orders whose time is (nearly) up: one lifetime for all, so the oldest
        expire first."""
        expiring = self._expiring
        while expiring and expiring[0].expires <= now:
            self.orders.remove(expiring.popleft())

    def _market(self) -> Market:
        r = self.rng.random() * self._market_cum[-1]
        return self.markets[bisect.bisect_right(self._market_cum, r)]

    def _kind(self) -> Kind:
        kinds = self._kinds
        if len(kinds) == 1:
            return kinds[0]
        r = self.rng.random() * self._kind_cum[-1]
        return kinds[bisect.bisect_right(self._kind_cum, r)]

    def _order(self, market: Market, now: float) -> LiveOrder:
        kind = self._kind()
        side = BUY if self.rng.random() < 0.5 else SELL
        lots = market.min_lots * (1 + int(draws.expovariate(self.rng, 1.0 / SIZE_SCALE)))
        walk = self.walks[market.name]
        order = LiveOrder(self.next_cl_ord_id(), market, side, 0, lots, now, kind=kind,
                          post_only=kind.post_only)  # fmt: skip
        if kind.trigger:
            order.trigger = walk.trigger(side, kind.trigger)
            if kind.limit:
                order.price = slipped(order.trigger, side)
        elif kind.limit:  # an order that never rests (ioc, fok) is sent to take: it crosses;
            # a post-only one never does (the venue would cancel it, unheard on REST)
            order.price = walk.quote(side, _crossing(kind.rests, kind.post_only))
        else:  # a market order: the walk steps all the same
            walk.step()
        if kind.display:
            order.display = max(market.min_lots, -(-lots // ICEBERG_SHOWN))
        return order

    def add_action(self, now: float) -> Action:
        """A new order, whatever the mix says (open loop: when every draw hit a busy order)."""
        return self._add(now)

    def _add(self, now: float) -> Action:
        market = self._market()
        return Action("add", market, new=[self._order(market, now)])

    def _batch_add(self, now: float) -> Action:
        market = self._market()
        room = min(BATCH_ADD_MAX, self.max_live - len(self.orders))
        n = draws.randint(self.rng, BATCH_MIN, max(BATCH_MIN, room))
        return Action("batch_add", market, new=[self._order(market, now) for _ in range(n)])

    def _cancel(self, now: float) -> Action:
        order = self.orders.pick(self.rng)
        assert order is not None  # the mix only picks cancel with a live order
        return Action("cancel", order.market, targets=[order])

    def _batch_cancel(self, now: float) -> Action:
        n = draws.randint(self.rng, BATCH_MIN, BATCH_CANCEL_MAX)
        return Action("batch_cancel", targets=self.orders.pick_many(self.rng, n))

    def _cancel_all(self, now: float) -> Action:
        return Action("cancel_all", targets=list(self.orders))

    def _amend(self, now: float) -> Action:
        """Half re-price (a new quote on the same side), half size down (keeps queue place).
        A trigger order's amend is a size change only (orderkinds: its choices)."""
        order = self.orders.pick(self.rng)
        assert order is not None
        if order.kind.size_amends_only:
            return self._resize(order)
        if self.rng.random() < 0.5 or order.qty <= order.market.min_lots:
            price = self.walks[order.market.name].quote(
                order.side, _crossing(True, order.post_only)
            )
            return Action("amend", order.market, targets=[order], price=price)
        qty = max(order.market.min_lots, order.qty - order.market.min_lots)
        return Action("amend", order.market, targets=[order], qty=qty)

    def _resize(self, order: LiveOrder) -> Action:
        """A size amend: down a minimum order, or up one where it is already the minimum."""
        step = order.market.min_lots
        qty = order.qty - step if order.qty > step else order.qty + step
        return Action("amend", order.market, targets=[order], qty=qty)

    def _edit(self, now: float) -> Action:
        order = self.orders.pick(self.rng)
        assert order is not None
        if order.kind.size_amends_only:  # EditOrder refuses triggered orders: amend it
            return self._resize(order)
        price = self.walks[order.market.name].quote(order.side, _crossing(True, order.post_only))
        return Action("edit", order.market, targets=[order], price=price, qty=order.qty)

    # ---- learning ----------------------------------------------------------------------------

    def placed(self, order: LiveOrder, txid: str, now: float) -> None:
        """The venue accepted the order and it rests (an order that filled at once is gone:
        its fill may have been heard before the acceptance)."""
        if self._ended_early and txid in self._ended_early:
            del self._ended_early[txid]
            return
        if not order.kind.rests:  # market, IOC, FOK: done once answered, nothing to target
            return
        order.placed = now
        if order.kind.tif == "gtd":  # the venue ends it then; REST would not hear of it
            order.expires = now + GTD_LIFETIME_S - GTD_MARGIN_S
            self._expiring.append(order)
        self.orders.add(order, txid)

    def gone(self, order: LiveOrder) -> None:
        """Cancelled, filled, or reported unknown by the venue."""
        self.orders.remove(order)

    def gone_txid(self, txid: str) -> None:
        """An order ended (filled, cancelled) by the venue's word on a channel."""
        order = self.orders.by_txid.get(txid)
        if order is not None:
            self.orders.remove(order)
        elif txid:  # not placed yet as far as the flow knows: its answer is still to come
            early = self._ended_early
            if len(early) >= EARLY_ENDS_KEPT:
                early.popitem(last=False)
            early[txid] = None

    def gone_cl_ord_id(self, cl_ord_id: str) -> None:
        order = self.orders.by_cl_ord_id.get(cl_ord_id)
        if order is not None:
            self.orders.remove(order)

    def amended(self, order: LiveOrder, price: int, qty: int, now: float) -> None:
        """An amend took effect: the rate limit now counts the order's age from here."""
        if price:
            order.price = price
        if qty:
            order.qty = qty
        order.placed = now

    def replaced(self, order: LiveOrder, txid: str, price: int, qty: int, now: float) -> None:
        """An edit replaced the order with a new venue id."""
        self.amended(order, price, qty, now)
        self.orders.retxid(order, txid)

    def all_gone(self) -> None:
        self.orders.clear()
        self._expiring.clear()

    def learn(self, action: Action, outcome: Outcome, now: float) -> None:
        """What the venue's answer to an action says: orders placed, gone, amended, replaced.
        An unknown order was gone already (filled meanwhile): the flow forgets it."""
        _LEARN[action.op](self, action, outcome, now)

    def _learn_add(self, action: Action, outcome: Outcome, now: float) -> None:
        if outcome.ok:
            self.placed(action.new[0], outcome.detail, now)

    def _learn_batch_add(self, action: Action, outcome: Outcome, now: float) -> None:
        if isinstance(outcome.detail, list):  # per order (FIX answers each one)
            for order, txid in zip(action.new, outcome.detail, strict=True):
                if txid:
                    self.placed(order, txid, now)

    def _learn_cancel(self, action: Action, outcome: Outcome, now: float) -> None:
        if outcome.ok or outcome.error == errors.UNKNOWN_ORDER:  # cancelled now, or gone before
            for order in action.targets:
                self.gone(order)

    def _learn_cancel_all(self, action: Action, outcome: Outcome, now: float) -> None:
        if outcome.ok:
            self.all_gone()

    def _learn_amend(self, action: Action, outcome: Outcome, now: float) -> None:
        target = action.targets[0]
        if outcome.ok:
            self.amended(target, action.price, action.qty, now)
        elif outcome.error == errors.UNKNOWN_ORDER:
            self.gone(target)

    def _learn_edit(self, action: Action, outcome: Outcome, now: float) -> None:
        target = action.targets[0]
        if outcome.ok:
            self.replaced(target, outcome.detail, action.price, action.qty, now)
        elif outcome.error == errors.UNKNOWN_ORDER:
            self.gone(target)


_LEARN: Final = {
    "add": FlowModel._learn_add,
    "batch_add": FlowModel._learn_batch_add,
    "cancel": FlowModel._learn_cancel,
    "batch_cancel": FlowModel._learn_cancel,
    "cancel_all": FlowModel._learn_cancel_all,
    "amend": FlowModel._learn_amend,
    "edit": FlowModel._learn_edit,
}


def _crossing(rests: bool, post_only: bool) -> bool | None:
    """How a limit price is drawn: through the mid (True: it is sent to take), never through it
    (False: post-only), or as the walk's crossing share says (None)."""
    if not rests:
        return True
    return False if post_only else None


def _kind_table(weights: Mapping[str, float] | None) -> tuple[list[Kind], list[float]]:
    """The kinds to draw from and their cumulative weights (None: limit orders only)."""
    if not weights:
        return [LIMIT], [1.0]
    for name, weight in weights.items():
        if name not in KINDS:
            raise ValueError(f"flow: unknown order type {name!r} (known: {', '.join(KINDS)})")
        if not weight >= 0:
            raise ValueError(f"flow: the weight of order type {name!r} must be >= 0")
    chosen = [(KINDS[name], w) for name, w in weights.items() if w > 0]
    if not chosen:
        raise ValueError("flow: at least one order type needs a weight above 0")
    return [k for k, _ in chosen], list(itertools.accumulate(w for _, w in chosen))
