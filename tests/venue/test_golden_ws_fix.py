"""Kraken's documented WebSocket v2 and FIX examples as golden vectors (tests/golden/
kraken_ws_fix.json): the venue answers each documented request in the documented shape, and the
traders' decoders read each documented response."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from loadgen.clients import ws as ws_client
from loadgen.clients.net import Stamp
from loadgen.outcome import OK
from loadgen.protocol import messages
from tests.clients import fix_time, text
from tests.venue.test_golden import shape_problems

GOLDEN = json.loads((Path(__file__).parent.parent / "golden" / "kraken_ws_fix.json").read_text())
WS, FIX = GOLDEN["ws"], GOLDEN["fix"]


def test_ping_is_answered_in_the_documented_shape(ws: Any) -> None:
    client = ws()
    doc = WS["ping"]
    client.send(doc["request"])
    got = client.reply(doc["request"]["req_id"])
    assert shape_problems(doc["response"], got, set()) == []


def test_the_documented_executions_subscription_and_its_pending_new(ws: Any) -> None:
    client = ws()
    request = WS["subscribe_executions"]["request"]
    ack = client.call("subscribe", {k: v for k, v in request["params"].items() if k != "token"})
    assert ack["success"] and set(WS["subscribe_executions"]["result_keys"]) <= set(ack["result"])
    doc = WS["executions_pending_new"]["message"]
    entry = doc["data"][0]
    client.call("add_order", {"order_type": "limit", "side": entry["side"], "symbol": "BTC/USD",
                              "order_qty": entry["order_qty"], "limit_price": 260000.0,
                              "order_userref": entry["order_userref"]})  # fmt: skip
    got = client.channel("executions", lambda m: m["type"] == "update")
    assert got["data"][0]["exec_type"] == "pending_new"
    assert shape_problems(doc, got, set()) == []
    assert got["data"][0]["time_in_force"] == entry["time_in_force"]  # "GTC", as documented
    client.call("cancel_all")


def test_amend_order_answers_with_the_documented_result(ws: Any) -> None:
    client = ws()
    placed = client.call("add_order", {"order_type": "limit", "side": "sell", "symbol": "BTC/USD",
                                       "order_qty": 0.01, "limit_price": 250000.0})  # fmt: skip
    got = client.call("amend_order", {"order_id": placed["result"]["order_id"],
                                      "order_qty": 0.02})  # fmt: skip
    assert got["success"], got
    assert shape_problems(WS["amend_order"]["result"], got["result"], set()) == []
    client.call("cancel_all")


def test_the_ws_trader_reads_documented_replies() -> None:
    times = {k: WS["ping"]["response"][k] for k in ("time_in", "time_out")}
    reply = {"method": "amend_order", "req_id": 7, "success": True,
             "result": WS["amend_order"]["result"], **times}  # fmt: skip
    outcome = ws_client._outcome("amend", None, reply, 0, Stamp(10_000), "")
    assert outcome.outcome == OK
    added = ws_client._outcome("add", messages.ws_added, {**reply, "method": "add_order"}, 0,
                               Stamp(10_000), "")  # fmt: skip
    assert added.detail == "OAIYAU-LGI3M-PFM5VW"
    update = json.dumps(WS["executions_pending_new"]["message"]).encode()
    assert not ws_client._ends_order(update)  # pending_new: the order lives on
    for end in ("filled", "canceled", "expired"):  # the same update, spaced or compact, ending it
        ended = dict(WS["executions_pending_new"]["message"])
        ended["data"] = [{**ended["data"][0], "exec_type": end, "order_status": end}]
        assert ws_client._ends_order(json.dumps(ended).encode())
        assert ws_client._ends_order(json.dumps(ended, separators=(",", ":")).encode())


def test_the_documented_new_order_single_is_taken_and_reported(fix: Any) -> None:
    doc = FIX["new_order_single"]
    fields = [tuple(item.split("=", 1)) for item in doc["message"].split("^")[1:]]
    body = [(int(tag), fix_time() if value == "..." else value) for tag, value in fields]
    client = fix()
    client.send("D", body)
    report = client.expect("8", lambda m: text(m, 11) == "1688738168")
    assert (text(report, 150), text(report, 39)) == ("0", "0"), report
    for tag in doc["report_tags"]:
        assert text(report, tag), (tag, report)
    assert float(text(report, 38)) == 0.01 and float(text(report, 44)) == 1000.0
    assert text(report, 55) == "BTC/USD"


def test_a_new_order_single_without_side_gets_the_documented_reject(fix: Any) -> None:
    client = fix()
    client.send("D", [(11, "1688738169"), (38, "0.01"), (40, "2"), (44, "1000"), (55, "BTC/USD"),
                      (59, "1"), (60, fix_time())])  # fmt: skip
    assert text(client.expect("3"), 58) == FIX["reject_missing_side"]["text"]
