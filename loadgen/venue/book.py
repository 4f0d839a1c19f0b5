"""A limit order book for one pair: price-time priority, integer ticks and lots.

Each side keeps its price levels in a dict (price -> insertion-ordered dict of orders, so FIFO
within a level and O(1) removal by id) and the level prices in a heap for the best price.
Emptied levels leave stale heap entries that are skipped lazily; the heap is rebuilt when stale
entries outnumber live ones, so a long random walk of prices cannot grow it without bound.
Cost per operation depends on the levels touched, never on the number of pairs or orders.
"""

from __future__ import annotations

from heapq import heapify, heappop, heappush
from typing import Any

BUY = "buy"
SELL = "sell"


class Order:
    __slots__ = (
        "account",
        "cl_ord_id",
        "cost",
        "filled",
        "opened",
        "order_type",
        "origin",
        "pair",
        "post_only",
        "price",
        "qty",
        "session",
        "side",
        "status",
        "tif",
        "touched",
        "txid",
        "userref",
    )

    def __init__(
        self,
        txid: str,
        account: Any,
        spec: Any,
        opened: float,
        touched: float,
        origin: str = "rest",
        session: Any = None,
    ) -> None:
        """`spec` is the engine's OrderSpec (pair, side, type, qty, price and options)."""
        self.txid = txid
        self.account = account
        self.pair = spec.pair
        self.side = spec.side
        self.order_type = spec.order_type
        self.price = spec.price  # ticks; 0 for market orders
        self.qty = spec.qty  # lots, the order's total quantity (amend changes it)
        self.filled = 0  # lots
        self.cost = 0  # sum of fill price ticks * lots (scaled in reports)
        self.opened = opened  # wall clock
        self.touched = touched  # monotonic: placed or last amended (rate-limit age)
        self.cl_ord_id: str | None = spec.cl_ord_id
        self.userref: int | None = spec.userref
        self.post_only: bool = spec.post_only
        self.tif: str = spec.tif
        self.origin = origin
        self.session: Any = session  # the FIX session that placed it, for its ExecutionReports
        self.status = "new"

    @property
    def remaining(self) -> int:
        return self.qty - self.filled


class BookSide:
    __slots__ = ("heap", "levels", "sign")

    def __init__(self, sign: int) -> None:
        self.sign = sign  # -1 for bids (highest first), +1 for asks (lowest first)
        self.levels: dict[int, dict[str, Order]] = {}
        self.heap: list[int] = []

    def best(self) -> int | None:
        heap, levels, sign = self.heap, self.levels, self.sign
        while heap:
            price = heap[0] * sign
            if price in levels:
                return price
            heappop(heap)
        return None

    def insert(self, order: Order) -> None:
        level = self.levels.get(order.price)
        if level is None:
            self.levels[order.price] = {order.txid: order}
            heappush(self.heap, order.price * self.sign)
            if len(self.heap) > 2 * len(self.levels) + 64:
                self.heap = [p * self.sign for p in self.levels]
                heapify(self.heap)
        else:
            level[order.txid] = order

    def remove(self, order: Order) -> None:
        level = self.levels[order.price]
        del level[order.txid]
        if not level:
            del self.levels[order.price]

    def depth(self) -> int:
        return sum(len(level) for level in self.levels.values())


class Book:
    """Both sides of one pair's book."""

    __slots__ = ("asks", "bids", "pair")

    def __init__(self, pair: Any) -> None:
        self.pair = pair
        self.bids = BookSide(-1)
        self.asks = BookSide(1)

    def side(self, side: str) -> BookSide:
        return self.bids if side == BUY else self.asks

    def opposite(self, side: str) -> BookSide:
        return self.asks if side == BUY else self.bids

    def crosses(self, side: str, price: int) -> bool:
        """Would a limit order at `price` take liquidity now?"""
        best = self.opposite(side).best()
        if best is None:
            return False
        return price >= best if side == BUY else price <= best

    def match(self, taker: Order, limit: int | None) -> list[tuple[Order, int, int]]:
        """Fill `taker` against the opposite side up to `limit` (None = market).

        Returns [(maker, qty, price)]; fills are applied to both orders and emptied makers are
        removed from the book. Stops early at a maker of the same account (self-trade
        prevention, cancel-newest: the caller cancels the taker's rest) and reports it by
        leaving that maker first in `taker`'s way; see `self_trade_blocked`.
        """
        fills: list[tuple[Order, int, int]] = []
        opposite = self.opposite(taker.side)
        buy = taker.side == BUY
        while taker.qty > taker.filled:
            best = opposite.best()
            if best is None or (limit is not None and (best > limit if buy else best < limit)):
                break
            level = opposite.levels[best]
            while level and taker.qty > taker.filled:
                maker = next(iter(level.values()))
                if maker.account is taker.account:
                    return fills
                qty = min(taker.qty - taker.filled, maker.qty - maker.filled)
                maker.filled += qty
                maker.cost += qty * best
                taker.filled += qty
                taker.cost += qty * best
                fills.append((maker, qty, best))
                if maker.filled >= maker.qty:
                    del level[maker.txid]
            if not level:
                del opposite.levels[best]
        return fills

    def self_trade_blocked(self, taker: Order, limit: int | None) -> bool:
        """After match(): is the taker's rest stopped by its own order at the top?"""
        opposite = self.opposite(taker.side)
        best = opposite.best()
        if best is None or taker.filled >= taker.qty:
            return False
        if limit is not None and (best > limit if taker.side == BUY else best < limit):
            return False
        first = next(iter(opposite.levels[best].values()))
        return first.account is taker.account
