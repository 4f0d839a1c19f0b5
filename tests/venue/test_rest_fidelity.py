"""REST as Kraken documents it (issue 17), over loopback with the independent client: pair
names, the charge on receipt, AddOrder's flags and lifetimes, and what is refused by name."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.venue.test_rest import err, ok


def trading_level(venue: Any, api_key: str, pair: str) -> float:
    def read() -> float:
        account = venue.venue.accounts.get(api_key)
        return account.trade_counter(pair).level(venue.venue.exchange.mono())

    return venue.call(read)


def test_every_name_kraken_gives_a_pair_is_taken(rest: Any) -> None:
    client = rest()
    for name in ("XXBTZUSD", "XBTUSD", "XBT/USD", "BTC/USD"):
        placed = client.private("AddOrder", pair=name, type="buy", ordertype="limit",
                                price="30000", volume="0.01", validate="true")  # fmt: skip
        assert ok(placed)["descr"]["order"] == "buy 0.01000000 XBTUSD @ limit 30000.0"


def test_a_refused_order_is_charged_on_receipt(rest: Any, venue: Any) -> None:
    """Kraken charges the fixed cost "even if the transaction fails validation" (facts 3); an
    unknown pair has no counter to charge."""
    client = rest()
    bad = client.private("AddOrder", pair="XBTUSD", type="buy", ordertype="limit",
                         price="30000", volume="lots")  # fmt: skip
    assert err(bad) == "EGeneral:Invalid arguments:volume"
    assert trading_level(venue, client.api_key, "XBTUSD") == pytest.approx(1.0, abs=0.05)
    unknown = client.private("AddOrder", pair="NOPE", type="buy", ordertype="limit",
                             price="1", volume="1")  # fmt: skip
    assert err(unknown) == "EQuery:Unknown asset pair"


def test_viqc_gtd_and_stp_on_addorder(rest: Any, fresh_pair: Callable[[], str]) -> None:
    maker, taker = rest(), rest()
    pair = fresh_pair()
    ok(maker.private("AddOrder", pair=pair, type="sell", ordertype="limit", price="5.0",
                     volume="10"))  # fmt: skip
    bought = ok(taker.private("AddOrder", pair=pair, type="buy", ordertype="market",
                              volume="12.5", oflags="viqc"))["txid"][0]  # fmt: skip
    info = ok(taker.private("QueryOrders", txid=bought))[bought]
    assert info["vol_exec"] == "2.50000000" and info["cost"] == "12.50000"
    expires = int(time.time()) + 600
    gtd = ok(maker.private("AddOrder", pair=pair, type="buy", ordertype="limit", price="1.0",
                           volume="1", timeinforce="GTD", expiretm=str(expires)))  # fmt: skip
    info = ok(maker.private("QueryOrders", txid=gtd["txid"][0]))[gtd["txid"][0]]
    assert info["expiretm"] == pytest.approx(expires)
    short = maker.private("AddOrder", pair=pair, type="buy", ordertype="limit", price="1.0",
                          volume="1", expiretm="+1")  # fmt: skip
    assert err(short) == "EGeneral:Invalid arguments:expiretm"  # at least 5 s ahead
    both = maker.private("AddOrder", pair=pair, type="buy", ordertype="limit", price="5.0",
                         volume="1", stptype="cancel-both")  # fmt: skip
    txid = ok(both)["txid"][0]
    info = ok(maker.private("QueryOrders", txid=txid))[txid]
    assert info["status"] == "canceled" and info["reason"] == "Self trade prevention"


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"ordertype": "settle-position"}, "ordertype settle-position is not served"),
        ({"trigger": "index", "ordertype": "stop-loss"}, "Index unavailable"),
        ({"displayvol": "1"}, "displayvol is for iceberg orders only"),
        ({"ordertype": "iceberg"}, "EGeneral:Invalid arguments:displayvol"),
        ({"ordertype": "stop-loss-limit"}, "EGeneral:Invalid arguments:price2"),
        ({"oflags": "viqc"}, "oflags viqc is for buy market orders only"),
        ({"oflags": "bogus"}, "EGeneral:Invalid arguments:oflags bogus"),
        ({"asset_class": "tokenized_asset"}, "asset_class (only currency pairs are served"),
        ({"stptype": "cancel-nobody"}, "EGeneral:Invalid arguments:stptype"),
        ({"timeinforce": "GTD"}, "EGeneral:Invalid arguments:expiretm"),
        ({"price": "1"}, "EOrder:Cost minimum not met"),  # 0.01 XBT at 1 USD: under 0.5
    ],
)
def test_addorder_refusals_name_the_field(rest: Any, fields: dict, error: str) -> None:
    params = {"pair": "XBTUSD", "type": "buy", "ordertype": "limit", "price": "30000",
              "volume": "0.01", **fields}  # fmt: skip
    assert error in err(rest().private("AddOrder", **params))


def test_public_query_parameters(rest: Any) -> None:
    client = rest()
    assert set(client.public("Assets?asset=XBT,ZUSD")["result"]) == {"XXBT", "ZUSD"}
    assert client.public("Assets?asset=NOPE")["error"] == ["EQuery:Unknown asset"]
    fees = client.public("AssetPairs?pair=XBT/USD&info=fees")["result"]["XBT/USD"]  # as asked
    assert set(fees) == {"fees", "fees_maker", "fee_volume_currency"}
    assert client.public("Depth?pair=XBTUSD&count=0")["error"] == [
        "EGeneral:Invalid arguments:count"]  # fmt: skip
    assert client.public("OHLC?pair=XBTUSD&interval=7")["error"] == [
        "EGeneral:Invalid arguments:interval"]  # fmt: skip
    assert client.public("Depth")["error"] == ["EGeneral:Invalid arguments:pair"]
    status, unknown = client.raw("GET", "/0/public/Spread?pair=XBTUSD")
    assert (status, unknown) == (404, {"error": ["EGeneral:Unknown method"]})
