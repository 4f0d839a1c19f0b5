"""Kraken Spot REST methods over the engine: parameters in, `result` objects out (facts 1.3).

Values arrive as strings (form bodies) or JSON values (JSON bodies); every reader here takes
both. A bad parameter is `EGeneral:Invalid arguments:<field>`, naming the field.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from loadgen import ratelimit
from loadgen.protocol import numbers
from loadgen.protocol.clock import rfc3339_seconds
from loadgen.venue.accounts import TOKEN_TTL_S, Account
from loadgen.venue.book import BUY, SELL, Order
from loadgen.venue.engine import (
    E_REST_RATE,
    E_UNKNOWN_ORDER,
    MAX_BATCH_CANCEL,
    RATE_LIMITED,
    OrderSpec,
    VenueError,
    check_cl_ord_id,
    check_deadline,
    invalid,
    parse_price,
    parse_qty,
)

if TYPE_CHECKING:
    from loadgen.venue.app import Venue

SUPPORTED_ORDER_TYPES = ("limit", "market")
KNOWN_ORDER_TYPES = (
    "stop-loss", "take-profit", "stop-loss-limit", "take-profit-limit", "trailing-stop",
    "trailing-stop-limit", "iceberg", "settle-position",
)  # fmt: skip
# Order-entry calls are charged to the trading counter, not the REST call counter (facts 2).
TRADING_METHODS = frozenset((
    "AddOrder", "AddOrderBatch", "AmendOrder", "EditOrder", "CancelOrder", "CancelAll",
    "CancelOrderBatch",
))  # fmt: skip


def truthy(value: Any) -> bool:
    return value is True or value in ("true", "True", "1", 1)


def to_int(value: Any, field: str) -> int:
    """An integer parameter (userref, timeout): a JSON integer, or a string of ASCII digits
    (a leading '-' allowed), within int64; anything else is `Invalid arguments:<field>`."""
    if isinstance(value, str):
        number = numbers.wire_int(value, signed=True)
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:  # bool, float (1.5 is no userref), lists, objects
        number = None
    if number is None or not -(2**63) <= number < 2**63:
        raise invalid(field)
    return number


def required(params: dict[str, Any], field: str) -> Any:
    value = params.get(field)
    if value is None or value == "":
        raise invalid(field)
    return value


def descr(order: Order) -> dict[str, str]:
    pair = order.pair
    where = f"limit {pair.fmt_price(order.price)}" if order.order_type == "limit" else "market"
    return {"order": f"{order.side} {pair.fmt_qty(order.qty)} {pair.altname} @ {where}"}


def order_info(order: Order) -> dict[str, Any]:
    """One entry of OpenOrders' `open` map."""
    pair = order.pair
    avg = order.cost / order.filled / pair.price_scale if order.filled else 0.0
    return {
        "refid": None,
        "userref": order.userref,
        "cl_ord_id": order.cl_ord_id,
        "status": "open",
        "opentm": order.opened,
        "starttm": 0,
        "expiretm": 0,
        "descr": {
            "pair": pair.altname,
            "type": order.side,
            "ordertype": order.order_type,
            "price": pair.fmt_price(order.price),
            "price2": "0",
            "leverage": "none",
            "order": descr(order)["order"],
            "close": "",
        },
        "vol": pair.fmt_qty(order.qty),
        "vol_exec": pair.fmt_qty(order.filled),
        "cost": f"{order.cost / pair.price_scale / pair.lot_scale:.8f}",
        "fee": "0.00000000",
        "price": pair.fmt_price(round(avg * pair.price_scale)),
        "stopprice": "0",
        "limitprice": "0",
        "misc": "",
        "oflags": "post" if order.post_only else "",
    }


class RestApi:
    def __init__(self, venue: Venue) -> None:
        self.venue = venue
        self.exchange = venue.exchange
        self.private_methods: dict[str, Callable[[Account, dict[str, Any]], Any]] = {
            "AddOrder": self.add_order,
            "AddOrderBatch": self.add_order_batch,
            "AmendOrder": self.amend_order,
            "EditOrder": self.edit_order,
            "CancelOrder": self.cancel_order,
            "CancelAll": self.cancel_all,
            "CancelAllOrdersAfter": self.cancel_all_orders_after,
            "CancelOrderBatch": self.cancel_order_batch,
            "OpenOrders": self.open_orders,
            "GetWebSocketsToken": self.get_websockets_token,
        }
        self.private_urls = {f"/0/private/{n}".encode(): n for n in self.private_methods}
        self.public_methods: dict[str, Callable[[], Any]] = {
            "Time": self.time,
            "SystemStatus": self.system_status,
            "AssetPairs": self.asset_pairs,
        }

    def call_private(self, method: str, account: Account, params: dict[str, Any]) -> Any:
        if method not in TRADING_METHODS:
            now = self.exchange.mono()
            if not account.rest_counter.charge(ratelimit.rest_cost(method), now):
                raise VenueError(E_REST_RATE, RATE_LIMITED)
        elif "deadline" in params:
            check_deadline(params["deadline"], self.exchange.wall())
        return self.private_methods[method](account, params)

    # ---- order entry ---------------------------------------------------------------------

    def _spec(self, params: dict[str, Any], pair_name: Any, validate: bool) -> OrderSpec:
        pair = self.exchange.pair(pair_name)
        side = params.get("type")
        if side not in (BUY, SELL):
            raise invalid("type")
        order_type = params.get("ordertype")
        if order_type not in SUPPORTED_ORDER_TYPES:
            if order_type in KNOWN_ORDER_TYPES:
                raise invalid(f"ordertype {order_type} is not served by the embedded venue")
            raise invalid("ordertype")
        qty = parse_qty(pair, required(params, "volume"))
        price = parse_price(pair, required(params, "price")) if order_type == "limit" else 0
        spec = OrderSpec(pair, side, order_type, qty, price, validate=validate)
        if params.get("cl_ord_id") is not None:
            if params.get("userref") is not None:
                raise invalid("cl_ord_id and userref are exclusive")
            spec.cl_ord_id = check_cl_ord_id(params["cl_ord_id"])
        elif params.get("userref") is not None:
            spec.userref = to_int(params["userref"], "userref")
        oflags = params.get("oflags")
        if oflags:
            spec.post_only = "post" in str(oflags).split(",")
        tif = params.get("timeinforce")
        if tif:
            tif = str(tif).upper()
            if tif not in ("GTC", "IOC"):
                raise invalid("timeinforce")
            spec.tif = tif.lower()
        return spec

    def add_order(self, account: Account, params: dict[str, Any]) -> Any:
        validate = truthy(params.get("validate"))
        spec = self._spec(params, params.get("pair"), validate)
        order = self.exchange.add_order(account, spec, origin="rest")
        if validate:
            return {"descr": descr(order)}
        return {"descr": descr(order), "txid": [order.txid]}

    def add_order_batch(self, account: Account, params: dict[str, Any]) -> Any:
        orders = params.get("orders")
        if not isinstance(orders, list) or not all(isinstance(o, dict) for o in orders):
            raise invalid("orders")
        validate = truthy(params.get("validate"))
        pair = self.exchange.pair(params.get("pair"))
        specs = [self._spec(o, pair.altname, validate) for o in orders]
        results = self.exchange.add_batch(account, pair, specs, origin="rest")
        out = []
        for item in results:
            if isinstance(item, VenueError):
                out.append({"error": item.message})
            elif validate:
                out.append({"descr": descr(item)})
            else:
                out.append({"txid": item.txid, "descr": descr(item)})
        return {"orders": out}

    def _target(self, account: Account, params: dict[str, Any]) -> Order:
        txid = params.get("txid")
        cl_ord_id = params.get("cl_ord_id")
        if txid is None and cl_ord_id is None:
            raise invalid("txid")
        return self.exchange.find(account, txid, cl_ord_id)

    def amend_order(self, account: Account, params: dict[str, Any]) -> Any:
        order = self._target(account, params)
        pair = order.pair
        qty = params.get("order_qty")
        price = params.get("limit_price")
        amend_id = self.exchange.amend_order(
            account,
            order,
            qty=None if qty is None else parse_qty(pair, qty, "order_qty"),
            price=None if price is None else parse_price(pair, price),
            post_only=truthy(params.get("post_only")),
        )
        return {"amend_id": amend_id}

    def edit_order(self, account: Account, params: dict[str, Any]) -> Any:
        txid = required(params, "txid")
        pair = self.exchange.pair(params.get("pair"))
        order = self._by_txid_or_userref(account, txid)[0]
        if order.pair is not pair:
            raise invalid("pair")
        volume = params.get("volume")
        price = params.get("price")
        validate = truthy(params.get("validate"))
        new = self.exchange.edit_order(
            account,
            order,
            qty=None if volume is None else parse_qty(pair, volume),
            price=None if price is None else parse_price(pair, price),
            userref=None if params.get("userref") is None else to_int(params["userref"], "userref"),
            validate=validate,
        )
        result = {
            "descr": descr(new),
            "volume": pair.fmt_qty(new.qty),
            "price": pair.fmt_price(new.price),
            "price2": "0",
            "orders_cancelled": 0 if validate else 1,
            "originaltxid": order.txid,
            "status": "ok",
        }
        if not validate:
            result["txid"] = new.txid
        if order.userref is not None:
            result["olduserref"] = order.userref
            result["newuserref"] = new.userref
        return result

    def _by_txid_or_userref(self, account: Account, txid: Any) -> list[Order]:
        text = str(txid)
        userref = numbers.wire_int(text, signed=True)
        if userref is not None:
            orders = self.exchange.by_userref(account, userref)
            if not orders:
                raise VenueError(E_UNKNOWN_ORDER)
            return orders
        return [self.exchange.find(account, txid=text)]

    def cancel_order(self, account: Account, params: dict[str, Any]) -> Any:
        if params.get("txid") is not None:
            orders = self._by_txid_or_userref(account, params["txid"])
        elif params.get("cl_ord_id") is not None:
            orders = [self.exchange.find(account, cl_ord_id=params["cl_ord_id"])]
        else:
            raise invalid("txid")
        return {"count": self.exchange.cancel_order(account, orders), "pending": False}

    def cancel_all(self, account: Account, params: dict[str, Any]) -> Any:
        return {"count": self.exchange.cancel_all(account), "pending": False}

    def cancel_all_orders_after(self, account: Account, params: dict[str, Any]) -> Any:
        timeout = to_int(required(params, "timeout"), "timeout")
        now, trigger = self.exchange.cancel_all_after(account, timeout)
        return {"currentTime": rfc3339_seconds(now), "triggerTime": rfc3339_seconds(trigger)}

    def cancel_order_batch(self, account: Account, params: dict[str, Any]) -> Any:
        ids = _ids(params.get("orders"), "txid") + _ids(params.get("cl_ord_ids"), "cl_ord_id")
        if not ids or len(set(ids)) > MAX_BATCH_CANCEL:
            raise invalid("orders")
        found: dict[str, Order] = {}
        for kind, value in ids:  # ids already gone (filled, cancelled) are skipped
            try:
                if kind == "txid":
                    orders = self._by_txid_or_userref(account, value)
                else:
                    orders = [self.exchange.find(account, cl_ord_id=value)]
            except VenueError:
                continue
            for order in orders:
                found[order.txid] = order
        if not found:
            raise VenueError(E_UNKNOWN_ORDER)
        return {"count": self.exchange.cancel_batch(account, list(found.values()))}

    # ---- queries -----------------------------------------------------------------------------

    def open_orders(self, account: Account, params: dict[str, Any]) -> Any:
        userref = params.get("userref")
        cl_ord_id = params.get("cl_ord_id")
        wanted_ref = None if userref is None else to_int(userref, "userref")
        return {
            "open": {
                o.txid: order_info(o)
                for o in self.exchange.open_orders(account)
                if (wanted_ref is None or o.userref == wanted_ref)
                and (cl_ord_id is None or o.cl_ord_id == cl_ord_id)
            }
        }

    def get_websockets_token(self, account: Account, params: dict[str, Any]) -> Any:
        token = self.venue.accounts.issue_token(account, self.exchange.wall())
        return {"token": token, "expires": int(TOKEN_TTL_S)}

    def time(self) -> Any:
        import email.utils

        now = self.exchange.wall()
        return {"unixtime": int(now), "rfc1123": email.utils.formatdate(now, usegmt=True)}

    def system_status(self) -> Any:
        return {"status": "online", "timestamp": rfc3339_seconds(self.exchange.wall())}

    def asset_pairs(self) -> Any:
        return {p.altname: p.public_info() for p in self.exchange.pairs.pairs}


def _ids(value: Any, key: str) -> list[tuple[str, str]]:
    """CancelOrderBatch ids: a list of {key: id} objects (or bare ids)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise invalid("orders" if key == "txid" else "cl_ord_ids")
    out = []
    for item in value:
        raw = item.get(key) if isinstance(item, dict) else item
        if not isinstance(raw, (str, int)) or isinstance(raw, bool):
            raise invalid("orders" if key == "txid" else "cl_ord_ids")
        out.append((key, str(raw)))
    return out
