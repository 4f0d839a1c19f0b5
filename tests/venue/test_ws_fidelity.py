"""WebSocket v2 as Kraken documents it (issue 17): the executions channel's sequence and fields,
its subscription options, order types and flags, and what is refused by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.clients import Ws
from tests.venue.test_rest import rfc3339_in
from tests.venue.test_ws import add, failure


def order(symbol: str, side: str = "buy", **fields: Any) -> dict[str, Any]:
    return {"order_type": "limit", "side": side, "limit_price": 5.0, "order_qty": 1.0,
            "symbol": symbol, **fields}  # fmt: skip


def updates(client: Ws, count: int) -> list[dict[str, Any]]:
    """The next `count` executions entries (over as many update messages as they take)."""
    out: list[dict[str, Any]] = []
    while len(out) < count:
        out += client.channel("executions", lambda m: m["type"] == "update")["data"]
    return out


@pytest.fixture
def symbol(fresh_pair: Callable[[], str], venue: Any) -> str:
    return venue.venue.pairs.get(fresh_pair()).symbol


def test_a_trade_event_carries_costs_fees_and_averages(ws: Any, symbol: str) -> None:
    maker, taker = ws(), ws()
    add(maker, "sell", price=2.0, qty=10.0, symbol=symbol)
    taker.call("subscribe", {"channel": "executions", "snap_orders": False})
    add(taker, "buy", price=2.0, qty=10.0, symbol=symbol)
    pending, new, trade, filled = updates(taker, 4)
    assert [e["exec_type"] for e in (pending, new, trade, filled)] == [
        "pending_new", "new", "trade", "filled"]  # fmt: skip
    assert trade["cost"] == pytest.approx(20.0) and trade["cum_cost"] == pytest.approx(20.0)
    assert trade["avg_price"] == pytest.approx(2.0) and trade["liquidity_ind"] == "t"
    quote = symbol.split("/")[1]
    assert trade["fees"] == [{"asset": quote, "qty": pytest.approx(0.052)}]  # 0.26% taker
    assert trade["fee_usd_equiv"] > 0 and trade["fee_ccy_pref"] == "fciq"


def test_subscription_options_order_status_snap_trades_and_ratecounter(
    ws: Any, symbol: str
) -> None:
    maker, taker = ws(), ws()
    add(maker, "sell", price=2.0, qty=3.0, symbol=symbol)
    add(taker, "buy", price=2.0, qty=1.0, symbol=symbol)
    ack = maker.call("subscribe", {"channel": "executions", "snap_trades": True,
                                   "order_status": False, "ratecounter": True})  # fmt: skip
    assert ack["result"]["snap_trades"] is True
    snap = maker.channel("executions", lambda m: m["type"] == "snapshot")
    assert [e.get("exec_type") for e in snap["data"]][-1] == "trade"  # the fill, after orders
    add(maker, "sell", price=9.0, qty=1.0, symbol=symbol)
    (entry,) = updates(maker, 1)  # order_status false: no pending_new, only new
    assert entry["exec_type"] == "new" and entry["ratecount"] > 0
    assert failure(maker.call("subscribe", {"channel": "executions", "snap_trades": "yes"})) == (
        "EGeneral:Invalid arguments:snap_trades")  # fmt: skip


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"limit_price": "5.0"}, "EGeneral:Invalid arguments:limit_price must be a number"),
        ({"stp_type": "cancel_nobody"}, "EGeneral:Invalid arguments:stp_type"),
        (
            {"fee_preference": "base"},
            "EGeneral:Invalid arguments:fee_preference (fees are "
            "charged in the quote currency here)",
        ),
        (
            {"reduce_only": True},
            "EGeneral:Invalid arguments:reduce_only (margin trading is not "
            "served by the embedded venue)",
        ),
        (
            {"margin": True},
            "EGeneral:Invalid arguments:margin (margin trading is not served by "
            "the embedded venue)",
        ),
        (
            {"order_type": "trailing-stop"},
            "EGeneral:Invalid arguments:order_type trailing-stop "
            "is not served by the embedded venue",
        ),
        ({"deadline": "soon"}, "EGeneral:Invalid arguments:deadline"),
        ({"time_in_force": "gtd"}, "EGeneral:Invalid arguments:expire_time"),
    ],
)
def test_unserved_or_bad_fields_are_refused_by_name(ws: Any, symbol: str, fields: dict,
                                                    error: str) -> None:  # fmt: skip
    assert failure(ws().call("add_order", order(symbol, **fields))) == error


def test_deadline_at_least_500_ms_ahead(ws: Any, symbol: str) -> None:
    client = ws()
    near = failure(client.call("add_order", order(symbol, deadline=rfc3339_in(0.2))))
    assert near == "EGeneral:Invalid arguments:deadline (at least 500 ms ahead)"
    assert client.call("add_order", order(symbol, deadline=rfc3339_in(5)))["success"]


def test_batch_cancel_takes_2_to_50_ids(ws: Any, symbol: str) -> None:
    client = ws()
    ids = [add(client, price=4.0, qty=1.0, symbol=symbol)["order_id"] for _ in range(2)]
    one = failure(client.call("batch_cancel", {"orders": ids[:1]}))
    assert one == "EGeneral:Invalid arguments:orders (2 to 50 ids)"
    assert client.call("batch_cancel", {"orders": ids})["result"]["count"] == 2


def test_krakens_edit_order_example_quantity_is_served(ws: Any) -> None:
    """Kraken's edit_order example sends order_qty 0.2123456789 to BTC/USD (8 decimals)."""
    client = ws()
    placed = add(client, price=30000.0, qty=0.1)["order_id"]
    reply = client.call("edit_order", {"order_id": placed, "symbol": "BTC/USD",
                                       "order_qty": 0.2123456789})  # fmt: skip
    assert reply["success"], reply
    assert reply["result"]["original_order_id"] == placed


def test_stop_loss_limit_and_iceberg_over_ws(ws: Any, symbol: str) -> None:
    stopper, maker, seller, buyer = ws(), ws(), ws(), ws()
    add(maker, "buy", price=3.0, qty=5.0, symbol=symbol)
    add(seller, "sell", price=5.0, qty=1.0, symbol=symbol)  # the last price 5.0, whatever the
    add(buyer, "buy", price=5.0, qty=1.0, symbol=symbol)  # pair's reference: the stop waits
    stop = stopper.call("add_order", order(symbol, "sell", order_type="stop-loss-limit",
                                           limit_price=2.5, order_qty=2.0,
                                           triggers={"price": 4.0}))  # fmt: skip
    assert stop["success"], stop
    stopper.call("subscribe", {"channel": "executions", "snap_orders": True})
    snap = stopper.channel("executions", lambda m: m["type"] == "snapshot")
    assert snap["data"][0]["triggers"]["status"] == "untriggered"
    add(seller, "sell", price=4.0, qty=1.0, symbol=symbol)
    add(buyer, "buy", price=4.0, qty=1.0, symbol=symbol)
    kinds = [e["exec_type"] for e in updates(stopper, 3)]
    assert kinds == ["status", "trade", "filled"]  # triggered, then sold into the 3.0 bid
    ice = maker.call("add_order", order(symbol, "sell", order_type="iceberg", limit_price=8.0,
                                        order_qty=6.0, display_qty=2.0))  # fmt: skip
    assert ice["success"], ice
    maker.call("subscribe", {"channel": "executions", "snap_orders": False})
    add(buyer, "buy", price=8.0, qty=2.0, symbol=symbol)
    kinds = [e["exec_type"] for e in updates(maker, 2)]
    assert kinds == ["trade", "iceberg_refill"]


def test_stp_cancel_oldest_cancels_the_resting_order(ws: Any, symbol: str) -> None:
    client = ws()
    resting = add(client, "sell", price=5.0, qty=1.0, symbol=symbol)["order_id"]
    client.call("subscribe", {"channel": "executions", "snap_orders": False})
    add(client, "buy", price=5.0, qty=1.0, symbol=symbol, stp_type="cancel_oldest")
    events = updates(client, 3)  # the buy's pending_new and new, the sell's cancel
    cancelled = [e for e in events if e["exec_type"] == "canceled"]
    assert [e["order_id"] for e in cancelled] == [resting]
    assert cancelled[0]["reason"] == "Self trade prevention"


def test_a_refused_order_is_charged_on_receipt(ws: Any, symbol: str) -> None:
    """Kraken charges the fixed cost "even if the transaction fails validation" (facts 3)."""
    client = ws()
    bad = failure(client.call("add_order", order(symbol, order_qty="1")))
    assert bad == "EGeneral:Invalid arguments:order_qty must be a number"
    sub = client.call("subscribe", {"channel": "executions", "snap_orders": False,
                                    "ratecounter": True})  # fmt: skip
    assert sub["success"]
    add(client, price=4.0, qty=1.0, symbol=symbol)
    entries = updates(client, 2)
    assert entries[-1]["ratecount"] >= 1.9  # the refused add's 1, and this one's


@pytest.mark.parametrize("channel", ["level3", "balances", "spread"])
def test_channels_not_served_are_refused_by_name(ws: Any, channel: str) -> None:
    reply = ws().call("subscribe", {"channel": channel, "symbol": ["BTC/USD"]})
    assert failure(reply) == (f"EGeneral:Invalid arguments:channel '{channel}' is not served "
                              "(only executions, book, ticker, trade, ohlc and instrument)")  # fmt: skip
