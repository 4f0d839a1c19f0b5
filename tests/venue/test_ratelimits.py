"""Rate limits end to end: each tier, shared by REST, WS and FIX, with age-based penalties.

This module's venue runs its engine on a clock the test moves, so decay happens only when a
test says so and every count below is exact (real time would let a slow machine decay a point).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator

import pytest

from loadgen.venue.app import VenueConfig, VenueThread
from tests.clients import Fix, Rest, Ws, fix_time, text
from tests.conftest import fix_address

PAIR, SYMBOL = "XBTUSD", "BTC/USD"
TIER_OF = ["starter", "intermediate", "pro"]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def limited() -> Iterator[tuple[VenueThread, Clock]]:
    clock = Clock()
    thread = VenueThread(VenueConfig(keys=60, tiers=TIER_OF, pairs=20, keys_file=None))
    thread.venue.exchange.mono = clock
    thread.start()
    yield thread, clock
    thread.stop()


@pytest.fixture(scope="module")
def keys(limited):
    venue, _ = limited
    pool: dict[str, list] = {t: [] for t in TIER_OF}
    for account in venue.venue.accounts.all:
        pool[account.tier.name].append(account)
    return pool


@pytest.fixture
def trader(limited, keys):
    """trader(tier) -> (account, REST client) for a key no other test has used."""
    venue, _ = limited
    made: list[Rest] = []

    def make(tier: str):
        account = keys[tier].pop()
        made.append(Rest(venue.endpoints["rest"], account.api_key, account.secret_b64))
        return account, made[-1]

    yield make
    for rest in made:
        rest.close()


def charged(venue: VenueThread, account) -> float:
    """Everything the key's XBTUSD counter was ever charged (costs, without decay)."""
    return venue.call(lambda: account.trade_counter(PAIR).total)


def add(rest: Rest, price: str = "30000") -> dict:
    return rest.private(
        "AddOrder", pair=PAIR, type="buy", ordertype="limit", price=price, volume="0.01"
    )


_cl_numbers = itertools.count(time.time_ns() // 1000)


def fix_buy(fix: Fix) -> str:
    """A buy with a ClOrdID in Kraken's form (an ever-increasing number); returns it."""
    cl_ord_id = str(next(_cl_numbers))
    fields = [(11, cl_ord_id), (54, "1"), (55, SYMBOL), (38, "0.01"), (40, "2"), (44, "30000")]
    fix.send("D", [*fields, (60, fix_time())])
    return cl_ord_id


def level(venue: VenueThread, account, clock: Clock) -> float:
    return venue.call(lambda: account.trade_counter(PAIR).level(clock.now))


@pytest.mark.parametrize(
    ("tier", "threshold", "decay"),
    [("starter", 60, 1.0), ("intermediate", 125, 2.34), ("pro", 180, 3.75)],
)
def test_each_tier_refuses_exactly_past_its_threshold(limited, trader, tier, threshold, decay):
    """Place-and-cancel pairs (1 + 8) and then adds up to the threshold; the next add is refused;
    after 1/decay seconds there is room for exactly one more."""
    venue, clock = limited
    account, rest = trader(tier)
    pairs, adds = divmod(threshold, 9)
    for _ in range(pairs):
        txid = add(rest)["result"]["txid"][0]
        assert rest.private("CancelOrder", txid=txid)["error"] == []
    for _ in range(adds):
        assert add(rest)["error"] == []
    assert level(venue, account, clock) == threshold
    assert add(rest) == {"error": ["EOrder:Rate limit exceeded"]}
    clock.now += 1 / decay
    assert add(rest)["error"] == []
    assert add(rest) == {"error": ["EOrder:Rate limit exceeded"]}


def test_pro_published_example_20_place_cancel_pairs(limited, trader):
    venue, clock = limited
    account, rest = trader("pro")
    txids = [add(rest)["result"]["txid"][0] for _ in range(20)]
    clock.now += 2.9  # each cancelled "within 3 s" of its placing
    for txid in txids:
        assert rest.private("CancelOrder", txid=txid)["error"] == []
    assert charged(venue, account) == 180


def test_counter_is_shared_by_rest_ws_and_fix(limited, trader):
    venue, clock = limited
    account, rest = trader("pro")
    token = rest.private("GetWebSocketsToken")["result"]["token"]
    ws = Ws(venue.endpoints["ws"], token)
    fix = Fix(fix_address(venue), account.fix_comp_ids[0], account.api_key, account.secret_b64)
    fix.logon()
    fix.expect("A")
    order = {
        "order_type": "limit",
        "side": "buy",
        "limit_price": 30000.0,
        "order_qty": 0.01,
        "symbol": SYMBOL,
    }
    for _ in range(60):
        assert add(rest)["error"] == []
        assert ws.call("add_order", order)["success"]
        fix_buy(fix)
        fix.expect("8", lambda m: text(m, 150) == "0")
    assert level(venue, account, clock) == 180
    assert add(rest) == {"error": ["EOrder:Rate limit exceeded"]}
    refused = ws.call("add_order", order)
    assert refused["success"] is False and refused["error"] == "EOrder:Rate limit exceeded"
    over = fix_buy(fix)
    reject = fix.expect("j")
    assert text(reject, 58) == "EOrder:Rate limit exceeded" and text(reject, 380) == "0"
    assert text(reject, 379) == over
    # Other pairs are unaffected (the counter is per pair).
    other = rest.private(
        "AddOrder", pair="ETHUSD", type="buy", ordertype="limit", price="100", volume="0.01"
    )
    assert other["error"] == []
    ws.close()
    fix.close()


def test_cancel_penalty_depends_on_order_age(limited, trader):
    venue, clock = limited
    account, rest = trader("pro")
    txid = add(rest)["result"]["txid"][0]
    clock.now += 8.0
    start = level(venue, account, clock)
    assert rest.private("CancelOrder", txid=txid)["error"] == []
    assert level(venue, account, clock) - start == 6  # cancel at 8 s: +6 (S9)


def test_add_amend_at_7s_cancel_36s_later_costs_8(limited, trader):
    venue, clock = limited
    account, rest = trader("pro")
    txid = add(rest)["result"]["txid"][0]
    clock.now += 7.0
    assert rest.private("AmendOrder", txid=txid, order_qty="0.02")["error"] == []
    clock.now += 36.0
    assert rest.private("CancelOrder", txid=txid)["error"] == []
    assert charged(venue, account) == 8


def test_edit_penalty(limited, trader):
    venue, clock = limited
    account, rest = trader("pro")
    txid = add(rest)["result"]["txid"][0]
    clock.now += 20.0  # edit at 20 s: fixed 1 + 2
    before = charged(venue, account)
    assert rest.private("EditOrder", txid=txid, pair=PAIR, price="29000")["error"] == []
    assert charged(venue, account) - before == 3


def test_batch_cancel_accepted_over_threshold(limited, trader):
    venue, clock = limited
    account, rest = trader("starter")
    txids = [add(rest)["result"]["txid"][0] for _ in range(60)]
    assert add(rest) == {"error": ["EOrder:Rate limit exceeded"]}
    reply = rest.private("CancelOrderBatch", orders=[{"txid": t} for t in txids[:10]])
    assert reply == {"error": [], "result": {"count": 10}}
    assert level(venue, account, clock) == 60 + 10 * 8


def test_rest_call_counter_per_tier(limited, trader):
    _, clock = limited
    _, rest = trader("starter")  # REST counter: 15, decays 0.33/s
    for _ in range(15):
        assert rest.private("OpenOrders")["error"] == []
    assert rest.private("OpenOrders") == {"error": ["EAPI:Rate limit exceeded"]}
    clock.now += 1 / 0.33
    assert rest.private("OpenOrders")["error"] == []
