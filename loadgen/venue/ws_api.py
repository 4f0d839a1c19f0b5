"""Kraken WebSocket v2 trading methods over the engine (facts 4.2) and execution messages (4.3).

Each handler takes (account, params) and returns the `result`, or a list of results when the
method answers with one reply per order (cancel_order). Refusals raise VenueError.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from loadgen import ratelimit
from loadgen.protocol import assets, numbers
from loadgen.protocol.clock import rfc3339, rfc3339_seconds
from loadgen.protocol.messages import AMEND_FIELDS, EXEC_ORDER_ID, EXEC_TYPE, WS
from loadgen.venue.accounts import Account
from loadgen.venue.book import BUY, SELL, Order
from loadgen.venue.engine import (
    E_UNKNOWN_ORDER,
    EV_AMENDED,
    EV_REFILL,
    EV_TRADE,
    EV_TRIGGERED,
    MAX_BATCH_CANCEL,
    MIN_BATCH_CANCEL,
    TRIGGER_TYPES,
    Event,
    OrderSpec,
    VenueError,
    check_cl_ord_id,
    invalid,
    parse_price,
    parse_qty,
)
from loadgen.venue.pairs import BALANCE_DECIMALS, Pair
from loadgen.venue.rest_api import (
    LIMIT_TYPES,
    MAX_EXPIRE_S,
    NO_MARGIN,
    ORDER_TYPES,
    REFUSED_ORDER_TYPES,
    to_int,
)

if TYPE_CHECKING:
    from loadgen.venue.context import ServerContext


W: Final = WS.order  # how add_order names an order's parts (protocol/messages.py)
_STP: Final = {"cancel_newest": "cancel-newest", "cancel_oldest": "cancel-oldest",
        "cancel_both": "cancel-both"}  # fmt: skip
# add_order fields Kraken documents that the venue does not serve, refused by name unless
# they ask for the default (never silently mis-served).
_REFUSED: Final = {
    "margin": (NO_MARGIN, (False,)),
    "reduce_only": (NO_MARGIN, (False,)),
    "effective_time": ("a scheduled start is not served by the embedded venue", ()),
    "conditional": ("conditional close orders are not served by the embedded venue", ()),
    "fee_preference": ("fees are charged in the quote currency here", ("quote",)),
    W.limit_price_type: ("only static limit prices are served", ("static",)),
    "sender_sub_id": ("sub-accounts are not served by the embedded venue", ()),
}


_REFUSED_NAMES: Final = frozenset(_REFUSED)


def _refuse_unserved(params: dict[str, Any]) -> None:
    if _REFUSED_NAMES.isdisjoint(params):  # the common case: one set test, not seven lookups
        return
    for name, (why, defaults) in _REFUSED.items():
        if name in params and params[name] not in defaults:
            raise invalid(f"{name} ({why})")


def _number(pair: Any, params: dict[str, Any], name: str) -> int:
    """A quantity field: a JSON number (v2 sends numbers, facts 10.1), in lots. Digits past
    the pair's lot decimals are cut off: Kraken's own edit_order example sends an 8-decimal
    pair `order_qty: 0.2123456789` (a choice: its docs say nothing of finer quantities)."""
    value = params.get(name)
    if value is None:
        raise invalid(name)
    if value.__class__ not in (int, float):
        raise invalid(f"{name} must be a number")
    if value.__class__ is float and value > 0:
        value = math.floor(value * pair.lot_scale + 1e-6) / pair.lot_scale
    return parse_qty(pair, value, name)


def _price(pair: Any, params: dict[str, Any], name: str, label: str = "") -> int:
    value = params.get(name)
    if value is None:
        raise invalid(label or name)
    if value.__class__ not in (int, float):
        raise invalid(f"{label or name} must be a number")
    return parse_price(pair, value, label or name)


def _rfc3339(value: Any, field: str) -> float:
    from datetime import UTC, datetime

    try:
        when = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        when = None
    if when is None:
        raise invalid(field)
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def _flag(params: dict[str, Any], name: str) -> bool:
    value = params.get(name, False)
    if not isinstance(value, bool):
        raise invalid(name)
    return value


class WsApi:
    def __init__(self, venue: ServerContext) -> None:
        self.exchange = venue.exchange
        self.methods = {
            "add_order": self.add_order,
            "amend_order": self.amend_order,
            "edit_order": self.edit_order,
            "cancel_order": self.cancel_order,
            "cancel_all": self.cancel_all,
            "cancel_all_orders_after": self.cancel_all_orders_after,
            "batch_add": self.batch_add,
            "batch_cancel": self.batch_cancel,
        }

    def _spec(self, params: dict[str, Any], pair: Pair) -> OrderSpec:
        side = params.get(W.side)
        if side not in (BUY, SELL):
            raise invalid(W.side)
        order_type = params.get(W.type)
        if order_type not in ORDER_TYPES:
            if order_type in REFUSED_ORDER_TYPES:
                raise invalid(f"{W.type} {order_type} is not served by the embedded venue")
            raise invalid(W.type)
        _refuse_unserved(params)
        spec = OrderSpec(pair, side, order_type, 0, validate=_flag(params, W.validate))
        if W.quote_qty in params:  # a buy market order sized in quote (REST's viqc)
            if order_type != "market" or side != BUY or W.qty in params:
                raise invalid(f"{W.quote_qty} is for buy market orders, without {W.qty}")
            spec.quote_cost = _number(pair, params, W.quote_qty) * pair.price_scale
        else:
            spec.qty = _number(pair, params, W.qty)
        self._prices(params, pair, spec)
        if W.cl_ord_id in params:
            if W.userref in params:
                raise invalid(f"{W.cl_ord_id} and {W.userref} are exclusive")
            spec.cl_ord_id = check_cl_ord_id(params[W.cl_ord_id])
        elif W.userref in params:
            spec.userref = to_int(params[W.userref], W.userref)
        spec.post_only = _flag(params, W.post_only)
        if spec.post_only and order_type not in LIMIT_TYPES:
            raise invalid(f"{W.post_only} is for limit orders only")
        self._lifetime(params, spec)
        stp = params.get(W.stp, "cancel_newest")
        if stp not in _STP:
            raise invalid(W.stp)
        spec.stp = _STP[stp]
        if W.display in params:
            if order_type != "iceberg":
                raise invalid(f"{W.display} is for iceberg orders only")
            spec.display = _number(pair, params, W.display)
        elif order_type == "iceberg":
            raise invalid(W.display)
        return spec

    @staticmethod
    def _prices(params: dict[str, Any], pair: Any, spec: OrderSpec) -> None:
        """limit_price: the limit (limit, iceberg, the -limit types); triggers.price: a stop or
        take-profit's trigger (facts 4.2; protocol/messages.py). Numbers only: v2 sends prices
        as JSON numbers."""
        kind = spec.order_type
        if kind in LIMIT_TYPES:
            spec.price = _price(pair, params, W.limit)
        elif W.limit in params:
            raise invalid(f"{W.limit} (a {kind} order takes none)")
        triggers = params.get(W.trigger_in)
        if kind in TRIGGER_TYPES:
            if not isinstance(triggers, dict):
                raise invalid(W.trigger_in)
            ref = triggers.get(W.trigger_ref, "last")
            if ref != "last":
                raise invalid("Index unavailable" if ref == "index"
                              else f"{W.trigger_in}.{W.trigger_ref}")  # fmt: skip
            if triggers.get(W.trigger_price_type, "static") != "static":
                raise invalid(f"{W.trigger_in}.{W.trigger_price_type} (only static trigger "
                              "prices are served)")  # fmt: skip
            spec.trigger = _price(pair, triggers, W.trigger, f"{W.trigger_in}.{W.trigger}")
        elif triggers is not None:
            raise invalid(W.trigger_in)

    def _lifetime(self, params: dict[str, Any], spec: OrderSpec) -> None:
        tif = params.get(W.tif, "gtc")
        if tif not in ("gtc", "ioc", "gtd"):
            raise invalid(W.tif)
        spec.tif = tif
        if tif == "gtd":
            if W.expire not in params:
                raise invalid(W.expire)
            now = self.exchange.wall()
            at = _rfc3339(params[W.expire], W.expire)
            if not now < at <= now + MAX_EXPIRE_S:
                raise invalid(W.expire)
            spec.expire = at
        elif W.expire in params:
            raise invalid(f"{W.expire} (with {W.tif} gtd)")

    @staticmethod
    def _ids(order: Order) -> dict[str, Any]:
        result: dict[str, Any] = {WS.added: order.txid}
        if order.cl_ord_id is not None:
            result[W.cl_ord_id] = order.cl_ord_id
        if order.userref is not None:
            result[W.userref] = order.userref
        return result

    def add_order(self, account: Account, params: dict[str, Any]) -> Any:
        pair = self.exchange.pair(params.get(W.pair))
        try:
            spec = self._spec(params, pair)
        except VenueError as exc:  # charged on receipt all the same (facts 3)
            self.exchange.charge_refused(account, pair, ratelimit.ADD_COST, exc)
        order = self.exchange.add_order(account, spec, origin="ws")
        return {} if spec.validate else self._ids(order)

    def batch_add(self, account: Account, params: dict[str, Any]) -> Any:
        orders = params.get(WS.batch)
        pair = self.exchange.pair(params.get(W.pair))
        try:
            if not isinstance(orders, list) or not all(isinstance(o, dict) for o in orders):
                raise invalid(WS.batch)
            validate = _flag(params, W.validate)
            specs = []
            for entry in orders:
                spec = self._spec(entry, pair)
                spec.validate = validate
                specs.append(spec)
        except VenueError as exc:
            cost = ratelimit.batch_add_cost(len(orders) if isinstance(orders, list) else 1)
            self.exchange.charge_refused(account, pair, cost, exc)
        results = self.exchange.add_batch(account, pair, specs, origin="ws")
        return [
            {"error": r.message}
            if isinstance(r, VenueError)
            else ({} if validate else self._ids(r))
            for r in results
        ]

    def _find(self, account: Account, params: dict[str, Any]) -> Order:
        if WS.amend.order_id in params:
            return self.exchange.find(account, txid=params[WS.amend.order_id])
        if W.cl_ord_id in params:
            return self.exchange.find(account, cl_ord_id=params[W.cl_ord_id])
        raise invalid(WS.amend.order_id)

    def amend_order(self, account: Account, params: dict[str, Any]) -> Any:
        order = self._find(account, params)
        pair = order.pair
        try:
            _refuse_unserved(params)
            fields: dict[str, Any] = {
                name: (_price if kind == "price" else _number)(pair, params, key)
                if key in params else None
                for name, key, kind in AMEND_FIELDS
            }  # fmt: skip
            for key in (WS.amend.trigger_price_type,):
                if params.get(key, "static") != "static":
                    raise invalid(f"{key} (only static prices are served)")
            post_only = _flag(params, WS.amend.post_only)
        except VenueError as exc:
            self.exchange.charge_refused(account, pair, ratelimit.AMEND_FIXED, exc)
        amend_id = self.exchange.amend_order(account, order, post_only=post_only, **fields)
        result = {WS.amend_id: amend_id, WS.amend.order_id: order.txid}
        if order.cl_ord_id is not None:
            result[W.cl_ord_id] = order.cl_ord_id
        return result

    def edit_order(self, account: Account, params: dict[str, Any]) -> Any:
        words = WS.edit
        if words.order_id not in params:
            raise invalid(words.order_id)
        order = self.exchange.find(account, txid=params[words.order_id])
        pair = order.pair
        try:
            if self.exchange.pair(params.get(W.pair)) is not pair:
                raise invalid(W.pair)
            if W.cl_ord_id in params:
                raise invalid(f"{W.cl_ord_id} (edit_order takes none; amend_order keeps it)")
            _refuse_unserved(params)
            qty = _number(pair, params, words.qty) if words.qty in params else None
            price = _price(pair, params, words.limit) if words.limit in params else None
            userref = params.get(W.userref)
            userref = None if userref is None else to_int(userref, W.userref)
            validate = _flag(params, W.validate)
        except VenueError as exc:
            self.exchange.charge_refused(account, pair, ratelimit.EDIT_FIXED, exc)
        new = self.exchange.edit_order(
            account, order, qty=qty, price=price, userref=userref, validate=validate, origin="ws"
        )
        return {WS.edited: new.txid, WS.edited_from: order.txid}

    def cancel_order(self, account: Account, params: dict[str, Any]) -> list[Any]:
        """One transaction, and one reply, per id (facts 4.2)."""
        kinds = [key for key in (WS.cancel_id, W.cl_ord_id, W.userref) if key in params]
        if len(kinds) > 1:
            raise invalid(f"{kinds[0]} and {kinds[1]} are exclusive (one kind of id a request)")
        if not kinds:
            raise invalid(WS.cancel_id)
        key = kinds[0]
        value = params[key]
        if not isinstance(value, list) or not value:
            raise invalid(key)
        targets = [(key, v) for v in value]
        replies: list[Any] = []
        for key, value in targets:
            try:
                if key == W.userref:
                    orders = self.exchange.by_userref(account, to_int(value, key))
                    if not orders:
                        raise VenueError(E_UNKNOWN_ORDER)
                elif key == WS.cancel_id:
                    orders = [self.exchange.find(account, txid=value)]
                else:
                    orders = [self.exchange.find(account, cl_ord_id=value)]
                self.exchange.cancel_order(account, orders)
                replies.append({key: value})
            except VenueError as exc:
                replies.append(exc)
        return replies

    def cancel_all(self, account: Account, params: dict[str, Any]) -> Any:
        return {WS.count: self.exchange.cancel_all(account)}

    def cancel_all_orders_after(self, account: Account, params: dict[str, Any]) -> Any:
        if "timeout" not in params:
            raise invalid("timeout")
        now, trigger = self.exchange.cancel_all_after(account, to_int(params["timeout"], "timeout"))
        return {"currentTime": rfc3339_seconds(now), "triggerTime": rfc3339_seconds(trigger)}

    def batch_cancel(self, account: Account, params: dict[str, Any]) -> Any:
        ids = params.get(WS.batch_cancel) or []
        cl_ids = params.get(W.cl_ord_id) or []
        if not isinstance(ids, list) or not isinstance(cl_ids, list):
            raise invalid(WS.batch_cancel)
        if not MIN_BATCH_CANCEL <= len(ids) + len(cl_ids) <= MAX_BATCH_CANCEL:
            raise invalid(f"{WS.batch_cancel} (2 to 50 ids)")
        found: dict[str, Order] = {}
        for value in ids:  # ids already gone (filled, cancelled) are skipped
            text = str(value)
            userref = numbers.wire_int(text, signed=True)
            if userref is not None:
                orders = self.exchange.by_userref(account, userref)
            else:
                orders = [o for o in (account.orders.get(text),) if o is not None]
            for order in orders:
                found[order.txid] = order
        for value in cl_ids:
            named = account.by_cl_ord_id.get(value) if isinstance(value, str) else None
            if named is not None:
                found[named.txid] = named
        if not found:
            raise VenueError(E_UNKNOWN_ORDER)
        return {WS.count: self.exchange.cancel_batch(account, list(found.values()))}


def _order_fields(order: Order, data: dict[str, Any]) -> dict[str, Any]:
    """What every executions entry says of the order itself."""
    pair = order.pair
    data[W.pair] = pair.symbol
    data[W.side] = order.side
    data[W.type] = order.order_type
    data[W.qty] = order.qty / pair.lot_scale
    data[W.tif] = order.tif.upper()
    data["fee_ccy_pref"] = "fciq"
    if order.price:
        data[W.limit_price_type] = "static"
        data[W.limit] = order.price / pair.price_scale
    if order.trigger:
        data[W.trigger_in] = {W.trigger_ref: "last", W.trigger: order.trigger / pair.price_scale,
                              W.trigger_price_type: "static",
                              "status": "untriggered" if order.armed else "triggered"}  # fmt: skip
    if order.display:
        data[W.display] = order.display / pair.lot_scale
    if order.expire:
        data[W.expire] = rfc3339(order.expire)
    if order.cl_ord_id is not None:
        data[W.cl_ord_id] = order.cl_ord_id
    if order.userref is not None:
        data[W.userref] = order.userref
    return data


def _cum(order: Order, filled: int, cost: int, data: dict[str, Any]) -> None:
    pair = order.pair
    data["cum_qty"] = filled / pair.lot_scale
    data["cum_cost"] = cost / pair.lot_scale / pair.price_scale
    data["avg_price"] = cost / filled / pair.price_scale if filled else 0.0


def order_snapshot(order: Order) -> dict[str, Any]:
    """An open order as the executions snapshot lists it."""
    data: dict[str, Any] = {
        EXEC_ORDER_ID: order.txid,
        "order_status": "new" if not order.filled else "partially_filled",
        W.post_only: order.post_only,
        "timestamp": rfc3339(order.opened),
    }
    _cum(order, order.filled, order.cost, data)
    return _order_fields(order, data)


_STATUS_OF: Final = {"new": "new", "filled": "filled", "canceled": "canceled", "expired": "expired"}
# exec_types that order_status=false leaves out: only new, filled, canceled and expired
# reach such a subscriber (facts 10.3)
STATUS_ONLY: Final = frozenset(("pending_new", EV_TRADE, EV_AMENDED, EV_REFILL, "status"))
_EXEC_TYPE: Final = {EV_TRIGGERED: "status"}


def execution(event: Event, now: float, usd: Callable[[str], float]) -> dict[str, Any]:
    """One executions-channel update for an engine event (facts 4.3). `usd` prices an asset
    ID in US dollars (a trade's fee_usd_equiv)."""
    order = event.order
    pair = order.pair
    kind = event.kind
    data: dict[str, Any] = {
        EXEC_ORDER_ID: order.txid,
        EXEC_TYPE: _EXEC_TYPE.get(kind, kind),
        "order_status": _STATUS_OF.get(kind) or ("partially_filled" if event.filled else "new"),
        "timestamp": rfc3339(now),
    }
    _cum(order, event.filled, event.cost, data)
    _order_fields(order, data)
    if kind == EV_TRADE:
        fee = event.fee / 10**BALANCE_DECIMALS
        data["exec_id"] = event.trade_id
        data["trade_id"] = event.trade_id
        data["last_qty"] = event.last_qty / pair.lot_scale
        data["last_price"] = event.last_price / pair.price_scale
        data["cost"] = event.last_qty * event.last_price / pair.lot_scale / pair.price_scale
        data["liquidity_ind"] = event.reason or "t"
        data["fees"] = [{"asset": assets.v2_asset(pair.quote), "qty": fee}]
        data["fee_usd_equiv"] = fee * usd(pair.quote_id)
    elif kind == EV_AMENDED:
        data["amended"] = True
    elif kind == EV_TRIGGERED:
        data["reason"] = "Trigger price reached"
    elif event.reason:
        data["reason"] = event.reason
    return data


def pending_new(event: Event, now: float) -> dict[str, Any]:
    """The pending_new that precedes an order's new on the executions channel (facts 4.3)."""
    order = event.order
    data: dict[str, Any] = {EXEC_ORDER_ID: order.txid, EXEC_TYPE: "pending_new",
                            "order_status": "pending_new", "timestamp": rfc3339(now)}  # fmt: skip
    _cum(order, 0, 0, data)
    # as Kraken's example shows them (facts 10.3): no fee yet, the stop price 0 without trigger
    data["fee_usd_equiv"] = 0.0
    data["stop_price"] = order.trigger / order.pair.price_scale
    return _order_fields(order, data)
