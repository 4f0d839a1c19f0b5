"""Kraken's order messages on REST and WebSocket v2: one table an API of what each part of an
order request is called (each part the traders send or the venue serves; the rest of Kraken's
parameters the venue refuses by name, in its APIs) and where a reply puts what is read back.

The traders' clients write their requests and read the replies by these rows; the venue reads
the requests and writes the replies by the same rows: one dialect, not two that must agree.
(The operations and their method names are protocol/operations.py, the order types and times
in force protocol/orderkinds.py, the error strings protocol/errors.py; FIX's parts are FIX's own
tag numbers, with the codes both ends use in protocol/fix.py.)

Sources (facts 1.3, 4.2, 9): REST AddOrder, AddOrderBatch, AmendOrder, EditOrder, CancelOrder,
CancelAll, CancelOrderBatch (https://docs.kraken.com/api/docs/rest-api/add-order and its
neighbours); WS v2 add_order, batch_add, amend_order, edit_order, cancel_order, cancel_all,
batch_cancel (https://docs.kraken.com/api/docs/websocket-v2/add_order and its neighbours).

What the rows leave to the code of each end, written down:
- REST puts a stop or take-profit's trigger in `price` and a -limit variant's limit in `price2`
  (the `price` of every other type is its limit); WS nests the trigger in `triggers.price` and
  keeps the limit in `limit_price` for every type that has one (`trigger_in` names the nesting
  object).
- REST's post-only is a word in the `oflags` list, and so is viqc (the size is in the quote
  currency); WS has a boolean `post_only` and a size field of its own, `cash_order_qty`.
- REST answers an add with `txid` as a list of one id, an edit with one id; WS answers both
  with one `order_id`. A batch add's ids are entries of a list (REST: under `orders`; WS: the
  result itself).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final


@dataclass(frozen=True, slots=True)
class OrderWords:
    """An add request's parts (and each entry of a batch add)."""

    pair: str  # the market
    side: str  # buy | sell
    type: str  # orderkinds' order type word
    qty: str  # the size in the base currency
    quote_qty: str  # a buy market order's size in the quote currency ("" : a flag says so)
    quote_flag: str  # the flag that makes `qty` a quote-currency size ("" : none)
    limit: str  # the limit price
    limit_price_type: str  # static or relative limit price ("" : none on this API)
    trigger: str  # a stop or take-profit's trigger price (inside `trigger_in` when it is set)
    trigger_in: str  # the object that holds the trigger's fields ("" : the request itself)
    trigger_ref: str  # what the trigger watches: last (served) or index (refused)
    trigger_price_type: str  # static or relative trigger price ("" : none on this API)
    trigger_limit: str  # a -limit trigger order's limit price
    tif: str  # time in force
    expire: str  # a GTD order's expiry
    display: str  # an iceberg's visible size
    cl_ord_id: str  # the client's id of the order
    userref: str  # the client's number for orders (several may share it)
    stp: str  # self-trade prevention mode
    post_only: str  # maker only (REST: a word of `flags`)
    flags: str  # the list of order flags ("" : none on this API)
    validate: str  # check only, place nothing


@dataclass(frozen=True, slots=True)
class ChangeWords:
    """An amend's or an edit's parts: the order it names, and what it changes."""

    order_id: str  # the venue's id of the order
    limit: str  # the new limit price
    qty: str  # the new size
    trigger: str = ""  # the new trigger price (amends only)
    display: str = ""  # the new visible size of an iceberg (amends only)
    post_only: str = ""  # refuse a new price that would take (amends only)
    trigger_price_type: str = ""  # static or relative new trigger price (amends, WS only)


@dataclass(frozen=True, slots=True)
class Dialect:
    """One API's order messages: requests and the replies' fields the traders read."""

    order: OrderWords
    amend: ChangeWords
    edit: ChangeWords
    cancel_id: str  # a cancel's id of an order
    batch: str  # a batch add's list of orders (and, on REST, its result's list of entries)
    batch_cancel: str  # a batch cancel's list of order ids
    batch_cancel_cl: str  # a batch cancel's list of client order ids
    deadline: str  # the time after which the venue must not act on a trading request
    added: str  # an add's result: the new order's id
    amend_id: str  # an amend's result: the id of that amend
    edited: str  # an edit's result: the id of the order that replaced the old one
    edited_from: str  # an edit's result: the id of the order it replaced
    count: str  # a cancel's, cancel-all's or batch cancel's result: how many orders it ended


# AmendOrder and amend_order spell their fields alike on both APIs (facts 4.2).
_AMEND: Final = {"limit": "limit_price", "qty": "order_qty", "trigger": "trigger_price",
          "display": "display_qty", "post_only": "post_only"}  # fmt: skip
# REST's AmendOrder takes no price types (facts 1.3); WS's amend_order does (facts 4.2)

REST: Final = Dialect(
    order=OrderWords(
        pair="pair",
        side="type",
        type="ordertype",
        qty="volume",
        quote_qty="",
        quote_flag="viqc",
        limit="price",
        limit_price_type="",
        trigger="price",
        trigger_in="",
        trigger_ref="trigger",
        trigger_price_type="",
        trigger_limit="price2",
        tif="timeinforce",
        expire="expiretm",
        display="displayvol",
        cl_ord_id="cl_ord_id",
        userref="userref",
        stp="stptype",
        post_only="post",
        flags="oflags",
        validate="validate",
    ),
    amend=ChangeWords(order_id="txid", **_AMEND),
    edit=ChangeWords(order_id="txid", limit="price", qty="volume"),
    cancel_id="txid",
    batch="orders",
    batch_cancel="orders",
    batch_cancel_cl="cl_ord_ids",
    deadline="deadline",
    added="txid",
    amend_id="amend_id",
    edited="txid",
    edited_from="originaltxid",
    count="count",
)

WS: Final = Dialect(
    order=OrderWords(
        pair="symbol",
        side="side",
        type="order_type",
        qty="order_qty",
        quote_qty="cash_order_qty",
        quote_flag="",
        limit="limit_price",
        limit_price_type="limit_price_type",
        trigger="price",
        trigger_in="triggers",
        trigger_ref="reference",
        trigger_price_type="price_type",
        trigger_limit="limit_price",
        tif="time_in_force",
        expire="expire_time",
        display="display_qty",
        cl_ord_id="cl_ord_id",
        userref="order_userref",
        stp="stp_type",
        post_only="post_only",
        flags="",
        validate="validate",
    ),
    amend=ChangeWords(order_id="order_id", trigger_price_type="trigger_price_type", **_AMEND),
    edit=ChangeWords(order_id="order_id", limit="limit_price", qty="order_qty"),
    cancel_id="order_id",
    batch="orders",
    batch_cancel="orders",
    batch_cancel_cl="cl_ord_id",
    deadline="deadline",
    added="order_id",
    amend_id="amend_id",
    edited="order_id",
    edited_from="original_order_id",
    count="count",
)

# The executions channel (WS v2, facts 4.3): an update names its order and what happened to it;
# the order's own fields follow, under add_order's words (WS.order).
EXEC_ORDER_ID: Final = "order_id"
EXEC_TYPE: Final = "exec_type"
ENDING_EXEC_TYPES: Final = ("filled", "canceled", "expired")  # the updates after which it is gone

# An amend's fields on either API, as the venue parses them: (what changes, the field, a
# quantity or a price). REST sends decimal text, WS numbers.
AMEND_FIELDS: Final = (
    ("qty", _AMEND["qty"], "qty"),
    ("price", _AMEND["limit"], "price"),
    ("trigger", _AMEND["trigger"], "price"),
    ("display", _AMEND["display"], "qty"),
)


# ---- replies: what the traders read back (the venue writes them by the same rows) ------------


def rest_added(result: dict[str, Any]) -> str:
    """AddOrder's new order id (`txid`: a list of one)."""
    return result[REST.added][0]


def rest_edited(result: dict[str, Any]) -> str:
    """EditOrder's new order id."""
    return result[REST.edited]


def rest_batch_added(result: dict[str, Any]) -> list[str | None]:
    """AddOrderBatch's ids, one an entry (None where that order was refused)."""
    return [entry.get(REST.added) for entry in result[REST.batch]]


def ws_added(result: dict[str, Any]) -> str:
    """add_order's new order id."""
    return result[WS.added]


def ws_edited(result: dict[str, Any]) -> str:
    """edit_order's new order id."""
    return result[WS.edited]


def ws_batch_added(result: list[dict[str, Any]]) -> list[str | None]:
    """batch_add's ids, one an entry (None where that order was refused)."""
    return [entry.get(WS.added) for entry in result]


def count(result: Any, dialect: Dialect) -> int | None:
    """How many orders a cancel-all or a batch cancel ended, where the result says (None when
    it does not: the trader then knows no count)."""
    if isinstance(result, dict) and isinstance(result.get(dialect.count), int):
        return result[dialect.count]
    return None


def rest_count(result: Any) -> int | None:
    return count(result, REST)


def ws_count(result: Any) -> int | None:
    return count(result, WS)
