"""A limit order book for one pair: price-time priority, integer ticks and lots.

Each side keeps its price levels in a dict (price -> insertion-ordered dict of orders, so FIFO
within a level and O(1) removal by id) and the level prices in a heap for the best price.
Emptied levels leave stale heap entries that are skipped lazily; the heap is rebuilt when stale
entries outnumber live ones, so a long random walk of prices cannot grow it without bound.
Cost per operation depends on the levels touched, never on the number of pairs or orders.
"""

from __future__ import annotations

from heapq import heapify, heappop, heappush
from typing import Any, Final

BUY: Final = "buy"
SELL: Final = "sell"


class Order:
    __slots__ = (
        "account",
        "amends",
        "armed",
        "cl_ord_id",
        "closetm",
        "cost",
        "display",
        "expire",
        "fee",
        "filled",
        "opened",
        "order_type",
        "origin",
        "pair",
        "post_only",
        "price",
        "qty",
        "reason",
        "session",
        "shown",
        "side",
        "status",
        "stp",
        "tif",
        "touched",
        "trigger",
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
        self.order_type = spec.order_type  # Kraken's name: limit, market, stop-loss, ...
        self.price = spec.price  # ticks: the limit price; 0 matches at market
        self.qty = spec.qty  # lots, the order's total quantity (amend changes it)
        self.filled = 0  # lots
        self.cost = 0  # sum of fill price ticks * lots (scaled in reports)
        self.fee = 0  # in the quote asset, at accounts.BALANCE_SCALE
        self.opened = opened  # wall clock
        self.touched = touched  # monotonic: placed or last amended (rate-limit age)
        self.cl_ord_id: str | None = spec.cl_ord_id
        self.userref: int | None = spec.userref
        self.post_only: bool = spec.post_only
        self.tif: str = spec.tif
        self.trigger: int = spec.trigger  # ticks; a stop or take-profit order's trigger price
        self.armed = bool(spec.trigger)  # waiting for its trigger: open, not in the book
        self.display: int = spec.display  # lots; an iceberg's visible quantity (0: all)
        self.shown = 0  # lots of the current visible slice, while an iceberg rests
        self.expire: float = spec.expire  # wall clock; GTD's end (0: none)
        self.stp: str = spec.stp
        self.origin = origin
        self.session: Any = session  # the FIX session that placed it, for its ExecutionReports
        self.status = "new"
        self.closetm = 0.0  # wall clock, once closed
        self.reason: str | None = None  # why it closed, when cancelled or expired
        self.amends: list[Any] | None = None  # OrderAmends' history, from the first amend

    @property
    def remaining(self) -> int:
        return self.qty - self.filled

    def visible(self) -> int:
        """What the book shows of it: an iceberg's slice, else all that is left."""
        return self.shown if self.display else self.qty - self.filled


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

    __slots__ = ("asks", "bids", "pair", "refilled")

    def __init__(self, pair: Any) -> None:
        self.pair = pair
        self.bids = BookSide(-1)
        self.asks = BookSide(1)
        self.refilled: list[Order] = []  # icebergs match() gave a new slice; the caller clears

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
                avail = maker.shown if maker.display else maker.qty - maker.filled
                qty = min(taker.qty - taker.filled, avail)
                maker.filled += qty
                maker.cost += qty * best
                taker.filled += qty
                taker.cost += qty * best
                fills.append((maker, qty, best))
                if maker.filled >= maker.qty:
                    del level[maker.txid]
                elif maker.display:
                    maker.shown -= qty
                    if not maker.shown:  # the slice is gone: the next one joins the back
                        maker.shown = min(maker.display, maker.qty - maker.filled)
                        del level[maker.txid]
                        level[maker.txid] = maker
                        self.refilled.append(maker)
            if not level:
                del opposite.levels[best]
        return fills

    def fillable(self, taker: Order, limit: int | None) -> int:
        """Lots `taker` could take now up to `limit`, before its own orders stop it (FOK)."""
        need = taker.qty - taker.filled
        got = 0
        buy = taker.side == BUY
        side = self.opposite(taker.side)
        for price in sorted(side.levels, reverse=not buy):
            if limit is not None and (price > limit if buy else price < limit):
                break
            for maker in side.levels[price].values():
                if maker.account is taker.account:
                    return got
                got += maker.qty - maker.filled
                if got >= need:
                    return got
        return got

    def lots_for_cost(self, side: str, cost: int) -> int:
        """Lots a buy (`side`) of `cost` (lots * ticks) takes from the book now (viqc)."""
        lots = 0
        opposite = self.opposite(side)
        for price in sorted(opposite.levels, reverse=side != BUY):
            for maker in opposite.levels[price].values():
                take = min(maker.qty - maker.filled, cost // price)
                lots += take
                cost -= take * price
                if cost < price:
                    return lots
        return lots

    def first_at_top(self, side: str) -> Order | None:
        """The first order at the best price of `side`'s opposite (the maker in the way)."""
        opposite = self.opposite(side)
        best = opposite.best()
        return None if best is None else next(iter(opposite.levels[best].values()))

    def levels(self, side: str, count: int) -> list[tuple[int, int, float]]:
        """The best `count` levels of a side: (price, visible lots, newest order time)."""
        book_side = self.side(side)
        prices = sorted(book_side.levels, reverse=side == BUY)[:count]
        out = []
        for price in prices:
            orders = book_side.levels[price].values()
            out.append((price, sum(o.visible() for o in orders), max(o.opened for o in orders)))
        return out

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
