"""protocol/messages.py, the one table of Kraken's order messages that the traders write by
and the venue parses by, held part by part against what others wrote: python-kraken-sdk's
REST requests, Kraken's documented examples (tests/golden) and its documented parameter names
(facts 4.2, source S10). Each check puts a distinct value in each part, so a table entry that
names the wrong part (side for type, the edit's price for the amend's) fails."""

from __future__ import annotations

import base64
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from kraken.spot import Trade

from loadgen.protocol import messages, ws
from loadgen.protocol.messages import REST, WS

GOLDEN = Path(__file__).parent.parent / "golden"
REST_DOCS = {e["name"]: e for e in json.loads((GOLDEN / "kraken_rest.json").read_text())["rest"]}
WS_DOCS = json.loads((GOLDEN / "kraken_ws_fix.json").read_text())["ws"]


@pytest.fixture
def sdk_sent() -> tuple[Trade, dict[str, Any]]:
    """python-kraken-sdk's Trade client, its requests caught before they would go (by method)."""
    trade = Trade(key="k", secret=base64.b64encode(b"s" * 64).decode())
    sent: dict[str, Any] = {}

    def request(method: str, uri: str, params: dict[str, Any], **_: Any) -> dict[str, Any]:
        sent[uri.rsplit("/", 1)[1]] = params
        return {}

    trade.request = request  # type: ignore[method-assign]
    return trade, sent


def test_the_sdk_add_order_puts_each_part_where_the_rest_table_says(sdk_sent) -> None:
    trade, sent = sdk_sent
    trade.create_order(ordertype="stop-loss-limit", side="sell", pair="XBTUSD", volume="1.5",
                       price="100.5", price2="99.5", trigger="last", stptype="cancel-oldest",
                       oflags="post", timeinforce="GTD", displayvol="0.2", expiretm="+30",
                       userref=7, cl_ord_id="c-1", validate=True)  # fmt: skip
    req, w = sent["AddOrder"], REST.order
    assert (req[w.type], req[w.side], req[w.pair], req[w.qty]) == ("stop-loss-limit", "sell",
                                                                   "XBTUSD", "1.5")  # fmt: skip
    assert (req[w.trigger], req[w.trigger_limit], req[w.trigger_ref]) == ("100.5", "99.5", "last")
    assert (req[w.stp], req[w.flags], req[w.tif], req[w.expire]) == ("cancel-oldest", "post",
                                                                    "GTD", "+30")  # fmt: skip
    assert (req[w.display], req[w.userref], req[w.cl_ord_id]) == ("0.2", 7, "c-1")
    assert req[w.validate] is True and req[w.flags] == w.post_only


def test_the_sdk_amend_edit_cancel_and_batches_match_the_rest_table(sdk_sent) -> None:
    trade, sent = sdk_sent
    trade.amend_order(txid="OA", order_qty="2", display_qty="0.3", limit_price="101",
                      trigger_price="98", post_only=True, deadline="soon")  # fmt: skip
    amend, a = sent["AmendOrder"], REST.amend
    assert (amend[a.order_id], amend[a.qty], amend[a.display]) == ("OA", "2", "0.3")
    assert (amend[a.limit], amend[a.trigger], amend[a.post_only]) == ("101", "98", True)
    assert amend[REST.deadline] == "soon"
    trade.edit_order(txid="OE", pair="XBTUSD", volume="3", price="102", userref=8)
    edit, e = sent["EditOrder"], REST.edit
    assert (edit[e.order_id], edit[e.qty], edit[e.limit]) == ("OE", "3", "102")
    assert (edit[REST.order.pair], edit[REST.order.userref]) == ("XBTUSD", 8)
    trade.cancel_order(txid="OC")
    assert sent["CancelOrder"] == {REST.cancel_id: "OC"}
    trade.create_order_batch(orders=[{"ordertype": "limit"}], pair="XBTUSD", validate=True)
    assert sent["AddOrderBatch"][REST.batch] == [{"ordertype": "limit"}]
    trade.cancel_order_batch(orders=["O1", "O2"])
    assert sent["CancelOrderBatch"] == {REST.batch_cancel: ["O1", "O2"]}


def test_the_documented_rest_add_and_edit_read_part_by_part() -> None:
    add, w = REST_DOCS["AddOrder"]["request"], REST.order
    assert (add[w.type], add[w.side], add[w.qty], add[w.pair], add[w.limit]) == (
        "limit", "buy", 1.25, "XBTUSD", 27500)  # fmt: skip
    edit, e = REST_DOCS["EditOrder"]["request"], REST.edit
    assert (edit[e.order_id], edit[e.limit], edit[e.qty], edit[w.trigger_limit]) == (
        "OHYO67-6LP66-HMQ437", "45000.1", "2.1234", "46000.1")  # fmt: skip


def test_the_documented_rest_replies_are_read_where_the_table_says() -> None:
    added = REST_DOCS["AddOrder"]["response"]["result"]
    assert messages.rest_added(added) == "OUF4EM-FRGI2-MQMWZD"
    edited = REST_DOCS["EditOrder"]["response"]["result"]
    assert messages.rest_edited(edited) == "OYVGEW-VYV5B-UUEXSK"
    assert edited[REST.edited_from] == "OHYO67-6LP66-HMQ437"
    assert messages.rest_batch_added({"orders": [{"txid": "A"}, {"error": "x"}]}) == ["A", None]
    assert messages.count({"count": 3, "pending": False}, REST) == 3
    assert messages.count({"count": "3"}, REST) is None  # not a number: nothing read


def test_the_documented_ws_execution_names_the_order_part_by_part() -> None:
    """Kraken's pending_new example carries the order's add_order fields (facts 10.3)."""
    data, w = WS_DOCS["executions_pending_new"]["message"]["data"][0], WS.order
    assert (data[w.pair], data[w.side], data[w.type], data[w.qty], data[w.limit]) == (
        "BTC/USD", "sell", "limit", 0.005, 26500.0)  # fmt: skip
    assert (data[w.userref], data[w.tif], data[w.limit_price_type]) == (3, "GTC", "static")
    assert data[messages.EXEC_ORDER_ID] == "OK4GJX-KSTLS-7DZZO5"
    assert data[messages.EXEC_TYPE] == "pending_new"
    assert data[messages.EXEC_TYPE] not in messages.ENDING_EXEC_TYPES  # it lives on


# WS v2 parameters as Kraken's method pages list them (facts 4.2, source S10).
WS_PARAMS = {
    "add_order": {"order_type", "side", "order_qty", "symbol", "limit_price", "limit_price_type",
                  "time_in_force", "expire_time", "effective_time", "deadline", "post_only",
                  "reduce_only", "margin", "display_qty", "fee_preference", "stp_type",
                  "cash_order_qty", "validate", "cl_ord_id", "order_userref", "sender_sub_id",
                  "triggers", "conditional"},
    "triggers": {"reference", "price", "price_type"},
    "amend_order": {"order_id", "cl_ord_id", "order_qty", "display_qty", "limit_price",
                    "limit_price_type", "post_only", "trigger_price", "trigger_price_type",
                    "deadline"},
    "edit_order": {"order_id", "symbol", "order_qty", "limit_price", "display_qty", "post_only",
                   "reduce_only", "order_userref", "triggers", "deadline", "fee_preference",
                   "validate"},
    "cancel_order": {"order_id", "cl_ord_id", "order_userref"},
    "batch_add": {"symbol", "orders", "deadline", "validate"},
    "batch_cancel": {"orders", "cl_ord_id"},
}  # fmt: skip


def test_every_ws_word_is_a_parameter_of_its_documented_method() -> None:
    w = WS.order
    nested = {w.trigger, w.trigger_ref, w.trigger_price_type}
    words = {getattr(w, f.name) for f in dataclasses.fields(w)} - {"", *nested}
    assert words <= WS_PARAMS["add_order"]
    assert nested <= WS_PARAMS["triggers"] and w.trigger_in == "triggers"
    amend = {getattr(WS.amend, f.name) for f in dataclasses.fields(WS.amend)} - {""}
    assert amend <= WS_PARAMS["amend_order"]
    edit = {WS.edit.order_id, WS.edit.limit, WS.edit.qty}
    assert edit <= WS_PARAMS["edit_order"] and edit <= WS_PARAMS["amend_order"]
    assert WS.cancel_id in WS_PARAMS["cancel_order"]
    assert {WS.batch, WS.deadline} <= WS_PARAMS["batch_add"]
    assert {WS.batch_cancel, WS.batch_cancel_cl} == WS_PARAMS["batch_cancel"]


def test_the_documented_ws_replies_are_read_where_the_table_says() -> None:
    result = WS_DOCS["amend_order"]["result"]
    assert (result[WS.amend.order_id], result[WS.amend_id]) == ("OAIYAU-LGI3M-PFM5VW",
                                                                "1M2JV8-OEJZD-G5GSBF")  # fmt: skip
    # add_order's documented reply (facts 4.1) and edit_order's (facts 4.2)
    assert messages.ws_added({"order_id": "AA5JGQ-SBMRC-SCJ7J7", "order_userref": 1}) == (
        "AA5JGQ-SBMRC-SCJ7J7")  # fmt: skip
    edited = {"order_id": "NEW", "original_order_id": "OLD"}
    assert (messages.ws_edited(edited), edited[WS.edited_from]) == ("NEW", "OLD")
    assert messages.ws_batch_added([{"order_id": "A"}, {"error": "x"}]) == ["A", None]


def test_amends_are_spelt_alike_on_both_apis_and_the_venue_parses_that_spelling() -> None:
    assert REST.amend.order_id == "txid" and WS.amend.order_id == "order_id"
    for name in ("limit", "qty", "trigger", "display", "post_only"):
        assert getattr(REST.amend, name) == getattr(WS.amend, name)
    by_change = {change: key for change, key, _ in messages.AMEND_FIELDS}
    assert by_change == {"qty": REST.amend.qty, "price": REST.amend.limit,
                         "trigger": REST.amend.trigger, "display": REST.amend.display}  # fmt: skip


def test_a_ws_reply_is_read_as_the_venue_writes_it() -> None:
    ok = json.loads(ws.reply_ok("add_order", 4, {"order_id": "OX"}, 1.0, 2.0))
    assert ws.read_reply(ok) == (None, {"order_id": "OX"})
    refused = json.loads(ws.reply_error("add_order", 4, "EOrder:Insufficient funds", 1.0, 2.0))
    assert ws.read_reply(refused) == ("EOrder:Insufficient funds", None)
    assert ws.read_reply({"method": "add_order", "success": "true"})[0] == "no error given"
    assert ws.read_reply({"success": False}, "subscribe refused")[0] == "subscribe refused"
