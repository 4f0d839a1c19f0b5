"""FIX 4.4 as Kraken documents it (issue 17): required tags, ClOrdIDs, the cancel/replace
lookup, TransactTime on every report, and the order types over FIX, with a raw simplefix peer."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.clients import fix_time, text
from tests.venue.test_fix import cid, er, nos


def test_logon_requires_encrypt_method_and_heartbeat_interval(fix: Any) -> None:
    for tag, name in ((98, "EncryptMethod"), (108, "HeartBtInt")):
        client = fix(logon=False)
        client.logon(omit=(tag,))
        assert text(client.expect("5"), 58) == f"Missing Mandatory Field: {name} ({tag})"
        assert client.recv() is None


@pytest.mark.parametrize("bad", ["ord-1", "0", "1234567890123456789", "12ab"])
def test_a_cl_ord_id_not_in_krakens_form_is_refused(fix: Any, bad: str) -> None:
    client = fix()
    nos(client, bad)
    reject = client.expect("j")
    assert text(reject, 379) == bad
    assert text(reject, 58) == ("EGeneral:Invalid arguments:ClOrdID (11) must be an "
                                "ever-increasing number of up to 18 digits or a UUID")  # fmt: skip


def test_a_cl_ord_id_of_non_ascii_digits_is_refused_and_the_session_lives(fix: Any) -> None:
    """Read as latin-1, byte 0xB2 is '²', a digit to str.isdigit that int() refuses: once an
    internal error that logged the session out."""
    client = fix()
    nos(client, b"\xb2")  # type: ignore[arg-type]  # simplefix writes bytes as they are
    assert "ClOrdID (11) must be an ever-increasing number" in text(client.expect("j"), 58)
    nos(client, cid("after-b2"))
    er(client, "0", cid("after-b2"))


def test_cl_ord_ids_must_rise_and_uuids_are_taken(fix: Any) -> None:
    client = fix()
    first, second = cid("a"), cid("b")
    nos(client, second)
    er(client, "0", second)
    nos(client, first)  # lower than the session's last
    assert "is not above the session's last" in text(client.expect("j"), 58)
    uuid = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"  # Kraken's example (facts 11)
    nos(client, uuid)
    assert text(er(client, "0", uuid), 11) == uuid


def test_new_order_and_cancel_need_their_documented_tags(fix: Any) -> None:
    client = fix()
    client.send("D", [(11, cid("no60")), (54, "1"), (55, "BTC/USD"), (38, "0.01"), (40, "2"),
                      (44, "50000")])  # fmt: skip
    reject = client.expect("3")
    assert text(reject, 58) == "Missing Mandatory Field: TransactTime (60)"
    nos(client, cid("o"))
    er(client, "0", cid("o"))
    client.send("F", [(11, cid("c")), (41, cid("o")), (55, "BTC/USD"), (60, fix_time())])
    assert text(client.expect("3"), 58) == "Missing Mandatory Field: Side (54)"


def test_cancel_replace_needs_37_and_41_of_the_same_order(fix: Any) -> None:
    client = fix()
    nos(client, cid("one"))
    one = text(er(client, "0", cid("one")), 37)
    nos(client, cid("two"))
    two = text(er(client, "0", cid("two")), 37)
    body = [(54, "1"), (55, "BTC/USD"), (38, "0.02"), (40, "2"), (60, fix_time())]
    client.send("G", [(11, cid("r1")), (41, cid("one")), *body])
    assert text(client.expect("3"), 58) == "Missing Mandatory Field: OrderID (37)"
    client.send("G", [(11, cid("r2")), (37, two), (41, cid("one")), *body])
    reject = client.expect("j")
    assert text(reject, 58).startswith("EOrder:Unknown order:OrderID (37) is not the order")
    client.send("G", [(11, cid("r3")), (37, one), (41, cid("one")), *body])
    report = er(client, "5", cid("r3"))
    assert text(report, 37) == one and text(report, 38) == "0.02000000"


def test_every_execution_report_carries_transact_time(fix: Any) -> None:
    client = fix()
    nos(client, cid("t"))
    report = er(client, "0", cid("t"))
    stamp = datetime.strptime(text(report, 60), "%Y%m%d-%H:%M:%S.%f").replace(tzinfo=UTC)
    assert abs(stamp.timestamp() - time.time()) < 5
    assert text(report, 59) == "1"


def test_order_types_over_fix(fix: Any, fresh_pair: Callable[[], str], venue: Any) -> None:
    """Stop-loss (40=3, 99), FOK (59=4), GTD (59=6 + 126), iceberg (1138), STP (7928)."""
    symbol = venue.venue.pairs.get(fresh_pair()).symbol
    stopper, maker, other = fix(), fix(), fix()
    nos(maker, cid("bid"), side="1", price="3.0", qty="5", symbol=symbol)
    er(maker, "0", cid("bid"))
    nos(stopper, cid("stop"), side="2", price="1", qty="2", symbol=symbol, t40="3", t99="4.0")
    armed = er(stopper, "0", cid("stop"))
    assert text(armed, 40) == "3" and text(armed, 99) == "4.0000"
    nos(other, cid("fok"), side="1", price="9.0", qty="1", symbol=symbol, t59="4")
    killed = er(other, "4", cid("fok"))  # nothing to sell: filled completely or not at all
    assert text(killed, 58) == "Fill or kill"
    nos(other, cid("ask"), side="2", price="4.0", qty="1", symbol=symbol)
    er(other, "0", cid("ask"))
    nos(maker, cid("lift"), side="1", price="4.0", qty="1", symbol=symbol)
    er(maker, "F", cid("lift"))  # the last price is now 4.0: the stop triggers and sells at 3.0
    restated = er(stopper, "D", cid("stop"))
    assert text(restated, 40) == "1"  # after the trigger, the resulting model: market
    fill = er(stopper, "F", cid("stop"))
    assert text(fill, 31) == "3.0000" and text(fill, 39) == "2"
    soon = datetime.fromtimestamp(time.time() + 60, UTC).strftime("%Y%m%d-%H:%M:%S.000")
    nos(other, cid("gtd"), side="2", price="7.0", qty="3", symbol=symbol, t59="6", t126=soon,
        t1138="1")  # fmt: skip
    gtd = er(other, "0", cid("gtd"))
    assert text(gtd, 59) == "6" and text(gtd, 1138) == "1.00000000"
    nos(other, cid("self"), side="1", price="7.0", qty="1", symbol=symbol, t7928="2")
    gone = er(other, "4", cid("gtd"))  # STP cancel-oldest: the resting iceberg goes
    assert text(gone, 58) == "Self trade prevention"


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"t40": "U"}, "OrdType (40) trailing-stop is not served"),
        ({"t5001": "2"}, "Leverage (5001)"),
        ({"t18": "E"}, "reduce-only"),
        ({"t168": "20300101-00:00:00"}, "EffectiveTime (168)"),
    ],
)
def test_unserved_fix_features_are_refused_by_name(fix: Any, extra: dict, named: str) -> None:
    client = fix()
    nos(client, cid("x"), **extra)
    assert named in text(client.expect("j"), 58)
