"""Kraken WebSocket v2 trading methods over the engine (facts 4.2) and execution messages (4.3).

Each handler takes (account, params) and returns the `result`, or a list of results when the
method answers with one reply per order (cancel_order). Refusals raise VenueError.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loadgen.protocol import numbers
from loadgen.protocol.clock import rfc3339, rfc3339_seconds
from loadgen.venue.accounts import Account
from loadgen.venue.book import BUY, SELL, Order
from loadgen.venue.engine import (
    E_UNKNOWN_ORDER,
    EV_AMENDED,
    EV_TRADE,
    MAX_BATCH_CANCEL,
    Event,
    OrderSpec,
    VenueError,
    check_cl_ord_id,
    invalid,
    parse_price,
    parse_qty,
)
from loadgen.venue.rest_api import SUPPORTED_ORDER_TYPES, to_int

if TYPE_CHECKING:
    from loadgen.venue.app import Venue


def _flag(params: dict[str, Any], name: str) -> bool:
    value = params.get(name, False)
    if not isinstance(value, bool):
        raise invalid(name)
    return value


class WsApi:
    def __init__(self, venue: Venue) -> None:
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

    def _spec(self, params: dict[str, Any], symbol: Any) -> OrderSpec:
        pair = self.exchange.pair(symbol)
        side = params.get("side")
        if side not in (BUY, SELL):
            raise invalid("side")
        order_type = params.get("order_type")
        if order_type not in SUPPORTED_ORDER_TYPES:
            raise invalid("order_type")
        if "order_qty" not in params:
            raise invalid("order_qty")
        qty = parse_qty(pair, params["order_qty"], "order_qty")
        price = 0
        if order_type == "limit":
            if "limit_price" not in params:
                raise invalid("limit_price")
            price = parse_price(pair, params["limit_price"])
        spec = OrderSpec(pair, side, order_type, qty, price, validate=_flag(params, "validate"))
        if "cl_ord_id" in params:
            if "order_userref" in params:
                raise invalid("cl_ord_id and order_userref are exclusive")
            spec.cl_ord_id = check_cl_ord_id(params["cl_ord_id"])
        elif "order_userref" in params:
            spec.userref = to_int(params["order_userref"], "order_userref")
        spec.post_only = _flag(params, "post_only")
        tif = params.get("time_in_force", "gtc")
        if tif not in ("gtc", "ioc"):
            raise invalid("time_in_force")
        spec.tif = tif
        return spec

    @staticmethod
    def _ids(order: Order) -> dict[str, Any]:
        result: dict[str, Any] = {"order_id": order.txid}
        if order.cl_ord_id is not None:
            result["cl_ord_id"] = order.cl_ord_id
        if order.userref is not None:
            result["order_userref"] = order.userref
        return result

    def add_order(self, account: Account, params: dict[str, Any]) -> Any:
        spec = self._spec(params, params.get("symbol"))
        order = self.exchange.add_order(account, spec, origin="ws")
        return {} if spec.validate else self._ids(order)

    def batch_add(self, account: Account, params: dict[str, Any]) -> Any:
        orders = params.get("orders")
        if not isinstance(orders, list) or not all(isinstance(o, dict) for o in orders):
            raise invalid("orders")
        pair = self.exchange.pair(params.get("symbol"))
        validate = _flag(params, "validate")
        specs = []
        for entry in orders:
            spec = self._spec(entry, pair.wsname)
            spec.validate = validate
            specs.append(spec)
        results = self.exchange.add_batch(account, pair, specs, origin="ws")
        return [
            {"error": r.message}
            if isinstance(r, VenueError)
            else ({} if validate else self._ids(r))
            for r in results
        ]

    def _find(self, account: Account, params: dict[str, Any]) -> Order:
        if "order_id" in params:
            return self.exchange.find(account, txid=params["order_id"])
        if "cl_ord_id" in params:
            return self.exchange.find(account, cl_ord_id=params["cl_ord_id"])
        raise invalid("order_id")

    def amend_order(self, account: Account, params: dict[str, Any]) -> Any:
        order = self._find(account, params)
        pair = order.pair
        qty = params.get("order_qty")
        price = params.get("limit_price")
        amend_id = self.exchange.amend_order(
            account,
            order,
            qty=None if qty is None else parse_qty(pair, qty, "order_qty"),
            price=None if price is None else parse_price(pair, price),
            post_only=_flag(params, "post_only"),
        )
        result = {"amend_id": amend_id, "order_id": order.txid}
        if order.cl_ord_id is not None:
            result["cl_ord_id"] = order.cl_ord_id
        return result

    def edit_order(self, account: Account, params: dict[str, Any]) -> Any:
        if "order_id" not in params:
            raise invalid("order_id")
        order = self.exchange.find(account, txid=params["order_id"])
        if self.exchange.pair(params.get("symbol")) is not order.pair:
            raise invalid("symbol")
        qty = params.get("order_qty")
        price = params.get("limit_price")
        userref = params.get("order_userref")
        new = self.exchange.edit_order(
            account,
            order,
            qty=None if qty is None else parse_qty(order.pair, qty, "order_qty"),
            price=None if price is None else parse_price(order.pair, price),
            userref=None if userref is None else to_int(userref, "order_userref"),
            validate=_flag(params, "validate"),
            origin="ws",
        )
        return {"order_id": new.txid, "original_order_id": order.txid}

    def cancel_order(self, account: Account, params: dict[str, Any]) -> list[Any]:
        """One transaction, and one reply, per id (facts 4.2)."""
        targets: list[tuple[str, Any]] = []
        for key in ("order_id", "cl_ord_id", "order_userref"):
            value = params.get(key)
            if value is None:
                continue
            if not isinstance(value, list) or not value:
                raise invalid(key)
            targets += [(key, v) for v in value]
        if not targets:
            raise invalid("order_id")
        replies: list[Any] = []
        for key, value in targets:
            try:
                if key == "order_userref":
                    orders = self.exchange.by_userref(account, to_int(value, key))
                    if not orders:
                        raise VenueError(E_UNKNOWN_ORDER)
                elif key == "order_id":
                    orders = [self.exchange.find(account, txid=value)]
                else:
                    orders = [self.exchange.find(account, cl_ord_id=value)]
                self.exchange.cancel_order(account, orders)
                replies.append({key: value})
            except VenueError as exc:
                replies.append(exc)
        return replies

    def cancel_all(self, account: Account, params: dict[str, Any]) -> Any:
        return {"count": self.exchange.cancel_all(account)}

    def cancel_all_orders_after(self, account: Account, params: dict[str, Any]) -> Any:
        if "timeout" not in params:
            raise invalid("timeout")
        now, trigger = self.exchange.cancel_all_after(account, to_int(params["timeout"], "timeout"))
        return {"currentTime": rfc3339_seconds(now), "triggerTime": rfc3339_seconds(trigger)}

    def batch_cancel(self, account: Account, params: dict[str, Any]) -> Any:
        ids = params.get("orders") or []
        cl_ids = params.get("cl_ord_id") or []
        if not isinstance(ids, list) or not isinstance(cl_ids, list):
            raise invalid("orders")
        if not 1 <= len(ids) + len(cl_ids) <= MAX_BATCH_CANCEL:
            raise invalid("orders")
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
            order = account.by_cl_ord_id.get(value) if isinstance(value, str) else None
            if order is not None:
                found[order.txid] = order
        if not found:
            raise VenueError(E_UNKNOWN_ORDER)
        return {"count": self.exchange.cancel_batch(account, list(found.values()))}


def order_snapshot(order: Order) -> dict[str, Any]:
    """An open order as the executions snapshot lists it."""
    pair = order.pair
    data: dict[str, Any] = {
        "order_id": order.txid,
        "symbol": pair.wsname,
        "side": order.side,
        "order_type": order.order_type,
        "order_qty": order.qty / pair.lot_scale,
        "cum_qty": order.filled / pair.lot_scale,
        "order_status": "new" if not order.filled else "partially_filled",
        "time_in_force": order.tif,
        "post_only": order.post_only,
        "timestamp": rfc3339(order.opened),
    }
    if order.order_type == "limit":
        data["limit_price"] = order.price / pair.price_scale
    if order.cl_ord_id is not None:
        data["cl_ord_id"] = order.cl_ord_id
    if order.userref is not None:
        data["order_userref"] = order.userref
    return data


_STATUS_OF = {"new": "new", "filled": "filled", "canceled": "canceled"}


def execution(event: Event, now: float) -> dict[str, Any]:
    """One executions-channel update for an engine event (facts 4.3)."""
    order = event.order
    pair = order.pair
    kind = event.kind
    data: dict[str, Any] = {
        "order_id": order.txid,
        "exec_type": kind,
        "order_status": _STATUS_OF.get(kind) or ("partially_filled" if event.filled else "new"),
        "symbol": pair.wsname,
        "side": order.side,
        "order_type": order.order_type,
        "order_qty": order.qty / pair.lot_scale,
        "cum_qty": event.filled / pair.lot_scale,
        "timestamp": rfc3339(now),
    }
    if order.order_type == "limit":
        data["limit_price"] = order.price / pair.price_scale
    if order.cl_ord_id is not None:
        data["cl_ord_id"] = order.cl_ord_id
    if order.userref is not None:
        data["order_userref"] = order.userref
    if kind == EV_TRADE:
        data["exec_id"] = event.trade_id
        data["trade_id"] = event.trade_id
        data["last_qty"] = event.last_qty / pair.lot_scale
        data["last_price"] = event.last_price / pair.price_scale
        data["liquidity_ind"] = event.reason or "t"
    elif kind == EV_AMENDED:
        data["amended"] = True
    elif event.reason:
        data["reason"] = event.reason
    return data
