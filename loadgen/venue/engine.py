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
- Self-trade prevention follows the order's STP mode (Kraken's default cancel-newest: the
  taker's rest is cancelled; cancel-oldest: the resting order is, and matching goes on;
  cancel-both: both are).
- Balances move with every fill and its fee; fees are charged in the quote asset (Kraken's
  `fciq`), at the first tier of the pair's schedule (maker or taker by the fill's side).
- "Insufficient funds": a buy whose cost and taker fee exceed the key's quote balance, a sell of
  more than its base balance, or one order's notional above a per-key cap (quote units). What
  the key's other open orders hold is not set aside (BalanceEx reports it as `hold_trade`).
- Stop-loss and take-profit orders (and their -limit forms) trigger on the pair's last trade
  price (Kraken's `trigger=last`): a stop buys when the price rises to it and sells when it
  falls to it, a take-profit the other way round; one already due when placed triggers at once.
  Until then the order is open (it counts toward the open-order limit) but not in the book.
- An iceberg shows `display` lots at a time; when that slice is taken, the next joins the back
  of its level (an `iceberg_refill` event).
- The fixed part of a transaction's cost is charged on receipt, even when it then fails
  validation (facts 3): `charge_refused` does it for refusals raised before the engine.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from loadgen import ratelimit
from loadgen.protocol import errors, orderkinds
from loadgen.protocol.ids import IdFactory
from loadgen.venue.accounts import Account
from loadgen.venue.book import BUY, SELL, Book, Order
from loadgen.venue.pairs import MAKER_FEE_BP, TAKER_FEE_BP, Pair, PairIndex
from loadgen.venue.tape import Tape
from loadgen.venue.triggers import Triggers

# Error strings: protocol/errors.py, under the names the venue's modules use.
E_INVALID: Final = errors.INVALID_ARGUMENTS
E_UNKNOWN_ORDER: Final = errors.UNKNOWN_ORDER
E_UNKNOWN_PAIR: Final = errors.UNKNOWN_PAIR
E_TRADE_RATE: Final = errors.TRADE_RATE
E_REST_RATE: Final = errors.REST_RATE
E_ORDERS_LIMIT: Final = errors.ORDERS_LIMIT
E_FUNDS: Final = errors.FUNDS
E_ORDER_MIN: Final = errors.ORDER_MIN
E_PRICE: Final = errors.PRICE
E_POST_ONLY: Final = errors.POST_ONLY
E_UNAVAILABLE: Final = errors.UNAVAILABLE
E_DEADLINE: Final = errors.DEADLINE
E_COST_MIN: Final = errors.COST_MIN

# What kind of refusal each error is, for protocols that classify (FIX 380, client outcomes).
RATE_LIMITED: Final = "rate_limited"
REJECTED: Final = "rejected"
INVALID: Final = "invalid"

MAX_BATCH_ADD: Final = 15  # AddOrderBatch / batch_add: 2..15 orders (facts 1.3, 4.2)
MIN_BATCH_ADD: Final = 2
MAX_BATCH_CANCEL: Final = 50  # CancelOrderBatch: at most 50 ids
MIN_BATCH_CANCEL: Final = 2  # WS batch_cancel: 2 to 50 (facts 4.2)
MAX_CL_ORD_ID: Final = 36  # a UUID in its long form
DEAD_MAN_MAX_S: Final = 86400  # CancelAllOrdersAfter timeout must be below a day
DEADLINE_MAX_S: Final = 60.0  # a request's deadline may be at most 60 s ahead (facts 1.3, 4.2)

# Event kinds, with the ExecType names the WS executions channel uses.
EV_NEW: Final = "new"
EV_TRADE: Final = "trade"
EV_FILLED: Final = "filled"
EV_CANCELED: Final = "canceled"
EV_AMENDED: Final = "amended"
EV_REFILL: Final = "iceberg_refill"
EV_EXPIRED: Final = "expired"
EV_TRIGGERED: Final = "triggered"  # a stop/take-profit order reached its trigger (WS: `status`)

STP_MODES: Final = ("cancel-newest", "cancel-oldest", "cancel-both")
TRIGGER_TYPES: Final = orderkinds.TRIGGER_TYPES  # stop-loss, take-profit and their -limit variants
# Trigger types that fire when the last price rises to the trigger, by side (the rest fire when
# it falls to it): a stop-loss buy and a take-profit sell.
_FIRES_UP: Final = {("stop-loss", BUY), ("stop-loss-limit", BUY), ("take-profit", SELL),
             ("take-profit-limit", SELL)}  # fmt: skip
CLOSED_KEPT: Final = 1000  # closed orders kept per key for ClosedOrders / QueryOrders
AMENDS_KEPT: Final = 100  # OrderAmends entries kept per order: the original and the latest


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
    order_type: str  # Kraken's names: "limit", "market", "iceberg", "stop-loss", ...
    qty: int  # lots
    price: int = 0  # ticks: the limit price (0 matches at market)
    cl_ord_id: str | None = None
    userref: int | None = None
    post_only: bool = False
    tif: str = "gtc"  # "gtc" | "ioc" | "gtd" | "fok"
    validate: bool = False
    trigger: int = 0  # ticks: a stop or take-profit trigger price
    display: int = 0  # lots: an iceberg's visible quantity
    expire: float = 0.0  # wall clock: GTD's end
    stp: str = "cancel-newest"
    quote_cost: int = 0  # viqc: a market buy of this much quote (lots * ticks); sets qty


class Event:
    """One order event, with the order's state frozen at the moment it happened."""

    __slots__ = (
        "cost",
        "fee",
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
        self.cost = order.cost  # cumulative, lots * ticks
        self.fee = 0  # a trade's fee, in the quote asset at accounts.BALANCE_SCALE


# ---- parsing helpers shared by the three servers -------------------------------------------------


# Parsed quantities and prices by (text, scale): clients send the same few strings again and
# again, and a lookup costs a tenth of parsing and checking one. Bounded: cleared when full.
_SCALED: Final[dict[tuple[Any, int], int]] = {}
_SCALED_LIMIT: Final = 65_536
_NUMBER_TYPES: Final = (str, float, int)


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


def parse_price(pair: Pair, value: Any, field: str = "price") -> int:
    ticks = _scaled(value, pair.price_scale)
    if ticks is not None:
        return ticks
    try:
        number = float(value) if value.__class__ in _NUMBER_TYPES else None
    except ValueError:
        number = None
    if number is None:
        raise invalid(field)
    if not 0 < number < 1e18:
        raise VenueError(E_PRICE, INVALID)
    raise VenueError(
        f"{E_PRICE}:{pair.altname} price can only be specified up to "
        f"{pair.price_decimals} decimals",
        INVALID,
    )


def check_deadline(
    value: Any, now: float, field: str = "deadline", fmt: str = "", least: float = 0.0
) -> None:
    """Refuse a request whose deadline has passed when the engine gets to it.

    `value` is RFC 3339 (REST, WS) or, with `fmt`, a strptime format (FIX UTCTimestamp); None
    means no deadline. `now` is wall-clock seconds. A deadline that has not passed but is less
    than `least` seconds ahead is invalid (WS v2: 500 ms to 60 s ahead, facts 4.2).
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
    if at < now + least:
        raise invalid(f"{field} (at least {least * 1000:.0f} ms ahead)")


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
        # Books whose visible levels may have changed since the last flush, and who hears of
        # them then (the venue's market-data feed: venue/marketdata.py)
        self.changed: set[Book] = set()
        self.on_books: Callable[[set[Book]], None] | None = None
        self.order_ids = IdFactory("O")
        self.trade_ids = IdFactory("T")
        # Kraken's amend ids look like its trade ids (`TEZA4R-DSDGT-IJBOJK`): a counter of
        # their own, far from the trades' so the two never meet
        self.amend_ids = IdFactory("T", start=1 << 48)
        self.tapes: dict[str, Tape] = {}
        self.triggers: dict[str, Triggers] = {}
        self._firing = False
        self._rate_paths: dict[tuple[str, str], Any] = {}
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

    def tape(self, pair: Pair) -> Tape:
        tape = self.tapes.get(pair.altname)
        if tape is None:
            tape = self.tapes[pair.altname] = Tape(pair)
        return tape

    def rate(self, asset_id: str, target_id: str) -> float:
        """Units of `target_id` one unit of `asset_id` is worth at the markets' last prices:
        through a market between them, either way round, or two sharing a base; 0 if none.
        The route is found once per pair of assets."""
        if asset_id == target_id:
            return 1.0
        key = (asset_id, target_id)
        if key not in self._rate_paths:
            self._rate_paths[key] = self._rate_path(asset_id, target_id)
        path = self._rate_paths[key]
        if path is None:
            return 0.0
        kind, first, second = path
        last = self.tape(first).last / first.price_scale
        if kind == "direct":
            return last
        if kind == "inverse":
            return 1 / last if last else 0.0
        other = self.tape(second).last / second.price_scale
        return other / last if last else 0.0

    def _rate_path(self, asset_id: str, target_id: str) -> tuple[str, Pair, Pair | None] | None:
        by_base_quote: dict[tuple[str, str], Pair] = {}
        for pair in self.pairs.pairs:
            if (pair.base_id, pair.quote_id) == (asset_id, target_id):
                return "direct", pair, None
            if (pair.base_id, pair.quote_id) == (target_id, asset_id):
                return "inverse", pair, None
            by_base_quote.setdefault((pair.base_id, pair.quote_id), pair)
        for (base, quote), pair in by_base_quote.items():
            if quote == asset_id and (base, target_id) in by_base_quote:
                return "via", pair, by_base_quote[(base, target_id)]
        return None

    def charge_refused(self, account: Account, pair: Pair, cost: float, error: VenueError) -> None:
        """A request refused before it reached the engine, once its pair is known: the fixed
        cost is charged on receipt all the same (facts 3); if that is over the threshold, the
        rate limit is the answer. Always raises."""
        if not account.trade_counter(pair.altname).charge(cost, self.mono()):
            raise VenueError(E_TRADE_RATE, RATE_LIMITED) from error
        raise error

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
        book = self.book(spec.pair)
        if spec.quote_cost:  # viqc: what the quote amount buys from the book now
            spec.qty = book.lots_for_cost(spec.side, spec.quote_cost)
        self._check_new(account, spec)
        if spec.validate:
            return Order("", account, spec, self.wall(), now)
        order = Order(self.order_ids.next(), account, spec, self.wall(), now, origin, session)
        self.orders_placed += 1
        if session is not None or account.listeners:
            self.pending.append(Event(EV_NEW, order))
        if order.armed:
            self._arm(order)
        elif spec.post_only and spec.price and book.crosses(spec.side, spec.price):
            self._cancel_rest(order, "Post only order")
        else:
            self._execute(book, order)
        return order

    def _check_new(self, account: Account, spec: OrderSpec, replacing: Order | None = None) -> None:
        """Refusals an order meets before it exists; `replacing` is an edit's original, whose
        place among the open orders the new one takes."""
        pair = spec.pair
        if spec.qty < pair.ordermin_lots:
            raise VenueError(E_ORDER_MIN)
        price = spec.price or spec.trigger
        if price:
            units = spec.qty * price
            if units < pair.costmin_units:
                raise VenueError(E_COST_MIN)
            if units / pair.lot_scale / pair.price_scale > account.max_notional:
                raise VenueError(E_FUNDS)
            if spec.side == BUY:
                need = units * pair.cost_scale * (10000 + TAKER_FEE_BP) // 10000
                if need > account.balance(pair.quote_id):
                    raise VenueError(E_FUNDS)
        if spec.side == SELL and spec.qty * pair.base_scale > account.balance(pair.base_id):
            raise VenueError(E_FUNDS)
        if spec.display and not spec.qty <= 15 * spec.display:  # at least 1/15 shown (facts 9)
            raise invalid("displayvol")
        open_now = account.open_per_pair.get(pair.altname, 0) - (replacing is not None)
        if open_now >= account.tier.max_open_orders:
            raise VenueError(E_ORDERS_LIMIT)
        if spec.cl_ord_id is not None and spec.cl_ord_id in account.by_cl_ord_id:
            raise invalid("cl_ord_id")

    def _execute(self, book: Book, order: Order) -> None:
        """Match a new (re-priced, or triggered) order, then rest, or cancel its rest."""
        limit = order.price or None
        if order.tif == "fok" and book.fillable(order, limit) < order.qty - order.filled:
            self._cancel_rest(order, "Fill or kill")
            return
        while self._may_cross(book, order, limit):
            fills = book.match(order, limit)
            if fills:
                self.changed.add(book)
                self._trades(book, order, fills)
            if order.filled >= order.qty:
                return
            if not book.self_trade_blocked(order, limit):
                break
            if order.stp == "cancel-newest":
                self._cancel_rest(order, "Self trade prevention")
                return
            maker = book.first_at_top(order.side)
            assert maker is not None  # self_trade_blocked saw it
            self._cancel_resting(maker, "Self trade prevention", None)
            if order.stp == "cancel-both":
                self._cancel_rest(order, "Self trade prevention")
                return
        if not order.price or order.tif == "ioc" or order.tif == "fok":
            self._cancel_rest(order, "No liquidity" if not order.price else "IOC")
        else:
            self._rest(book, order)

    def _trades(self, book: Book, order: Order, fills: list[tuple[Order, int, int]]) -> None:
        tape = self.tape(order.pair)
        when = self.wall()
        kind = "l" if order.price else "m"
        if len(fills) == 1:  # the common case: totals before the fill are one subtraction
            maker, qty, price = fills[0]
            trade_id = self.trade_ids.next()
            self.trades += 1
            tape.record(price, qty, order.side, kind, when)
            self._fill(maker, qty, price, "m", trade_id, maker.filled, maker.cost)
            self._fill(order, qty, price, "t", trade_id, order.filled, order.cost)
        else:
            self._many_trades(order, fills, tape, kind, when)
        if book.refilled:
            for iceberg in book.refilled:
                if iceberg.txid in iceberg.account.orders:
                    self._emit(Event(EV_REFILL, iceberg))
            book.refilled.clear()
        if self.triggers.get(order.pair.altname):
            self._fire(order.pair)

    def _many_trades(
        self,
        order: Order,
        fills: list[tuple[Order, int, int]],
        tape: Tape,
        kind: str,
        when: float,
    ) -> None:
        """Several fills from one match: each event carries the order's totals as of that
        fill (an iceberg can meet the same taker twice), so only the last says `filled`."""
        totals: dict[int, list[int]] = {}
        for maker, qty, price in fills:
            for side in (maker, order):
                total = totals.get(id(side))
                if total is None:
                    total = totals[id(side)] = [side.filled, side.cost]
                total[0] -= qty
                total[1] -= qty * price
        for maker, qty, price in fills:
            trade_id = self.trade_ids.next()  # one trade, seen from both sides
            self.trades += 1
            tape.record(price, qty, order.side, kind, when)
            for side, liquidity in ((maker, "m"), (order, "t")):
                total = totals[id(side)]
                total[0] += qty
                total[1] += qty * price
                self._fill(side, qty, price, liquidity, trade_id, total[0], total[1])

    # ---- stop-loss and take-profit triggers ---------------------------------------------------

    def _arm(self, order: Order) -> None:
        self._admit(order)
        order.status = "open"
        triggers = self.triggers.get(order.pair.altname)
        if triggers is None:
            triggers = self.triggers[order.pair.altname] = Triggers()
        triggers.push(order, (order.order_type, order.side) in _FIRES_UP)
        self._fire(order.pair)

    def _fire(self, pair: Pair) -> None:
        """Trigger every armed order of `pair` the last price has reached, in turn: each may
        trade and move the price to more (bounded: each order triggers once)."""
        triggers = self.triggers.get(pair.altname)
        if self._firing or not triggers:
            return
        self._firing = True
        try:
            tape, book = self.tape(pair), self.book(pair)
            while (order := triggers.due(tape.last)) is not None:
                order.armed = False
                triggers.disarmed()
                self._emit(Event(EV_TRIGGERED, order))
                self._execute(book, order)
        finally:
            self._firing = False

    @staticmethod
    def _may_cross(book: Book, order: Order, limit: int | None) -> bool:
        best = book.opposite(order.side).best()
        if best is None:
            return False
        return limit is None or (best <= limit if order.side == BUY else best >= limit)

    def _rest(self, book: Book, order: Order) -> None:
        order.status = "open" if not order.filled else "partially_filled"
        if order.display:
            order.shown = min(order.display, order.qty - order.filled)
        book.side(order.side).insert(order)
        self.changed.add(book)
        if order.txid not in order.account.orders:
            self._admit(order)

    def _admit(self, order: Order) -> None:
        """The order joins its key's open orders (resting, or armed)."""
        account = order.account
        account.orders[order.txid] = order
        if order.cl_ord_id is not None:
            account.by_cl_ord_id[order.cl_ord_id] = order
        name = order.pair.altname
        account.open_per_pair[name] = account.open_per_pair.get(name, 0) + 1
        if order.expire and self.call_later is not None:
            delay = max(0.0, order.expire - self.wall())
            self.call_later(delay, lambda: self._expire(order))

    def _expire(self, order: Order) -> None:
        """GTD: the order's time is up."""
        if order.txid not in order.account.orders:
            return
        self._unbook(order)
        order.status = "expired"
        order.reason = "Order expired"
        self._forget(order)
        self._emit(Event(EV_EXPIRED, order, reason="Order expired"))
        self.flush()

    def _unbook(self, order: Order) -> None:
        """Take a live order out of the book (or, armed, out of its triggers)."""
        if order.armed:
            order.armed = False
            self.triggers[order.pair.altname].disarmed()
        else:
            book = self.book(order.pair)
            book.side(order.side).remove(order)
            self.changed.add(book)

    def _fill(
        self,
        order: Order,
        qty: int,
        price: int,
        liquidity: str,
        trade_id: str,
        filled: int,
        cost: int,
    ) -> None:
        """One side of a fill; `liquidity` is 'm' (maker) or 't' (taker); `filled` and `cost`
        are the order's totals with this fill (match() has applied all of a match's fills)."""
        done = filled >= order.qty
        order.status = "filled" if order.filled >= order.qty else "partially_filled"
        event = Event(EV_TRADE, order, qty, price, trade_id, liquidity)
        event.filled, event.cost = filled, cost
        event.status = "filled" if done else "partially_filled"
        event.fee = self._settle(order, qty, price, liquidity)
        order.account.fills.append(event)  # bounded: the last 50 (snap_trades)
        self._emit(event)
        if done:
            self._emit(Event(EV_FILLED, order))
            self._forget(order)

    @staticmethod
    def _settle(order: Order, qty: int, price: int, liquidity: str) -> int:
        """Move the key's balances for one side of a fill; returns its fee (quote asset)."""
        pair = order.pair
        balances = order.account.balances
        start = order.account.start_balance
        cost = qty * price * pair.cost_scale
        fee = cost * (MAKER_FEE_BP if liquidity == "m" else TAKER_FEE_BP) // 10000
        base = qty * pair.base_scale
        if order.side == BUY:
            balances[pair.base_id] = balances.get(pair.base_id, start) + base
            balances[pair.quote_id] = balances.get(pair.quote_id, start) - cost - fee
        else:
            balances[pair.base_id] = balances.get(pair.base_id, start) - base
            balances[pair.quote_id] = balances.get(pair.quote_id, start) + cost - fee
        order.fee += fee
        return fee

    def _forget(self, order: Order) -> None:
        """The order is closed (filled, cancelled, expired): out of the open orders, into the
        key's bounded history of closed ones."""
        account = order.account
        if account.orders.pop(order.txid, None) is not None:
            if order.cl_ord_id is not None and account.by_cl_ord_id.get(order.cl_ord_id) is order:
                del account.by_cl_ord_id[order.cl_ord_id]
            name = order.pair.altname
            account.open_per_pair[name] -= 1
        if not order.closetm:
            order.closetm = self.wall()
            closed = account.closed
            closed[order.txid] = order
            if len(closed) > CLOSED_KEPT:
                closed.popitem(last=False)

    def _cancel_rest(self, order: Order, reason: str, ref: Any = None, orig: str = "") -> None:
        order.status = "canceled"
        order.reason = reason
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
        trigger: int | None = None,
        display: int | None = None,
    ) -> str:
        """Atomic amend in place (facts S21); returns the amend id. `ref` is the request's
        ClOrdID (FIX 11), which becomes the order's when `new_cl_ord_id` renames it. `trigger`
        re-prices an armed stop or take-profit order, `display` an iceberg's slice."""
        now = self.mono()
        counter = account.trade_counter(order.pair.altname)
        if not counter.charge(ratelimit.amend_cost(now - order.touched), now):
            raise VenueError(E_TRADE_RATE, RATE_LIMITED)
        self._check_amend(account, order, qty, price, post_only, new_cl_ord_id, trigger, display)
        # Every check is done: from here on the amend happens.
        orig = order.cl_ord_id or ""
        order.touched = now
        amend_id = self.amend_ids.next()
        self._remember_amend(order, amend_id)
        if new_cl_ord_id is not None and new_cl_ord_id != order.cl_ord_id:
            if order.cl_ord_id is not None:
                account.by_cl_ord_id.pop(order.cl_ord_id, None)
            order.cl_ord_id = new_cl_ord_id
            account.by_cl_ord_id[new_cl_ord_id] = order
        if display is not None:
            order.display = display
        new_qty = order.qty if qty is None else qty
        new_price = order.price if price is None else price
        if order.armed:
            self._amend_armed(order, new_qty, new_price, trigger, ref, orig)
        elif new_qty <= order.filled:  # "new qty <= filled cancels the rest"
            self._unbook(order)
            order.qty = order.filled
            self._cancel_rest(order, "Amended below filled quantity", ref, orig)
        elif new_price == order.price and new_qty <= order.qty:  # keeps its priority
            order.qty = new_qty
            self.changed.add(self.book(order.pair))
            if order.display:  # a smaller order or slice shrinks what shows
                order.shown = min(order.shown, order.display, new_qty - order.filled)
            self._emit(Event(EV_AMENDED, order, ref=ref, orig=orig))
        else:
            book = self.book(order.pair)
            book.side(order.side).remove(order)
            self.changed.add(book)
            order.qty, order.price = new_qty, new_price
            self._emit(Event(EV_AMENDED, order, ref=ref, orig=orig))
            self._execute(book, order)
        order.amends[-1] = self._amend_entry(order, amend_id, "user")  # type: ignore[index]
        return amend_id

    def _check_amend(
        self,
        account: Account,
        order: Order,
        qty: int | None,
        price: int | None,
        post_only: bool,
        new_cl_ord_id: str | None,
        trigger: int | None,
        display: int | None,
    ) -> None:
        if all(v is None for v in (qty, price, new_cl_ord_id, trigger, display)):
            raise invalid("order_qty")
        if trigger is not None and not order.armed:
            raise invalid("trigger_price (the order has no trigger waiting)")
        if display is not None and not order.display:
            raise invalid("display_qty (not an iceberg order)")
        if price is not None and not order.price:
            raise invalid("limit_price (the order has no limit price)")
        if (
            price is not None
            and price != order.price
            and post_only
            and not order.armed
            and self.book(order.pair).crosses(order.side, price)
        ):
            raise VenueError(E_POST_ONLY)
        renamed = new_cl_ord_id is not None and new_cl_ord_id != order.cl_ord_id
        if renamed and new_cl_ord_id in account.by_cl_ord_id:
            raise invalid("cl_ord_id")

    def _amend_armed(
        self, order: Order, qty: int, price: int, trigger: int | None, ref: Any, orig: str
    ) -> None:
        order.qty, order.price = qty, price
        if trigger is not None and trigger != order.trigger:
            triggers = self.triggers[order.pair.altname]
            triggers.disarmed()
            order.trigger = trigger
            triggers.push(order, (order.order_type, order.side) in _FIRES_UP)
        self._emit(Event(EV_AMENDED, order, ref=ref, orig=orig))
        self._fire(order.pair)

    def _remember_amend(self, order: Order, amend_id: str) -> None:
        """OrderAmends' history: the original first, then each amend (bounded)."""
        if order.amends is None:
            order.amends = [self._amend_entry(order, "", "original", order.opened)]
        elif len(order.amends) >= AMENDS_KEPT:
            del order.amends[1]
        order.amends.append(None)  # filled in once the amend is done

    def _amend_entry(
        self, order: Order, amend_id: str, kind: str, when: float | None = None
    ) -> tuple[Any, ...]:
        return (
            amend_id, kind, order.qty, order.qty - order.filled, order.price, order.trigger,
            order.display, order.post_only, self.wall() if when is None else when,
        )  # fmt: skip

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
        if order.order_type in TRIGGER_TYPES:  # EditOrder takes no triggered orders (facts 1.3)
            raise invalid(f"txid: a {order.order_type} order is amended (AmendOrder), not edited")
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
            display=min(order.display, remaining),
            expire=order.expire,
            stp=order.stp,
        )
        # Check the replacement before touching the original: a refused edit leaves it as it was.
        self._check_new(account, spec, replacing=order)
        if validate:
            return self._place(account, spec, now, origin, session)
        self._unbook(order)
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
        self._unbook(order)
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
        executions; then the books that changed, to the market-data feed."""
        if self.changed and self.on_books is not None:
            changed, self.changed = self.changed, set()
            self.on_books(changed)
        elif self.changed:
            self.changed.clear()
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
