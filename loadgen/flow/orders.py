"""A trader's own orders: what it placed, what the venue confirmed, and how old each is.

Ages matter because the venue's rate limit charges a cancel, amend or edit by the age of the
order it touches (ratelimit.py); the flow model picks targets from here, so a cancel always
names an order that is really live, and its age predicts what the cancel will cost.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from loadgen.flow import draws
from loadgen.flow.market import Market
from loadgen.protocol.orderkinds import LIMIT, Kind


@dataclass(slots=True, eq=False, init=False)  # its own __init__: the dataclass one is Python's
class LiveOrder:
    cl_ord_id: str
    market: Market
    side: str
    price: int  # ticks: the limit (0: none, a market or stop-loss order)
    qty: int  # lots
    placed: float  # monotonic seconds; amends reset it (the rate limit counts from there)
    txid: str  # the venue's order id, once it answered
    acked: float  # monotonic seconds: when the answer that set `placed` came back
    post_only: bool  # maker only: refused rather than taking (loadgen check's orders)
    kind: Kind  # its order type and time in force (protocol/orderkinds.py)
    trigger: int  # ticks: a stop or take-profit's trigger price
    display: int  # lots: an iceberg's visible slice
    expires: float  # monotonic seconds: when the venue ends a GTD order (0: never)
    slot: int = field(repr=False)  # position in OwnOrders._live

    def __init__(
        self,
        cl_ord_id: str,
        market: Market,
        side: str,
        price: int,
        qty: int,
        placed: float,
        txid: str = "",
        acked: float = 0.0,
        post_only: bool = False,
        kind: Kind = LIMIT,
        trigger: int = 0,
        display: int = 0,
        expires: float = 0.0,
        slot: int = -1,
    ) -> None:
        self.cl_ord_id = cl_ord_id
        self.market = market
        self.side = side
        self.price = price
        self.qty = qty
        self.placed = placed
        self.txid = txid
        self.acked = acked
        self.post_only = post_only
        self.kind = kind
        self.trigger = trigger
        self.display = display
        self.expires = expires
        self.slot = slot

    def age(self, now: float) -> float:
        return now - self.placed


class OwnOrders:
    """Orders confirmed live, with O(1) add, remove and uniform random pick."""

    def __init__(self) -> None:
        self._live: list[LiveOrder] = []
        self.by_cl_ord_id: dict[str, LiveOrder] = {}
        self.by_txid: dict[str, LiveOrder] = {}

    def __len__(self) -> int:
        return len(self._live)

    def __iter__(self):
        return iter(list(self._live))

    def add(self, order: LiveOrder, txid: str = "") -> None:
        if order.cl_ord_id in self.by_cl_ord_id:
            return
        if txid:
            order.txid = txid
            self.by_txid[txid] = order
        order.slot = len(self._live)
        self._live.append(order)
        self.by_cl_ord_id[order.cl_ord_id] = order

    def remove(self, order: LiveOrder) -> None:
        """Forget an order (cancelled, filled, or found gone); unknown orders are ignored."""
        if self.by_cl_ord_id.get(order.cl_ord_id) is not order:
            return
        del self.by_cl_ord_id[order.cl_ord_id]
        if order.txid:
            self.by_txid.pop(order.txid, None)
        last = self._live.pop()
        if last is not order:  # move the last one into the hole
            last.slot = order.slot
            self._live[order.slot] = last
        order.slot = -1

    def retxid(self, order: LiveOrder, txid: str) -> None:
        """An edit replaced the order: same cl_ord_id here, a new venue id."""
        if order.txid:
            self.by_txid.pop(order.txid, None)
        order.txid = txid
        self.by_txid[txid] = order

    def pick(self, rng: random.Random) -> LiveOrder | None:
        return self._live[draws.below(rng, len(self._live))] if self._live else None

    def pick_many(self, rng: random.Random, n: int) -> list[LiveOrder]:
        return draws.sample(rng, self._live, min(n, len(self._live)))

    def clear(self) -> None:
        self._live.clear()
        self.by_cl_ord_id.clear()
        self.by_txid.clear()
