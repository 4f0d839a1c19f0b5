"""Kraken's documented examples as golden vectors (tests/golden/): the venue answers each
documented request in the documented shape, and the traders' decoders read each documented
response."""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from loadgen.clients import rest as rest_client
from loadgen.flow.market import Market
from loadgen.outcome import OK
from loadgen.protocol import messages
from tests.clients import Rest

GOLDEN = json.loads((Path(__file__).parent.parent / "golden" / "kraken_rest.json").read_text())
REST = {entry["name"]: entry for entry in GOLDEN["rest"]}
NUMBER = (int, float)


# Lists the venue leaves empty where Kraken's example has entries: no margin is served, and
# Kraken lists [] for a pair without margin.
EMPTY_OK = {".result.*.leverage_buy", ".result.*.leverage_sell"}


def shape_problems(doc: Any, got: Any, keyed: set[str], path: str = "") -> list[str]:
    """Where `got` lacks the documented shape of `doc`: a missing key, another JSON type, a
    shorter row. Objects keyed by ids (`keyed` paths) are compared entry to entry."""
    where = path or "."
    if isinstance(doc, dict):
        if not isinstance(got, dict):
            return [f"{where}: an object was documented, got {type(got).__name__}"]
        if path in keyed:
            if not got:
                return [f"{where}: empty, an entry was documented"]
            sample = next(iter(doc.values()))
            return [p for key, value in got.items()
                    for p in shape_problems(sample, value, keyed, f"{path}.*")][:5]  # fmt: skip
        problems = [f"{where}: no {key!r}" for key in doc if key not in got]
        for key, value in doc.items():
            if key in got:
                problems += shape_problems(value, got[key], keyed, f"{path}.{key}")
        return problems
    if isinstance(doc, list):
        if not isinstance(got, list):
            return [f"{where}: a list was documented, got {type(got).__name__}"]
        if not doc or not got:
            empty_ok = not doc or path in EMPTY_OK
            return [] if empty_ok else [f"{where}: empty, entries were documented"]
        if all(not isinstance(item, (dict, list)) for item in doc):  # a row: index by index
            if len(got) < len(doc):
                return [f"{where}: {len(got)} fields, {len(doc)} documented"]
            return [p for i, item in enumerate(doc)
                    for p in shape_problems(item, got[i], keyed, f"{path}[{i}]")]  # fmt: skip
        return shape_problems(doc[0], got[0], keyed, f"{path}[0]")
    if doc is None:
        return []
    if isinstance(doc, NUMBER) and not isinstance(doc, bool):
        ok = isinstance(got, NUMBER) and not isinstance(got, bool)
    else:
        ok = type(got) is type(doc)
    return [] if ok else [f"{where}: {type(doc).__name__} documented, got {got!r}"]


def test_the_shape_check_can_fail() -> None:
    doc = {"result": {"X": {"a": ["1", 2], "b": 1.5}}}
    assert shape_problems(doc, doc, {".result"}) == []
    assert shape_problems(doc, {"result": {"Y": {"a": ["1", "2"], "b": 1}}}, {".result"}) == [
        ".result.*.a[1]: int documented, got '2'"]  # fmt: skip
    assert shape_problems(doc, {"result": {"Y": {"a": ["1"]}}}, {".result"}) == [
        ".result.*: no 'b'", ".result.*.a: 1 fields, 2 documented"]  # fmt: skip


@pytest.fixture
def busy_xbt(rest: Any) -> Rest:
    """A key with a resting bid and ask on XBTUSD after one trade there, so every market-data
    answer has entries to compare."""
    maker, taker = rest(), rest()
    for side, price in (("sell", "60010.0"), ("buy", "59990.0"), ("sell", "60005.0")):
        assert maker.private("AddOrder", pair="XBTUSD", type=side, ordertype="limit",
                             price=price, volume="0.01")["error"] == []  # fmt: skip
    assert taker.private("AddOrder", pair="XBTUSD", type="buy", ordertype="market",
                         volume="0.01")["error"] == []  # fmt: skip
    return maker


def _answer(entry: dict[str, Any], client: Rest) -> Any:
    request = dict(entry["request"])
    if entry["private"]:
        return client.private(entry["name"], as_json=entry.get("json", False), **request)
    return client.public(f"{entry['name']}?{urllib.parse.urlencode(request)}")


@pytest.mark.parametrize("name", [n for n, e in REST.items() if not e.get("txid_of_a_resting_order")
                                  and not e.get("txids_of_own_orders")])  # fmt: skip
def test_the_venue_answers_a_documented_request_in_the_documented_shape(
    name: str, busy_xbt: Rest
) -> None:
    entry = REST[name]
    got = _answer(entry, busy_xbt)
    assert got["error"] == [], got
    assert shape_problems(entry["response"], got, {f".{k}" for k in entry["keyed"]}) == []


def test_documented_edit_and_query_requests_on_the_keys_own_orders(rest: Any) -> None:
    client = rest()
    placed = [client.private("AddOrder", pair="XBTUSD", type="buy", ordertype="limit",
                             price=f"4500{i}.0", volume="2.1234")["result"]["txid"][0]
              for i in range(2)]  # fmt: skip
    edit = REST["EditOrder"]
    got = client.private("EditOrder", **{**edit["request"], "txid": placed[0]})
    assert got["error"] == [], got
    assert shape_problems(edit["response"], got, set()) == []
    assert got["result"]["descr"]["order"] == "buy 2.12340000 XBTUSD @ limit 45000.1"
    query = REST["QueryOrders"]
    txids = [got["result"]["txid"], placed[1]]
    got = client.private("QueryOrders", **{**query["request"], "txid": ",".join(txids)})
    assert got["error"] == [] and set(got["result"]) == set(txids), got
    assert shape_problems(query["response"], got, {".result"}) == []


def test_the_traders_read_documented_responses() -> None:
    """The REST trader's decoders, fed Kraken's own examples."""
    add = REST["AddOrder"]["response"]
    outcome = rest_client._outcome("add", messages.rest_added, 0, 10, add["error"],
                                   add["result"], "", 0, "user")  # fmt: skip
    assert (outcome.outcome, outcome.detail) == (OK, "OUF4EM-FRGI2-MQMWZD")
    edit = REST["EditOrder"]["response"]
    outcome = rest_client._outcome("edit", messages.rest_edited, 0, 10, [], edit["result"], "", 0,
                                   "user")  # fmt: skip
    assert outcome.detail == "OYVGEW-VYV5B-UUEXSK"
    tick = REST["Ticker"]["response"]["result"]["XXBTZUSD"]
    assert rest_client._ticker_price(tick) == 3537.5
    pairs = REST["AssetPairs"]["response"]["result"]
    xbt = Market.from_asset_pair(pairs["XXBTZUSD"], 3537.5)
    eth = Market.from_asset_pair(pairs["XETHXXBT"], 0.05)
    assert (xbt.name, xbt.symbol, xbt.price_decimals, xbt.min_lots) == ("XBTUSD", "BTC/USD", 1,
                                                                        10_000)  # fmt: skip
    assert (eth.name, eth.symbol) == ("ETHXBT", "ETH/BTC")
    refused = rest_client._outcome("add", messages.rest_added, 0, 10,
                                   ["EOrder:Rate limit exceeded"], None, "", 0, "user")  # fmt: skip
    assert refused.outcome == "rate_limited"
