"""Kraken Spot REST queries over the engine's state: the key's balances and orders (facts 8),
and the public market data (facts 7), each in Kraken's documented request and result shapes.

Private methods take (account, params), public ones (params): form or JSON values, or the
query string of a GET. A bad parameter is `EGeneral:Invalid arguments:<field>`, naming it.

Choices where the docs are silent or the venue is simpler than Kraken:
- Balances start at accounts.DEFAULT_BALANCE of every asset the markets trade; Balance lists
  them all. BalanceEx's `hold_trade` is what the key's open orders would spend: a buy's
  remaining cost and taker fee in the quote asset, a sell's remaining volume in the base.
- TradeBalance values each asset at the last price of a market that links it to the asked
  asset (directly, inverted, or through a common base); an asset with no such market counts 0.
  No margin is served: m, n, c, v are 0, e = mf = tb, and `ml` is left out (no position).
- ClosedOrders and QueryOrders see the key's last engine.CLOSED_KEPT closed orders.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from loadgen.protocol import assets, errors, numbers
from loadgen.venue.accounts import Account
from loadgen.venue.book import BUY, SELL, Order
from loadgen.venue.engine import E_UNKNOWN_ORDER, Exchange, VenueError, invalid
from loadgen.venue.pairs import BALANCE_DECIMALS, TAKER_FEE_BP, Pair, fmt_balance
from loadgen.venue.rest_api import order_info, to_int, truthy
from loadgen.venue.tape import OHLC_INTERVALS, TRADES_KEPT

PAGE = 50  # ClosedOrders' page (facts 8)
MAX_QUERY_TXIDS = 50  # QueryOrders: at most 50 txids
DEPTH_DEFAULT, DEPTH_MAX = 100, 500
DAY_S = 86400


class Queries:
    def __init__(self, exchange: Exchange) -> None:
        self.exchange = exchange
        self.private_methods: dict[str, Callable[[Account, dict[str, Any]], Any]] = {
            "Balance": self.balance,
            "BalanceEx": self.balance_ex,
            "TradeBalance": self.trade_balance,
            "OpenOrders": self.open_orders,
            "ClosedOrders": self.closed_orders,
            "QueryOrders": self.query_orders,
            "OrderAmends": self.order_amends,
        }
        self.public_methods: dict[str, Callable[[dict[str, Any]], Any]] = {
            "Assets": self.assets,
            "AssetPairs": self.asset_pairs,
            "Ticker": self.ticker,
            "Depth": self.depth,
            "Trades": self.trades,
            "OHLC": self.ohlc,
        }

    # ---- balances ------------------------------------------------------------------------------

    def _asset_ids(self) -> dict[str, str]:
        return self.exchange.pairs.assets()

    def balance(self, account: Account, params: dict[str, Any]) -> Any:
        return {a: _asset_text(account.balance(a), alt) for a, alt in self._asset_ids().items()}

    def balance_ex(self, account: Account, params: dict[str, Any]) -> Any:
        holds = _holds(account)
        return {
            a: {
                "balance": _asset_text(account.balance(a), alt),
                "hold_trade": _asset_text(holds.get(a, 0), alt),
            }
            for a, alt in self._asset_ids().items()
        }

    def trade_balance(self, account: Account, params: dict[str, Any]) -> Any:
        target = params.get("asset") or "ZUSD"
        ids = self._asset_ids()
        target_id = target if target in ids else assets.asset_id(str(target))
        if target_id not in ids:
            raise invalid("asset")
        decimals = 4
        total = sum(
            self._value(account.balance(a), a, target_id) for a in ids
        )  # in target units at BALANCE_DECIMALS
        unexecuted = sum(self._order_value(o, target_id) for o in account.orders.values())
        tb = fmt_balance(int(total), decimals)
        zero = fmt_balance(0, decimals)
        return {"eb": tb, "tb": tb, "m": zero, "uv": fmt_balance(int(unexecuted), decimals),
                "n": zero, "c": zero, "v": zero, "e": tb, "mf": tb}  # fmt: skip

    def _value(self, units: int, asset_id: str, target_id: str) -> float:
        return units * self.exchange.rate(asset_id, target_id)

    def _order_value(self, order: Order, target_id: str) -> float:
        pair = order.pair
        price = order.price or order.trigger or self.exchange.tape(pair).last
        cost = (order.qty - order.filled) * price * pair.cost_scale
        return self._value(cost, pair.quote_id, target_id)

    # ---- orders -------------------------------------------------------------------------------

    def open_orders(self, account: Account, params: dict[str, Any]) -> Any:
        keep = _filter(params)
        return {"open": {o.txid: order_info(o) for o in account.orders.values() if keep(o)}}

    def closed_orders(self, account: Account, params: dict[str, Any]) -> Any:
        keep = _filter(params)
        start = self._bound(account, params.get("start"), "start")
        end = self._bound(account, params.get("end"), "end")
        which = params.get("closetime") or "both"
        if which not in ("open", "close", "both"):
            raise invalid("closetime")
        ofs = to_int(params.get("ofs") or 0, "ofs")
        if ofs < 0:
            raise invalid("ofs")
        chosen = []
        for order in reversed(account.closed.values()):  # newest first
            times = {"open": (order.opened,), "close": (order.closetm,)}.get(
                which, (order.opened, order.closetm)
            )
            if not keep(order):
                continue
            if start is not None and not any(t > start for t in times):
                continue
            if end is not None and not any(t <= end for t in times):
                continue
            chosen.append(order)
        page = chosen[ofs : ofs + PAGE]
        result: dict[str, Any] = {"closed": {o.txid: order_info(o) for o in page}}
        if not truthy(params.get("without_count")):
            result["count"] = len(chosen)
        return result

    @staticmethod
    def _bound(account: Account, value: Any, field: str) -> float | None:
        """start/end: a unix time, or an order txid standing for its open time (facts 8)."""
        if value is None or value == "":
            return None
        order = account.closed.get(str(value)) or account.orders.get(str(value))
        if order is not None:
            return order.opened
        try:
            return float(value)
        except (TypeError, ValueError):
            raise invalid(field) from None

    def query_orders(self, account: Account, params: dict[str, Any]) -> Any:
        txids = params.get("txid")
        if isinstance(txids, list):
            ids = [str(t) for t in txids]
        elif isinstance(txids, str) and txids:
            ids = [t.strip() for t in txids.split(",")]
        else:
            raise invalid("txid")
        if len(ids) > MAX_QUERY_TXIDS:
            raise invalid("txid (at most 50)")
        keep = _filter(params)
        out = {}
        for txid in ids:
            order = account.orders.get(txid) or account.closed.get(txid)
            if order is None:
                raise VenueError(E_UNKNOWN_ORDER)
            if keep(order):
                out[txid] = order_info(order)
        return out

    def order_amends(self, account: Account, params: dict[str, Any]) -> Any:
        order_id = params.get("order_id") or params.get("txid")  # the schema names both (facts)
        order = account.orders.get(str(order_id)) or account.closed.get(str(order_id))
        if order is None:
            raise VenueError(E_UNKNOWN_ORDER)
        pair = order.pair
        entries = order.amends or [self.exchange._amend_entry(order, "", "original", order.opened)]
        amends = []
        for entry in entries:
            if entry is None:
                continue
            amend_id, kind, qty, remaining, price, trigger, display, post_only, when = entry
            item: dict[str, Any] = {"amend_id": amend_id or order.txid, "amend_type": kind,
                                    "order_qty": pair.fmt_qty(qty),
                                    "remaining_qty": pair.fmt_qty(remaining),
                                    "limit_price": pair.fmt_price(price),
                                    "timestamp": int(when * 1e9)}  # fmt: skip
            if trigger:
                item["trigger_price"] = pair.fmt_price(trigger)
            if display:
                item["display_qty"] = pair.fmt_qty(display)
            if post_only:
                item["post_only"] = True
            amends.append(item)
        return {"amends": amends, "count": len(amends)}

    # ---- public: assets and pairs ------------------------------------------------------------

    def assets(self, params: dict[str, Any]) -> Any:
        ids = self._asset_ids()
        wanted = _names(params.get("asset"))
        if params.get("aclass") not in (None, "", "currency"):
            raise invalid("aclass")
        out = {}
        for asset_id, alt in ids.items():
            if wanted is not None and not wanted & {asset_id, alt, assets.v2_asset(alt)}:
                continue
            decimals, display = assets.asset_decimals(alt)
            out[asset_id] = {"aclass": "currency", "altname": alt, "decimals": decimals,
                             "display_decimals": display, "collateral_value": 1.0,
                             "status": "enabled"}  # fmt: skip
        if wanted is not None and not out:
            raise VenueError(errors.UNKNOWN_ASSET, "invalid")
        return out

    def asset_pairs(self, params: dict[str, Any]) -> Any:
        pairs = self._pairs(params, required=False)
        info = params.get("info") or "info"
        if info not in ("info", "leverage", "fees", "margin"):
            raise invalid("info")
        if params.get("aclass_base") not in (None, "", "currency"):
            raise invalid("aclass_base")
        names = _split(params.get("pair")) if _names(params.get("pair")) is not None else []
        asked = {self.exchange.pair(n).pair_id: n for n in names if "/" in n}
        # A pair asked for by a slash name (XBT/USD, BTC/USD) is keyed by that name, others by
        # the pair ID: Kraken's documented example keys `pair=XBTUSD` by XXBTZUSD, and
        # python-kraken-sdk's order book reads AssetPairs?pair=BTC/USD as result["BTC/USD"]
        # (an inference from a maintained client; the docs show no slash example).
        return {asked.get(p.pair_id, p.pair_id): _pair_part(p.public_info(), info) for p in pairs}

    def _pairs(self, params: dict[str, Any], required: bool) -> list[Pair]:
        names = _names(params.get("pair"))
        if names is None:
            if required:
                raise invalid("pair")
            return self.exchange.pairs.pairs
        return [self.exchange.pair(n) for n in dict.fromkeys(_split(params.get("pair")))]

    # ---- public: market data -----------------------------------------------------------------

    def ticker(self, params: dict[str, Any]) -> Any:
        now = self.exchange.wall()
        midnight = now // DAY_S * DAY_S
        out = {}
        for pair in self._pairs(params, required=False):
            tape = self.exchange.tape(pair)
            book = self.exchange.books.get(pair.altname)
            ask = book.levels(SELL, 1) if book else []
            bid = book.levels(BUY, 1) if book else []
            today = tape.stats(midnight)
            day = tape.stats(now - DAY_S)
            out[pair.pair_id] = {
                "a": _top(pair, ask),
                "b": _top(pair, bid),
                "c": [pair.fmt_price(tape.last), pair.fmt_qty(tape.last_qty)],
                "v": [pair.fmt_qty(today[3]), pair.fmt_qty(day[3])],
                "p": [_vwap(pair, today), _vwap(pair, day)],
                "t": [today[5], day[5]],
                "l": [pair.fmt_price(today[2]), pair.fmt_price(day[2])],
                "h": [pair.fmt_price(today[1]), pair.fmt_price(day[1])],
                "o": pair.fmt_price(today[0]),
            }
        return out

    def depth(self, params: dict[str, Any]) -> Any:
        (pair,) = self._one_pair(params)
        count = _bounded_int(params.get("count"), "count", DEPTH_DEFAULT, 1, DEPTH_MAX)
        book = self.exchange.book(pair)

        def rows(side: str) -> list[list[Any]]:
            return [[pair.fmt_price(p), pair.fmt_qty(q), int(t)] for p, q, t in
                    book.levels(side, count)]  # fmt: skip

        return {pair.pair_id: {"asks": rows(SELL), "bids": rows(BUY)}}

    def trades(self, params: dict[str, Any]) -> Any:
        (pair,) = self._one_pair(params)
        count = _bounded_int(params.get("count"), "count", TRADES_KEPT, 1, TRADES_KEPT)
        since = _since_s(params.get("since"))
        tape = self.exchange.tape(pair)
        chosen = [t for t in tape.trades if t[2] > since][-count:]
        rows = [[pair.fmt_price(price), pair.fmt_qty(qty), when, side[0], kind, "", trade_id]
                for price, qty, when, side, kind, trade_id in chosen]  # fmt: skip
        last = chosen[-1][2] if chosen else since
        return {pair.pair_id: rows, "last": str(int(last * 1e9))}

    def ohlc(self, params: dict[str, Any]) -> Any:
        (pair,) = self._one_pair(params)
        interval = _bounded_int(params.get("interval"), "interval", 1, 1, max(OHLC_INTERVALS))
        if interval not in OHLC_INTERVALS:
            raise invalid("interval")
        since = _since_s(params.get("since"))
        candles = self.exchange.tape(pair).ohlc(interval, since)
        rows = []
        for begin, o, h, low, c, pq, vol, n in candles:
            vwap = pair.fmt_price(pq // vol) if vol else pair.fmt_price(c)
            rows.append([begin, pair.fmt_price(o), pair.fmt_price(h), pair.fmt_price(low),
                         pair.fmt_price(c), vwap, pair.fmt_qty(vol), n])  # fmt: skip
        return {pair.pair_id: rows, "last": rows[-1][0] if rows else int(since)}

    def _one_pair(self, params: dict[str, Any]) -> list[Pair]:
        pairs = self._pairs(params, required=True)
        if len(pairs) != 1:
            raise invalid("pair (one pair)")
        return pairs


# ---- helpers ---------------------------------------------------------------------------------


def _asset_text(units: int, altname: str) -> str:
    return fmt_balance(units, assets.asset_decimals(altname)[0])


def _holds(account: Account) -> dict[str, int]:
    """What the key's open orders would spend, by asset (BalanceEx's hold_trade)."""
    holds: dict[str, int] = {}
    for order in account.orders.values():
        pair = order.pair
        left = order.qty - order.filled
        if order.side == BUY:
            price = order.price or order.trigger
            units = left * price * pair.cost_scale * (10000 + TAKER_FEE_BP) // 10000
            holds[pair.quote_id] = holds.get(pair.quote_id, 0) + units
        else:
            holds[pair.base_id] = holds.get(pair.base_id, 0) + left * pair.base_scale
    return holds


def _filter(params: dict[str, Any]) -> Callable[[Order], bool]:
    userref = params.get("userref")
    wanted_ref = None if userref is None or userref == "" else to_int(userref, "userref")
    cl_ord_id = params.get("cl_ord_id")

    def keep(order: Order) -> bool:
        if wanted_ref is not None and order.userref != wanted_ref:
            return False
        return cl_ord_id is None or order.cl_ord_id == cl_ord_id

    return keep


def _split(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v).strip() for v in value]
    return [v.strip() for v in str(value).split(",") if v.strip()]


def _names(value: Any) -> set[str] | None:
    if value is None or value == "" or value == []:
        return None
    return set(_split(value))


def _pair_part(info: dict[str, Any], part: str) -> dict[str, Any]:
    """AssetPairs' `info`: everything, or the leverage, fees or margin fields only."""
    keep = {
        "info": None,
        "leverage": ("leverage_buy", "leverage_sell"),
        "fees": ("fees", "fees_maker", "fee_volume_currency"),
        "margin": ("margin_call", "margin_stop"),
    }[part]
    return info if keep is None else {k: info[k] for k in keep}


def _top(pair: Pair, levels: list[tuple[int, int, float]]) -> list[str]:
    """Ticker's a / b: [price, whole-lot volume, lot volume]."""
    if not levels:
        return [pair.zero_price, "0", pair.zero_qty]
    price, lots, _ = levels[0]
    return [pair.fmt_price(price), str(lots // pair.lot_scale), pair.fmt_qty(lots)]


def _vwap(pair: Pair, stats: tuple[int, int, int, int, int, int]) -> str:
    volume, price_volume = stats[3], stats[4]
    return pair.fmt_price(price_volume // volume if volume else stats[0])


def _bounded_int(value: Any, field: str, default: int, low: int, high: int) -> int:
    if value is None or value == "":
        return default
    number = to_int(value, field)
    if not low <= number <= high:
        raise invalid(field)
    return number


def _since_s(value: Any) -> float:
    """`since`: unix seconds, or (as Trades' `last` gives it) nanoseconds."""
    if value is None or value == "":
        return 0.0
    text = str(value)
    number = numbers.wire_int(text, signed=False)
    if number is None:
        try:
            return float(text)
        except ValueError:
            raise invalid("since") from None
    return number / 1e9 if number > 10**12 else float(number)


__all__ = ["BALANCE_DECIMALS", "Queries"]
