"""The matching engine and order lifecycle, protocol-neutral.

The REST, WS and FIX servers parse their wire format into `OrderSpec`s and ids, call the
methods here, and render the results; refusals are `VenueError`s carrying Kraken's error string.
Order events (new, trade, filled, canceled, amended) are queued during a call and delivered by
`flush()`, which the servers call after writing their reply, so a reply always precedes the
events it caused (as a client reading a WS connection or a FIX session expects).

Choices where the facts are silent:
- Amend keeps queue priority when the price is unchanged and the quantity does not grow;
  any other amend moves the order to the back of its (new) price level.
- Post-only orders that would take are accepted and immediately cancelled, reason "Post only
  order"; a post-only amend that would take is refused.
- A market order (or IOC remainder) that finds no more liquidity is cancelled, not rested.
- Self-trade prevention is Kraken's default, cancel-newest: the taker's rest is cancelled.
- "Insufficient funds" is modelled as a per-key cap on one order's notional (quote units).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from loadgen import ratelimit
from loadgen.protocol.ids import IdFactory
from loadgen.venue.accounts import Account
from loadgen.venue.book import BUY, SELL, Book, Order
from loadgen.venue.pairs import Pair, PairIndex

# Error strings (facts 1.4).
E_INVALID = "EGeneral:Invalid arguments"
E_UNKNOWN_ORDER = "EOrder:Unknown order"
E_UNKNOWN_PAIR = "EQuery:Unknown asset pair"
E_TRADE_RATE = "EOrder:Rate limit exceeded"
E_REST_RATE = "EAPI:Rate limit exceeded"
E_ORDERS_LIMIT = "EOrder:Orders limit exceeded"
E_FUNDS = "EOrder:Insufficient funds"
E_ORDER_MIN = "EOrder:Order minimum not met"
E_PRICE = "EOrder:Invalid price"
E_POST_ONLY = "EOrder:Post only order"
E_UNAVAILABLE = "EService:Unavailable"
E_DEADLINE = "EService:Deadline elapsed"

# What kind of refusal each error is, for protocols that classify (FIX 380, client outcomes).
RATE_LIMITED = "rate_limited"
REJECTED = "rejected"
INVALID = "invalid"

MAX_BATCH_ADD = 15  # AddOrderBatch / batch_add: 2..15 orders (facts 1.3, 4.2)
MIN_BATCH_ADD = 2
MAX_BATCH_CANCEL = 50  # CancelOrderBatch: at most 50 ids
MAX_CL_ORD_ID = 36  # a UUID in its long form
DEAD_MAN_MAX_S = 86400  # CancelAllOrdersAfter timeout must be below a day
DEADLINE_MAX_S = 60.0  # a request's deadline may be at most 60 s ahead (facts 1.3, 4.2)

# Event kinds, with the ExecType names the WS executions channel uses.
EV_NEW = "new"
EV_TRADE = "trade"
EV_FILLED = "filled"
EV_CANCELED = "canceled"
EV_AMENDED = "amended"


class VenueError(Exception):
    """A refusal: `message` is the wire error string, `kind` one of the kinds above."""

    def __init__(self, message: str, kind: str = REJECTED) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind


def invalid(field: str) -> VenueError:
    return VenueError(f"{E_INVALID}:{field}", INVALID)


@dataclass(slots=True)
class OrderSpec:
    pair: Pair
    side: str
    order_type: str  # "limit" | "market"
    qty: int  # lots
    price: int = 0  # ticks (0 for market)
    cl_ord_id: str | None = None
    userref: int | None = None
    post_only: bool = False
    tif: str = "gtc"  # "gtc" | "ioc"
    validate: bool = False


class Event:
    """One order event, with the order's state frozen at the moment it happened."""

    __slots__ = (
        "filled",
        "kind",
        "last_price",
        "last_qty",
        "order",
        "orig",
        "reason",
        "ref",
        "status",
        "trade_id",
    )

    def __init__(
        self,
        kind: str,
        order: Order,
        last_qty: int = 0,
        last_price: int = 0,
        trade_id: str = "",
        reason: str = "",
        ref: Any = None,
        orig: str = "",
    ) -> None:
        self.kind = kind
        self.order = order
        self.last_qty = last_qty
        self.last_price = last_price
        self.trade_id = trade_id
        self.reason = reason  # why it was cancelled; for trades, the liquidity side 'm' or 't'
        self.ref = ref  # the ClOrdID of the request that caused it (FIX cancel or replace)
        self.orig = orig  # the order's ClOrdID before a replace renamed it
        self.filled = order.filled
        self.status = order.status


# ---- parsing helpers shared by the three servers -------------------------------------------------


# Parsed quantities and prices by (text, scale): clients send the same few strings again and
# again, and a lookup costs a tenth of parsing and checking one. Bounded: cleared when full.
_SCALED: dict[tuple[Any, int], int] = {}
_SCALED_LIMIT = 65_536
_NUMBER_TYPES = (str, float, int)


def _scaled(value: Any, scale: int) -> int | None:
    """value * scale as an exact positive integer, or None (not a number, not positive, not
    finite, or finer than 1/scale)."""
    if value.__class__ not in _NUMBER_TYPES:  # bool, None, lists, objects: never numbers
        return None
    key = (value, scale)
    units = _SCALED.get(key)
    if units is not None:
        return units
    try:
        number = float(value)
    except ValueError:
        return None
    if not 0 < number < 1e18:  # also refuses nan and inf
        return None
    units = round(number * scale)
    if units <= 0 or abs(number * scale - units) > 1e-9 * units:
        return None
    if len(_SCALED) >= _SCALED_LIMIT:
        _SCALED.clear()
    _SCALED[key] = units
    return units


def parse_qty(pair: Pair, value: Any, field: str = "volume") -> int:
    lots = _scaled(value, pair.lot_scale)
    if lots is None:
        raise invalid(field)
    return lots


def parse_price(pair: Pair, value: Any) -> int:
    ticks = _scaled(value, pair.price_scale)
    if ticks is not None:
        return ticks
    try:
        number = float(value) if value.__class__ in _NUMBER_TYPES else None
    except ValueError:
        number = None
    if number is None:
        raise invalid("price")
    if not 0 < number < 1e18:
        raise VenueError(E_PRICE, INVALID)
    raise VenueError(
        f"{E_PRICE}:{pair.altname} price can only be specified up to "
        f"{pair.price_decimals} decimals",
        INVALID,
    )


def check_deadline(value: Any, now: float, field: str = "deadline", fmt: str = "") -> None:
    """Refuse a request whose deadline has passed when the engine gets to it.

    `value` is RFC 3339 (REST, WS) or, with `fmt`, a strptime format (FIX UTCTimestamp); None
    means no deadline. `now` is wall-clock seconds.
    """
    if value is None:
        return
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        when = datetime.strptime(value, fmt) if fmt else datetime.fromisoformat(value)
    except ValueError:
        raise invalid(field) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    at = when.timestamp()
    if at < now:
        raise VenueError(E_DEADLINE)
    if at > now + DEADLINE_MAX_S:
        raise invalid(field)


def check_cl_ord_id(value: Any) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_CL_ORD_ID:
        raise invalid("cl_ord_id")
    return value


class Exchange:
    """Books for every pair (created on first use), order ids, rate limits, events."""

    def __init__(
        self,
        pairs: PairIndex,
        *,
        mono: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.pairs = pairs
        self.books: dict[str, Book] = {}
        self.mono = mono
        self.wall = wall
        self.pending: list[Event] = []
        self.order_ids = IdFactory("O")
        self.trade_ids = IdFactory("T")
        self.amend_ids = IdFactory("A")
        self.call_later: Callable[[float, Callable[[], None]], Any] | None = None
        self.orders_placed = 0  # counters for the venue's summary at shutdown
        self.trades = 0
        self.cancels = 0
        # What a cancel adds to the trading counter, by the order's age (a knob can drop it)
        self.cancel_cost: Callable[[float], float] = ratelimit.cancel_cost

    # ---- lookups --------------------------------------------------------------------------

    def pair(self, name: Any) -> Pair:
        pair = self.pairs.get(name) if isinstance(name, str) else None
        if pair is None:
            raise VenueError(E_UNKNOWN_PAIR, INVALID)
        return pair

    def book(self, pair: Pair) -> Book:
        book = self.books.get(pair.altname)
        if book is None:
            book = self.books[pair.altname] = Book(pair)
        return book

    def find(self, account: Account, txid: Any = None, cl_ord_id: Any = None) -> Order:
        order = None
        if txid is not None:
            order = account.orders.get(txid) if isinstance(txid, str) else None
        elif cl_ord_id is not None:
            order = account.by_cl_ord_id.get(cl_ord_id) if isinstance(cl_ord_id, str) else None
        if order is None:
            raise VenueError(E_UNKNOWN_ORDER)
        return order

    def open_orders(self, account: Account) -> list[Order]:
        return list(account.orders.values())

    # ---- add -------------------------------------------------------------------------------

    def add_order(
        self, account: Account, spec: OrderSpec, *, origin: str = "rest", session: Any = None
    ) -> Order:
        now = self.mono()
        if not account.trade_counter(spec.pair.altname).charge(ratelimit.ADD_COST, now):
            raise VenueError(E_TRADE_RATE, RATE_LIMITED)
        return self._place(account, spec, now, origin, session)

    def add_batch(
        self,
        account: Account,
        pair: Pair,
        specs: list[OrderSpec],
        *,
        origin: str = "rest",
        session: Any = None,
    ) -> list[Order | VenueError]:
        """All orders on one pair; a per-order refusal fails only that order (facts 1.3)."""
        if not MIN_BATCH_ADD <= len(specs) <= MAX_BATCH_ADD:
            raise invalid("orders")
        now = self.mono()
        if not account.trade_counter(pair.altname).charge(
            ratelimit.batch_add_cost(len(specs)), now
        ):
            raise VenueError(E_TRADE_RATE, RATE_LIMITED)
        results: list[Order | VenueError] = []
        for spec in specs:
            try:
                results.append(self._place(account, spec, now, origin, session))
            except VenueError as exc:
                results.append(exc)
        return results

    def _place(
        self, account: Account, spec: OrderSpec, now: float, origin: str, session: Any
    ) -> Order:
        self._check_new(account, spec)
        if spec.validate:
            return Order("", account, spec, self.wall(), now)
        order = Order(self.order_ids.next(), account, spec, self.wall(), now, origin, session)
        self.orders_placed += 1
        if session is not None or account.listeners:
            self.pending.append(Event(EV_NEW, order))
        book = self.book(spec.pair)
        if spec.post_only and spec.order_type == "limit" and book.crosses(spec.side, spec.price):
            order.status = "canceled"
            self._emit(Event(EV_CANCELED, order, reason="Post only order"))
            return order
        self._execute(book, order)
        return order

    def _check_new(self, account: Account, spec: OrderSpec, replacing: Order | None = None) -> None:
        """Refusals an order meets before it exists; `replacing` is an edit's original, whose
        place among the open orders the new one takes."""
        pair = spec.pair
        if spec.qty < pair.ordermin_lots:
            raise VenueError(E_ORDER_MIN)
        if spec.order_type == "limit":
            notional = spec.qty / pair.lot_scale * spec.price / pair.price_scale
            if notional > account.max_notional:
                raise VenueError(E_FUNDS)
        open_now = account.open_per_pair.get(pair.altname, 0) - (replacing is not None)
        if open_now >= account.tier.max_open_orders:
            raise VenueError(E_ORDERS_LIMIT)
        if spec.cl_ord_id is not None and spec.cl_ord_id in account.by_cl_ord_id:
            raise invalid("cl_ord_id")

    def _execute(self, book: Book, order: Order) -> None:
        """Match a new (or re-priced) order, then rest, or cancel its rest."""
        limit = order.price if order.order_type == "limit" else None
        if self._may_cross(book, order, limit):
            for maker, qty, price in book.match(order, limit):
                trade_id = self.trade_ids.next()  # one trade, seen from both sides
                self.trades += 1
                self._fill(maker, qty, price, "m", trade_id)
                self._fill(order, qty, price, "t", trade_id)
            if order.filled >= order.qty:
                return
            if book.self_trade_blocked(order, limit):
                self._cancel_rest(order, "Self trade prevention")
                return
        if order.order_type != "limit" or order.tif == "ioc":
            self._cancel_rest(order, "No liquidity" if order.order_type != "limit" else "IOC")
        else:
            self._rest(book, order)

    @staticmethod
    def _may_cross(book: Book, order: Order, limit: int | None) -> bool:
        best = book.opposite(order.side).best()
        if best is None:
            return False
        return limit is None or (best <= limit if order.side == BUY else best >= limit)

    def _rest(self, book: Book, order: Order) -> None:
        account = order.account
        order.status = "open" if not order.filled else "partially_filled"
        book.side(order.side).insert(order)
        if order.txid not in account.orders:
            account.orders[order.txid] = order
            if order.cl_ord_id is not None:
                account.by_cl_ord_id[order.cl_ord_id] = order
            name = order.pair.altname
            account.open_per_pair[name] = account.open_per_pair.get(name, 0) + 1

    def _fill(self, order: Order, qty: int, price: int, liquidity: str, trade_id: str) -> None:
        """One side of a fill; `liquidity` is 'm' (maker) or 't' (taker)."""
        done = order.filled >= order.qty
        order.status = "filled" if done else "partially_filled"
        self._emit(Event(EV_TRADE, order, qty, price, trade_id, liquidity))
        if done:
            self._emit(Event(EV_FILLED, order))
            self._forget(order)

    def _forget(self, order: Order) -> None:
        account = order.account
        if account.orders.pop(order.txid, None) is not None:
            if order.cl_ord_id is not None and account.by_cl_ord_id.get(order.cl_ord_id) is order:
                del account.by_cl_ord_id[order.cl_ord_id]
            name = order.pair.altname
            account.open_per_pair[name] -= 1

    def _cancel_rest(self, order: Order, reason: str, ref: Any = None, orig: str = "") -> None:
        order.status = "canceled"
        self._forget(order)
        if order.session is not None or order.account.listeners:
            self.pending.append(Event(EV_CANCELED, order, reason=reason, ref=ref, orig=orig))

    # ---- amend / edit ------------------------------------------------------------------------

    def amend_order(
        self,
        account: Account,
        order: Order,
        *,
        qty: int | None = None,
        price: int | None = None,
        post_only: bool = False,
        new_cl_ord_id: str | None = None,
        ref: Any = None,
    ) -> str:
        """Atomic amend in place (facts S21); returns the amend id. `ref` is the request's
        ClOrdID (FIX 11), which becomes the order's when `new_cl_ord_id` renames it."""
        now = self.mono()
        counter = account.trade_counter(order.pair.altname)
        if not counter.charge(ratelimit.amend_cost(now - order.touched), now):
            raise VenueError(E_TRADE_RATE, RATE_LIMITED)
        if qty is None and price is None and new_cl_ord_id is None:
            raise invalid("order_qty")
        book = self.book(order.pair)
        if (
            price is not None
            and price != order.price
            and post_only
            and book.crosses(order.side, price)
        ):
            raise VenueError(E_POST_ONLY)
        renamed = new_cl_ord_id is not None and new_cl_ord_id != order.cl_ord_id
        if renamed and new_cl_ord_id in account.by_cl_ord_id:
            raise invalid("cl_ord_id")
        # Every check is done: from here on the amend happens.
        orig = order.cl_ord_id or ""
        order.touched = now
        amend_id = self.amend_ids.next()
        if renamed:
            if order.cl_ord_id is not None:
                account.by_cl_ord_id.pop(order.cl_ord_id, None)
            order.cl_ord_id = new_cl_ord_id
            account.by_cl_ord_id[new_cl_ord_id] = order
        new_qty = order.qty if qty is None else qty
        new_price = order.price if price is None else price
        if new_qty <= order.filled:  # "new qty <= filled cancels the rest"
            book.side(order.side).remove(order)
            order.qty = order.filled
            self._cancel_rest(order, "Amended below filled quantity", ref, orig)
            return amend_id
        keeps_priority = new_price == order.price and new_qty <= order.qty
        order.qty = new_qty
        if keeps_priority:
            self._emit(Event(EV_AMENDED, order, ref=ref, orig=orig))
            return amend_id
        book.side(order.side).remove(order)
        order.price = new_price
        self._emit(Event(EV_AMENDED, order, ref=ref, orig=orig))
        self._execute(book, order)
        return amend_id

    def edit_order(
        self,
        account: Account,
        order: Order,
        *,
        qty: int | None = None,
        price: int | None = None,
        userref: int | None = None,
        validate: bool = False,
        origin: str = "rest",
        session: Any = None,
    ) -> Order:
        """Legacy edit: cancel and replace with a new txid; queue position is lost."""
        now = self.mono()
        counter = account.trade_counter(order.pair.altname)
        if not counter.charge(ratelimit.edit_cost(now - order.touched), now):
            raise VenueError(E_TRADE_RATE, RATE_LIMITED)
        remaining = (order.qty if qty is None else qty) - order.filled
        if remaining <= 0:
            raise invalid("volume")
        spec = OrderSpec(
            order.pair,
            order.side,
            order.order_type,
            remaining,
            order.price if price is None else price,
            None,
            order.userref if userref is None else userref,
            order.post_only,
            order.tif,
            validate,
        )
        # Check the replacement before touching the original: a refused edit leaves it as it was.
        self._check_new(account, spec, replacing=order)
        if validate:
            return self._place(account, spec, now, origin, session)
        self.book(order.pair).side(order.side).remove(order)
        self._cancel_rest(order, "Order replaced")
        return self._place(account, spec, now, origin, session)

    # ---- cancel ------------------------------------------------------------------------------

    def cancel_order(self, account: Account, orders: list[Order], ref: Any = None) -> int:
        """Cancel one transaction's worth of orders (several when a userref matched many)."""
        now = self.mono()
        if len(orders) == 1:  # the common case, without a generator
            cost = self.cancel_cost(now - orders[0].touched)
        else:
            cost = sum(self.cancel_cost(now - o.touched) for o in orders)
        pair = orders[0].pair.altname
        if not account.trade_counter(pair).charge(cost, now):
            raise VenueError(E_TRADE_RATE, RATE_LIMITED)
        for order in orders:
            self._cancel_resting(order, "User requested", ref)
        return len(orders)

    def cancel_batch(
        self, account: Account, orders: list[Order], ref: Any = None, reason: str = "User requested"
    ) -> int:
        """Batch cancel: accepted even over the threshold (facts 3), charged per pair."""
        now = self.mono()
        for order in orders:
            counter = account.trade_counter(order.pair.altname)
            counter.force(self.cancel_cost(now - order.touched), now)
            self._cancel_resting(order, reason, ref)
        return len(orders)

    def cancel_all(self, account: Account, ref: Any = None, reason: str = "User requested") -> int:
        return self.cancel_batch(account, list(account.orders.values()), ref, reason)

    def _cancel_resting(self, order: Order, reason: str, ref: Any) -> None:
        if order.txid not in order.account.orders:
            return
        self.book(order.pair).side(order.side).remove(order)
        self.cancels += 1
        self._cancel_rest(order, reason, ref)

    def by_userref(self, account: Account, userref: int) -> list[Order]:
        return [o for o in account.orders.values() if o.userref == userref]

    # ---- dead man's switch ---------------------------------------------------------------------

    def cancel_all_after(self, account: Account, timeout: int) -> tuple[float, float]:
        """Arm (or with 0, disarm) the key's dead man's switch; returns (now, trigger) wall times."""
        if not 0 <= timeout < DEAD_MAN_MAX_S:
            raise invalid("timeout")
        if account.dead_man is not None:
            account.dead_man.cancel()
            account.dead_man = None
        now = self.wall()
        if timeout == 0:
            account.dead_man_at = 0.0
            return now, now
        account.dead_man_at = now + timeout
        if self.call_later is not None:
            account.dead_man = self.call_later(timeout, lambda: self._dead_man_fires(account))
        return now, account.dead_man_at

    def _dead_man_fires(self, account: Account) -> None:
        account.dead_man = None
        account.dead_man_at = 0.0
        self.cancel_all(account, reason="Dead man's switch")
        self.flush()

    # ---- events --------------------------------------------------------------------------------

    def _emit(self, event: Event) -> None:
        order = event.order
        if order.session is not None or order.account.listeners:
            self.pending.append(event)

    def flush(self) -> None:
        """Deliver queued events, each target getting its events in one call: the FIX session
        that owns the order, and every WS connection of the order's key subscribed to
        executions."""
        if not self.pending:
            return
        events, self.pending = self.pending, []
        targets: dict[Any, list[Event]] = {}
        for event in events:
            order = event.order
            if order.session is not None:
                targets.setdefault(order.session, []).append(event)
            for listener in order.account.listeners:
                targets.setdefault(listener, []).append(event)
        for target, batch in targets.items():
            target.on_events(batch)


__all__ = ["BUY", "SELL", "Event", "Exchange", "OrderSpec", "VenueError"]
