"""The matching engine's order types, flags and state, driven directly on clocks the test moves
(no sockets): what the three APIs share, each case exact."""

from __future__ import annotations

from typing import Any

import pytest

from loadgen.venue.accounts import Accounts
from loadgen.venue.book import BUY, SELL
from loadgen.venue.engine import (
    AMENDS_KEPT,
    CLOSED_KEPT,
    E_FUNDS,
    Exchange,
    OrderSpec,
    VenueError,
)
from loadgen.venue.pairs import BALANCE_DECIMALS, PairIndex, catalog

UNIT = 10**BALANCE_DECIMALS


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0
        self.timers: list[tuple[float, Any]] = []

    def later(self, delay: float, fn: Any) -> None:
        self.timers.append((self.now + delay, fn))

    def advance(self, seconds: float) -> None:
        self.now += seconds
        due = [t for t in self.timers if t[0] <= self.now]
        self.timers = [t for t in self.timers if t[0] > self.now]
        for _, fn in due:
            fn()


@pytest.fixture
def world() -> tuple[Exchange, list[Any], Any, Clock]:
    clock = Clock()
    pairs = PairIndex(catalog(20))
    exchange = Exchange(pairs, mono=lambda: clock.now, wall=lambda: clock.now)
    exchange.call_later = clock.later
    keys = Accounts.generate(6, "unlimited").all
    pair = pairs.get("A001USD")  # 4 price decimals, ordermin 1
    exchange.tape(pair).last = 30_000  # the market last traded at 3.0
    return exchange, keys, pair, clock


def spec(pair: Any, side: str, qty: float, price: float = 0.0, kind: str = "", **kw: Any) -> Any:
    kind = kind or ("limit" if price else "market")
    return OrderSpec(pair, side, kind, round(qty * 1e8), round(price * 1e4), **kw)


def test_take_profit_limit_triggers_when_the_price_falls_to_it(world: Any) -> None:
    exchange, (a, b, c, d, *_), pair, _ = world
    tp = exchange.add_order(a, spec(pair, BUY, 2, 2.5, "take-profit-limit", trigger=20_000))
    assert tp.armed and tp.status == "open" and not exchange.book(pair).bids.levels
    exchange.add_order(b, spec(pair, SELL, 1, 2.1))
    exchange.add_order(c, spec(pair, BUY, 1, 2.1))  # last 2.1: not yet down to 2.0
    assert tp.armed
    exchange.add_order(d, spec(pair, SELL, 5, 2.0))
    exchange.add_order(c, spec(pair, BUY, 1, 2.0))  # last 2.0: it triggers ...
    assert not tp.armed and tp.filled == tp.qty  # ... and buys d's 2.0, under its 2.5 limit
    assert tp.cost == 2 * 10**8 * 20_000


def test_a_trigger_amend_rearms_and_a_cascade_stops(world: Any) -> None:
    exchange, (a, b, c, d, e, _), pair, _ = world
    exchange.add_order(d, spec(pair, BUY, 10, 1.0))  # a deep bid the stops sell into
    s1 = exchange.add_order(a, spec(pair, SELL, 1, 0, "stop-loss", trigger=15_000))
    s2 = exchange.add_order(e, spec(pair, SELL, 1, 0, "stop-loss", trigger=12_000))
    exchange.amend_order(a, s1, trigger=11_000)  # now below s2's
    exchange.add_order(b, spec(pair, SELL, 1, 1.2))
    exchange.add_order(c, spec(pair, BUY, 1, 1.2))  # last 1.2: s2 fires, sells at 1.0 ...
    assert not s2.armed and s2.filled == s2.qty
    assert not s1.armed and s1.filled == s1.qty  # ... which takes the price to s1's 1.1
    assert exchange.tape(pair).last == 10_000
    assert not exchange.triggers[pair.altname]  # nothing armed is left


def test_gtd_expires_and_fok_fills_whole_or_not_at_all(world: Any) -> None:
    exchange, (a, b, *_), pair, clock = world
    gtd = exchange.add_order(a, spec(pair, SELL, 3, 5.0, tif="gtd", expire=clock.now + 30))
    clock.advance(29)
    assert gtd.status == "open"
    clock.advance(2)
    assert gtd.status == "expired" and gtd.txid in a.closed and not a.orders
    exchange.add_order(a, spec(pair, SELL, 2, 5.0))
    kill = exchange.add_order(b, spec(pair, BUY, 3, 5.0, tif="fok"))
    assert kill.status == "canceled" and kill.filled == 0 and kill.reason == "Fill or kill"
    fill = exchange.add_order(b, spec(pair, BUY, 2, 5.0, tif="fok"))
    assert fill.status == "filled"


def test_viqc_buys_what_the_quote_amount_takes(world: Any) -> None:
    exchange, (a, b, *_), pair, _ = world
    exchange.add_order(a, spec(pair, SELL, 2, 5.0))
    exchange.add_order(a, spec(pair, SELL, 10, 6.0))
    # 22 quote: 2 at 5.0 (10) and 2 at 6.0 (12)
    buy = exchange.add_order(b, spec(pair, BUY, 0, quote_cost=22 * 10**8 * 10**4))
    assert buy.qty == 4 * 10**8 and buy.filled == buy.qty
    assert buy.cost == (2 * 50_000 + 2 * 60_000) * 10**8


def test_stp_cancel_both_and_cancel_newest(world: Any) -> None:
    exchange, (a, *_), pair, _ = world
    resting = exchange.add_order(a, spec(pair, SELL, 1, 5.0))
    both = exchange.add_order(a, spec(pair, BUY, 1, 5.0, stp="cancel-both"))
    assert resting.status == "canceled" and both.status == "canceled"
    resting = exchange.add_order(a, spec(pair, SELL, 1, 5.0))
    newest = exchange.add_order(a, spec(pair, BUY, 1, 5.0))
    assert resting.status == "open" and newest.reason == "Self trade prevention"


def test_fees_and_balances_and_insufficient_funds(world: Any) -> None:
    exchange, (a, b, *_), pair, _ = world
    start = a.start_balance
    exchange.add_order(a, spec(pair, SELL, 10, 2.0))  # maker: 0.16%
    exchange.add_order(b, spec(pair, BUY, 10, 2.0))  # taker: 0.26%
    assert a.balance(pair.quote_id) == start + 20 * UNIT - 20 * UNIT * 16 // 10_000
    assert a.balance(pair.base_id) == start - 10 * UNIT
    assert b.balance(pair.quote_id) == start - 20 * UNIT - 20 * UNIT * 26 // 10_000
    b.balances[pair.quote_id] = 5 * UNIT  # 5 quote left: a 10-unit buy is more than it has
    with pytest.raises(VenueError) as refused:
        exchange.add_order(b, spec(pair, BUY, 5, 2.0))
    assert refused.value.message == E_FUNDS


def test_histories_are_bounded(world: Any) -> None:
    exchange, (a, *_), pair, _ = world
    order = exchange.add_order(a, spec(pair, BUY, 1, 1.0))
    for i in range(AMENDS_KEPT + 20):
        exchange.amend_order(a, order, qty=10**8 + (i % 2) * 10**8)
    assert order.amends is not None and len(order.amends) == AMENDS_KEPT
    assert order.amends[0][1] == "original" and order.amends[-1][1] == "user"
    assert order.amends[-1][0].startswith("T")  # Kraken-shaped amend ids: TEZA4R-DSDGT-IJBOJK
    for _ in range(CLOSED_KEPT + 50):
        exchange.cancel_order(a, [exchange.add_order(a, spec(pair, BUY, 1, 1.0))])
    assert len(a.closed) == CLOSED_KEPT


def test_one_taker_against_many_makers_reports_running_totals(world: Any) -> None:
    """Each trade event carries the order's totals as of that fill, and only the last fill
    says filled (before, a taker that met three makers reported `filled` three times)."""
    exchange, (a, b, c, d, *_), pair, _ = world
    events: list[Any] = []

    class Listener:
        def on_events(self, batch: list[Any]) -> None:
            events.extend(batch)

    d.listeners.append(Listener())
    for maker in (a, b, c):
        exchange.add_order(maker, spec(pair, SELL, 1, 5.0))
    exchange.add_order(d, spec(pair, BUY, 3, 5.0))
    exchange.flush()
    trades = [e for e in events if e.kind == "trade"]
    assert [e.filled // 10**8 for e in trades] == [1, 2, 3]
    assert [e.status for e in trades] == ["partially_filled", "partially_filled", "filled"]
    assert [e.kind for e in events].count("filled") == 1
