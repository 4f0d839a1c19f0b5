"""protocol/messages.py, the one table of Kraken's order messages that the traders write by
and the venue parses by, held against Kraken's own documented examples (tests/golden)."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

from loadgen.protocol import messages, ws
from loadgen.protocol.messages import REST, WS

GOLDEN = Path(__file__).parent.parent / "golden"
REST_DOCS = {e["name"]: e for e in json.loads((GOLDEN / "kraken_rest.json").read_text())["rest"]}
WS_DOCS = json.loads((GOLDEN / "kraken_ws_fix.json").read_text())["ws"]


def _words(obj: object) -> set[str]:
    return {getattr(obj, f.name) for f in fields(obj)} - {""}  # type: ignore[arg-type]


def test_every_field_of_the_documented_rest_add_and_edit_is_a_word_of_the_table() -> None:
    assert set(REST_DOCS["AddOrder"]["request"]) <= _words(REST.order)
    assert set(REST_DOCS["EditOrder"]["request"]) <= _words(REST.order) | _words(REST.edit)


def test_the_documented_rest_replies_are_read_where_the_table_says() -> None:
    added = REST_DOCS["AddOrder"]["response"]["result"]
    assert messages.rest_added(added) == "OUF4EM-FRGI2-MQMWZD"
    edited = REST_DOCS["EditOrder"]["response"]["result"]
    assert messages.rest_edited(edited) == "OYVGEW-VYV5B-UUEXSK"
    assert messages.rest_batch_added({"orders": [{"txid": "A"}, {"error": "x"}]}) == ["A", None]
    assert messages.count({"count": 3, "pending": False}, REST) == 3
    assert messages.count({"count": "3"}, REST) is None  # not a number: nothing read


def test_the_documented_ws_execution_names_the_order_as_add_order_does() -> None:
    update = WS_DOCS["executions_pending_new"]["message"]["data"][0]
    order = WS.order
    for word in (order.pair, order.side, order.type, order.qty, order.limit, order.tif,
                 order.userref, messages.EXEC_ORDER_ID, messages.EXEC_TYPE):  # fmt: skip
        assert word in update, word
    assert update[messages.EXEC_TYPE] not in messages.ENDING_EXEC_TYPES  # pending_new lives on


def test_the_documented_ws_amend_reply_names_the_order_by_the_amend_id_word() -> None:
    result = WS_DOCS["amend_order"]["result"]
    assert result[WS.amend.order_id] == "OAIYAU-LGI3M-PFM5VW"
    assert messages.ws_added({"order_id": "OAIYAU-LGI3M-PFM5VW"}) == "OAIYAU-LGI3M-PFM5VW"
    assert messages.ws_batch_added([{"order_id": "A"}, {"error": "x"}]) == ["A", None]


def test_amends_are_spelt_alike_on_both_apis_and_the_venue_parses_that_spelling() -> None:
    assert REST.amend.order_id == "txid" and WS.amend.order_id == "order_id"
    for name in ("limit", "qty", "trigger", "display", "post_only"):
        assert getattr(REST.amend, name) == getattr(WS.amend, name)
    parsed = {key for _, key, _ in messages.AMEND_FIELDS}
    assert parsed == {REST.amend.qty, REST.amend.limit, REST.amend.trigger, REST.amend.display}


def test_a_ws_reply_is_read_as_the_venue_writes_it() -> None:
    ok = json.loads(ws.reply_ok("add_order", 4, {"order_id": "OX"}, 1.0, 2.0))
    assert ws.read_reply(ok) == (None, {"order_id": "OX"})
    refused = json.loads(ws.reply_error("add_order", 4, "EOrder:Insufficient funds", 1.0, 2.0))
    assert ws.read_reply(refused) == ("EOrder:Insufficient funds", None)
    assert ws.read_reply({"method": "add_order", "success": "true"})[0] == "no error given"
