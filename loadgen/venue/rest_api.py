"""Kraken Spot REST methods over the engine: parameters in, `result` objects out (facts 1.3).

Values arrive as strings (form bodies) or JSON values (JSON bodies); every reader here takes
both. A bad parameter is `EGeneral:Invalid arguments:<field>`, naming the field.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from loadgen import ratelimit
from loadgen.protocol import numbers, orderkinds
from loadgen.protocol.clock import rfc3339_seconds
from loadgen.protocol.messages import AMEND_FIELDS, REST
from loadgen.protocol.operations import REST_TRADING
from loadgen.venue.accounts import TOKEN_TTL_S, Account
from loadgen.venue.book import BUY, SELL, Order
from loadgen.venue.engine import (
    E_INVALID as E_INVALID_ARGS,
)
from loadgen.venue.engine import (
    E_REST_RATE,
    E_UNKNOWN_ORDER,
    INVALID,
    MAX_BATCH_CANCEL,
    RATE_LIMITED,
    STP_MODES,
    TRIGGER_TYPES,
    OrderSpec,
    VenueError,
    check_cl_ord_id,
    check_deadline,
    invalid,
    parse_price,
    parse_qty,
)
from loadgen.venue.pairs import Pair, fmt_balance

if TYPE_CHECKING:
    from loadgen.venue.context import ServerContext

# AddOrder's ordertype values (facts 9): served, and refused by name.
ORDER_TYPES: Final = orderkinds.ORDER_TYPES  # the traders' own table (protocol/orderkinds.py)
LIMIT_TYPES: Final = orderkinds.LIMIT_TYPES
REFUSED_ORDER_TYPES: Final = ("trailing-stop", "trailing-stop-limit", "settle-position")
# Parameters Kraken documents that the venue does not serve: each refused by name, with why,
# when it asks for something other than the default (never silently mis-served).
NO_MARGIN: Final = "margin trading is not served by the embedded venue"
REFUSED_PARAMS: Final = {
    "leverage": NO_MARGIN,
    "reduce_only": NO_MARGIN,
    "starttm": "a scheduled start is not served by the embedded venue",
    "close": "conditional close orders are not served by the embedded venue",
    "asset_class": "only currency pairs are served by the embedded venue",
}
_DEFAULTS: Final = {"leverage": ("none",), "reduce_only": (False, "false", "False", "0", 0),
             "starttm": ("0", 0, "+0"), "asset_class": ("currency",)}  # fmt: skip
OFLAGS: Final = frozenset((REST.order.post_only, "fciq", "nompp", REST.order.quote_flag, "fcib"))
TIME_IN_FORCE: Final = orderkinds.REST_TIME_IN_FORCE
STP_TYPES: Final = {mode: mode for mode in STP_MODES}
MIN_EXPIRE_S: Final = 5.0  # expiretm `+<n>`: at least 5 s ahead (facts 9)
MAX_EXPIRE_S: Final = 31 * 86400.0  # "at most one month ahead"
# Order-entry calls are charged to the trading counter, not the REST call counter (facts 2).
TRADING_METHODS: Final = REST_TRADING
W: Final = REST.order  # how AddOrder names an order's parts (protocol/messages.py)


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


_WORDS: Final = {"stop-loss": "stop loss", "take-profit": "take profit",
          "stop-loss-limit": "stop loss", "take-profit-limit": "take profit"}  # fmt: skip


def descr(order: Order) -> dict[str, str]:
    """AddOrder's `descr`: "buy 1.25000000 XBTUSD @ limit 27500.0", "... @ stop loss 24000.0
    -> limit 23900.0" (Kraken's wording, facts 1.3 and python-kraken-sdk's examples)."""
    pair = order.pair
    kind = order.order_type
    if kind in _WORDS:
        where = f"{_WORDS[kind]} {pair.fmt_price(order.trigger)}"
        if order.price:
            where += f" -> limit {pair.fmt_price(order.price)}"
    elif order.price:
        where = f"limit {pair.fmt_price(order.price)}"
    else:
        where = "market"
    return {
        "order": f"{order.side} {pair.fmt_qty(order.qty)} {pair.altname} @ {where}",
        "close": "",
    }


_CLOSED_STATUS: Final = {"filled": "closed", "canceled": "canceled", "expired": "expired"}


def order_info(order: Order) -> dict[str, Any]:
    """One order as OpenOrders, ClosedOrders and QueryOrders show it (facts 8.1)."""
    pair = order.pair
    avg = order.cost // order.filled if order.filled else 0
    flags = ["fciq"] + ([W.post_only] if order.post_only else [])
    info: dict[str, Any] = {
        "refid": None,
        "userref": order.userref if order.userref is not None else 0,
        "cl_ord_id": order.cl_ord_id,
        "status": _CLOSED_STATUS.get(order.status, "open") if order.closetm else "open",
        "opentm": order.opened,
        "starttm": 0,
        "expiretm": order.expire,
        "descr": {
            "pair": pair.altname,
            "type": order.side,
            "ordertype": order.order_type,
            "price": pair.fmt_price(order.trigger or order.price),
            "price2": pair.fmt_price(order.price if order.trigger else 0),
            "leverage": "none",
            "order": descr(order)["order"],
            "close": "",
        },
        "vol": pair.fmt_qty(order.qty),
        "vol_exec": pair.fmt_qty(order.filled),
        "cost": pair.fmt_cost(order.cost),
        "fee": fmt_balance(order.fee, pair.cost_decimals),
        "price": pair.fmt_price(avg),
        "stopprice": pair.fmt_price(order.trigger),
        "limitprice": pair.fmt_price(order.price if order.trigger else 0),
        "misc": "" if order.armed or not order.trigger else "stopped",
        "oflags": ",".join(flags),
        "margin": False,
    }
    if order.trigger:
        info["trigger"] = "last"
    if order.closetm:
        info["closetm"] = order.closetm
        info["reason"] = order.reason
    return info


class RestApi:
    def __init__(self, venue: ServerContext) -> None:
        from loadgen.venue.rest_queries import Queries

        self.venue = venue
        self.exchange = venue.exchange
        self.queries = Queries(venue.exchange)
        self.private_methods: dict[str, Callable[[Account, dict[str, Any]], Any]] = {
            "AddOrder": self.add_order,
            "AddOrderBatch": self.add_order_batch,
            "AmendOrder": self.amend_order,
            "EditOrder": self.edit_order,
            "CancelOrder": self.cancel_order,
            "CancelAll": self.cancel_all,
            "CancelAllOrdersAfter": self.cancel_all_orders_after,
            "CancelOrderBatch": self.cancel_order_batch,
            "GetWebSocketsToken": self.get_websockets_token,
            **self.queries.private_methods,
        }
        self.private_urls = {f"/0/private/{n}".encode(): n for n in self.private_methods}
        self.public_methods: dict[str, Callable[[dict[str, Any]], Any]] = {
            "Time": self.time,
            "SystemStatus": self.system_status,
            **self.queries.public_methods,
        }

    def call_private(self, method: str, account: Account, params: dict[str, Any]) -> Any:
        if method not in TRADING_METHODS:
            now = self.exchange.mono()
            if not account.rest_counter.charge(ratelimit.rest_cost(method), now):
                raise VenueError(E_REST_RATE, RATE_LIMITED)
        elif REST.deadline in params:
            check_deadline(params[REST.deadline], self.exchange.wall())
        return self.private_methods[method](account, params)

    # ---- order entry ---------------------------------------------------------------------

    def _spec(self, params: dict[str, Any], pair: Pair, validate: bool) -> OrderSpec:
        side = params.get(W.side)
        if side not in (BUY, SELL):
            raise invalid(W.side)
        order_type = params.get(W.type)
        if order_type not in ORDER_TYPES:
            if order_type in REFUSED_ORDER_TYPES:
                raise invalid(f"{W.type} {order_type} is not served by the embedded venue")
            raise invalid(W.type)
        _refuse_unserved(params)
        spec = OrderSpec(pair, side, order_type, 0, validate=validate)
        flags = _oflags(params[W.flags]) if W.flags in params else _NO_FLAGS
        if W.quote_flag in flags:
            if order_type != "market" or side != BUY:
                raise invalid(f"{W.flags} {W.quote_flag} is for buy market orders only")
            # the quote amount, to 8 decimals, as lots * ticks (what Book.lots_for_cost spends)
            spec.quote_cost = parse_qty(pair, required(params, W.qty)) * pair.price_scale
        else:
            spec.qty = parse_qty(pair, required(params, W.qty))
        self._prices(params, pair, spec)
        spec.post_only = W.post_only in flags
        if spec.post_only and order_type not in LIMIT_TYPES:
            raise invalid(f"{W.flags} {W.post_only} is for limit orders only")
        self._client_ids(params, spec)
        self._lifetime(params, spec)
        stp = params.get(W.stp)
        if stp is not None:
            if stp not in STP_TYPES:
                raise invalid(W.stp)
            spec.stp = stp
        if params.get(W.display) is not None:
            if order_type != "iceberg":
                raise invalid(f"{W.display} is for iceberg orders only")
            spec.display = parse_qty(pair, params[W.display], W.display)
        elif order_type == "iceberg":
            raise invalid(W.display)
        return spec

    def _prices(self, params: dict[str, Any], pair: Pair, spec: OrderSpec) -> None:
        """price: the limit (limit, iceberg) or the trigger (stop and take-profit types);
        price2: the limit of the -limit types (facts 9; protocol/messages.py)."""
        kind = spec.order_type
        if kind == "limit" and W.trigger_ref not in params and W.trigger_limit not in params:
            spec.price = parse_price(pair, _absolute(required(params, W.limit)))
            return  # the common case first
        trigger = params.get(W.trigger_ref)
        if trigger not in (None, "last"):
            if trigger == "index":  # Kraken's answer on a pair without index pricing
                raise invalid("Index unavailable")
            raise invalid(W.trigger_ref)
        if kind == "market":
            if params.get(W.limit) not in (None, ""):
                raise invalid(f"{W.limit} (a market order takes none)")
        elif kind in TRIGGER_TYPES:
            spec.trigger = parse_price(pair, _absolute(required(params, W.trigger)))
            if kind.endswith("-limit"):
                limit = _absolute(required(params, W.trigger_limit))
                spec.price = parse_price(pair, limit, W.trigger_limit)
        else:
            spec.price = parse_price(pair, _absolute(required(params, W.limit)))
        if params.get(W.trigger_limit) not in (None, "") and not kind.endswith("-limit"):
            raise invalid(W.trigger_limit)

    @staticmethod
    def _client_ids(params: dict[str, Any], spec: OrderSpec) -> None:
        if params.get(W.cl_ord_id) is not None:
            if params.get(W.userref) is not None:
                raise invalid(f"{W.cl_ord_id} and {W.userref} are exclusive")
            spec.cl_ord_id = check_cl_ord_id(params[W.cl_ord_id])
        elif params.get(W.userref) is not None:
            spec.userref = to_int(params[W.userref], W.userref)

    def _lifetime(self, params: dict[str, Any], spec: OrderSpec) -> None:
        if W.tif not in params and W.expire not in params:
            return  # GTC, no expiry: the default, without reading the clock
        tif = params.get(W.tif)
        if tif:
            tif = TIME_IN_FORCE.get(str(tif).upper())
            if tif is None:
                raise invalid(W.tif)
            spec.tif = tif
        expire = _expire_time(params.get(W.expire), self.exchange.wall())
        if expire:
            if spec.tif not in ("gtd", "gtc"):
                raise invalid(f"{W.expire} (with {W.tif} GTD)")
            spec.tif, spec.expire = "gtd", expire
        elif spec.tif == "gtd":
            raise invalid(W.expire)

    def add_order(self, account: Account, params: dict[str, Any]) -> Any:
        validate = truthy(params.get(W.validate))
        pair = self.exchange.pair(params.get(W.pair))
        try:
            spec = self._spec(params, pair, validate)
        except VenueError as exc:
            self.exchange.charge_refused(account, pair, ratelimit.ADD_COST, exc)
        order = self.exchange.add_order(account, spec, origin="rest")
        if validate:
            return {"descr": descr(order)}
        return {"descr": descr(order), REST.added: [order.txid]}

    def add_order_batch(self, account: Account, params: dict[str, Any]) -> Any:
        orders = params.get(REST.batch)
        pair = self.exchange.pair(params.get(W.pair))
        validate = truthy(params.get(W.validate))
        try:
            if not isinstance(orders, list) or not all(isinstance(o, dict) for o in orders):
                raise invalid(REST.batch)
            specs = [self._spec(o, pair, validate) for o in orders]
        except VenueError as exc:
            cost = ratelimit.batch_add_cost(len(orders) if isinstance(orders, list) else 1)
            self.exchange.charge_refused(account, pair, cost, exc)
        results = self.exchange.add_batch(account, pair, specs, origin="rest")
        out: list[dict[str, Any]] = []
        for item in results:
            if isinstance(item, VenueError):
                out.append({"error": item.message})
            elif validate:
                out.append({"descr": descr(item)})
            else:
                out.append({REST.added: item.txid, "descr": descr(item)})
        return {REST.batch: out}

    def _target(self, account: Account, params: dict[str, Any]) -> Order:
        txid = params.get(REST.amend.order_id)
        cl_ord_id = params.get(W.cl_ord_id)
        if txid is None and cl_ord_id is None:
            raise invalid(REST.amend.order_id)
        return self.exchange.find(account, txid, cl_ord_id)

    def amend_order(self, account: Account, params: dict[str, Any]) -> Any:
        order = self._target(account, params)
        pair = order.pair
        try:
            if params.get(W.pair) is not None and self.exchange.pair(params[W.pair]) is not pair:
                raise invalid(W.pair)
            fields: dict[str, Any] = {
                name: (parse_price if kind == "price" else parse_qty)(
                    pair, _absolute(params[key]), key
                )
                if params.get(key) is not None
                else None
                for name, key, kind in AMEND_FIELDS
            }
        except VenueError as exc:
            self.exchange.charge_refused(account, pair, ratelimit.AMEND_FIXED, exc)
        amend_id = self.exchange.amend_order(
            account, order, post_only=truthy(params.get(REST.amend.post_only)), **fields
        )
        return {REST.amend_id: amend_id}

    def edit_order(self, account: Account, params: dict[str, Any]) -> Any:
        words = REST.edit
        txid = required(params, words.order_id)
        pair = self.exchange.pair(params.get(W.pair))
        order = self._by_txid_or_userref(account, txid)[0]
        try:
            if order.pair is not pair:
                raise invalid(W.pair)
            if params.get(W.cl_ord_id) is not None:
                raise invalid(f"{W.cl_ord_id} (EditOrder takes none; AmendOrder keeps it)")
            flags = _oflags(params[W.flags]) if W.flags in params else _NO_FLAGS
            if flags - {W.post_only}:
                raise invalid(f"{W.flags} (EditOrder changes only {W.post_only})")
            volume, price = params.get(words.qty), params.get(words.limit)
            qty = None if volume is None else parse_qty(pair, volume)
            price_ticks = None if price is None else parse_price(pair, _absolute(price))
            userref = params.get(W.userref)
            userref = None if userref is None else to_int(userref, W.userref)
        except VenueError as exc:
            self.exchange.charge_refused(account, pair, ratelimit.EDIT_FIXED, exc)
        validate = truthy(params.get(W.validate))
        new = self.exchange.edit_order(
            account, order, qty=qty, price=price_ticks, userref=userref, validate=validate
        )
        result: dict[str, Any] = {
            "descr": descr(new),
            "volume": pair.fmt_qty(new.qty),
            "price": pair.fmt_price(new.price),
            "price2": "0",
            "orders_cancelled": 0 if validate else 1,
            REST.edited_from: order.txid,
            "status": "ok",
        }
        if not validate:
            result[REST.edited] = new.txid
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
        if params.get(REST.cancel_id) is not None:
            orders = self._by_txid_or_userref(account, params[REST.cancel_id])
        elif params.get(W.cl_ord_id) is not None:
            orders = [self.exchange.find(account, cl_ord_id=params[W.cl_ord_id])]
        else:
            raise invalid(REST.cancel_id)
        return {REST.count: self.exchange.cancel_order(account, orders), "pending": False}

    def cancel_all(self, account: Account, params: dict[str, Any]) -> Any:
        return {REST.count: self.exchange.cancel_all(account), "pending": False}

    def cancel_all_orders_after(self, account: Account, params: dict[str, Any]) -> Any:
        timeout = to_int(required(params, "timeout"), "timeout")
        now, trigger = self.exchange.cancel_all_after(account, timeout)
        return {"currentTime": rfc3339_seconds(now), "triggerTime": rfc3339_seconds(trigger)}

    def cancel_order_batch(self, account: Account, params: dict[str, Any]) -> Any:
        ids = _ids(params.get(REST.batch_cancel), REST.cancel_id)
        ids += _ids(params.get(REST.batch_cancel_cl), W.cl_ord_id)
        if not ids or len(set(ids)) > MAX_BATCH_CANCEL:
            raise invalid(REST.batch_cancel)
        found: dict[str, Order] = {}
        for kind, value in ids:  # ids already gone (filled, cancelled) are skipped
            try:
                if kind == REST.cancel_id:
                    orders = self._by_txid_or_userref(account, value)
                else:
                    orders = [self.exchange.find(account, cl_ord_id=value)]
            except VenueError:
                continue
            for order in orders:
                found[order.txid] = order
        if not found:
            raise VenueError(E_UNKNOWN_ORDER)
        return {REST.count: self.exchange.cancel_batch(account, list(found.values()))}

    def get_websockets_token(self, account: Account, params: dict[str, Any]) -> Any:
        token = self.venue.accounts.issue_token(account, self.exchange.wall())
        return {"token": token, "expires": int(TOKEN_TTL_S)}

    # ---- public --------------------------------------------------------------------------

    def time(self, params: dict[str, Any]) -> Any:
        import email.utils

        now = self.exchange.wall()
        return {"unixtime": int(now), "rfc1123": email.utils.formatdate(now, usegmt=True)}

    def system_status(self, params: dict[str, Any]) -> Any:
        return {"status": "online", "timestamp": rfc3339_seconds(self.exchange.wall())}


_REFUSED_NAMES: Final = frozenset(REFUSED_PARAMS)


def _refuse_unserved(params: dict[str, Any]) -> None:
    if _REFUSED_NAMES.isdisjoint(params) and not any(k.startswith("close[") for k in params):
        return  # the common case, one set test and one pass over the few keys
    for name, why in REFUSED_PARAMS.items():
        value = params.get(name)
        if value is None or value == "" or value in _DEFAULTS.get(name, ()):
            continue
        raise invalid(f"{name} ({why})")
    for key in params:  # close[ordertype] and friends, however the form was nested
        if key.startswith("close["):
            raise invalid(f"close ({REFUSED_PARAMS['close']})")


_NO_FLAGS: Final[frozenset[str]] = frozenset()


def _oflags(value: Any) -> frozenset[str] | set[str]:
    if value is None or value == "":
        return set()
    items = value if isinstance(value, list) else str(value).split(",")
    flags = {str(f).strip() for f in items}
    unknown = flags - OFLAGS
    if unknown:
        raise invalid(f"oflags {sorted(unknown)[0]}")
    if "fcib" in flags:
        raise invalid("oflags fcib (fees are charged in the quote currency here, as fciq)")
    return flags


def _absolute(value: Any) -> Any:
    """Prices relative to the last trade (`+5`, `-1.5`, `#2%`) are refused by name."""
    if isinstance(value, str) and (value.startswith(("+", "-", "#")) or value.endswith("%")):
        raise VenueError(
            f"{E_INVALID_ARGS}:price {value!r} (relative prices are not served by the "
            "embedded venue)",
            INVALID,
        )
    return value


def _expire_time(value: Any, now: float) -> float:
    """expiretm: 0 (none), a unix time, or `+<n>` seconds from now (at least 5 s, at most a
    month ahead); the wall-clock time, or 0."""
    if value is None or value in ("", "0", 0):
        return 0.0
    text = str(value)
    relative = text.startswith("+")
    try:
        number = float(text[1:] if relative else text)
    except ValueError:
        raise invalid(W.expire) from None
    at = now + number if relative else number
    if not now + MIN_EXPIRE_S <= at <= now + MAX_EXPIRE_S:
        raise invalid(W.expire)
    return at


def _ids(value: Any, key: str) -> list[tuple[str, str]]:
    """CancelOrderBatch ids: a list of {key: id} objects (or bare ids)."""
    if value is None:
        return []
    field = REST.batch_cancel if key == REST.cancel_id else REST.batch_cancel_cl
    if not isinstance(value, list):
        raise invalid(field)
    out = []
    for item in value:
        raw = item.get(key) if isinstance(item, dict) else item
        if not isinstance(raw, (str, int)) or isinstance(raw, bool):
            raise invalid(field)
        out.append((key, str(raw)))
    return out
