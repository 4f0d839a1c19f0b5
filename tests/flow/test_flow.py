"""The order-flow model: deterministic, honest about what is live, shaped as configured."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from loadgen.flow.market import BUY, Market, PriceWalk
from loadgen.flow.mix import DEFAULT_WEIGHTS, MixError, OpMix
from loadgen.flow.model import BATCH_ADD_MAX, FlowModel
from loadgen.venue.pairs import catalog

BTC = Market("XBTUSD", "BTC/USD", 1, 8, 0.0001, 60000.0)
ETH = Market("ETHUSD", "ETH/USD", 2, 8, 0.002, 3000.0)


def drive(model: FlowModel, steps: int, accept: float = 1.0, seed: int = 7) -> Counter:
    """A stand-in venue that accepts a share of requests; returns the ops sent. It checks, at
    every step, that every target the model names is live (confirmed and not gone)."""
    venue_rng = random.Random(seed)
    ops: Counter = Counter()
    for step in range(steps):
        now = float(step)
        action = model.next_action(now)
        ops[action.op] += 1
        for target in action.targets:
            assert model.orders.by_cl_ord_id.get(target.cl_ord_id) is target
        if venue_rng.random() > accept:
            continue
        if action.op in ("add", "batch_add"):
            for order in action.new:
                model.placed(order, f"TX{order.cl_ord_id}", now)
        elif action.op in ("cancel", "batch_cancel"):
            for order in action.targets:
                model.gone(order)
        elif action.op == "cancel_all":
            model.all_gone()
        elif action.op == "amend":
            model.amended(action.targets[0], action.price, action.qty, now)
        elif action.op == "edit":
            model.replaced(action.targets[0], f"TX{step}", action.price, action.qty, now)
    return ops


def test_same_seed_same_flow():
    runs = []
    for _ in range(2):
        model = FlowModel([BTC, ETH], seed=42, user=3)
        actions = []
        for step in range(300):
            action = model.next_action(float(step))
            # ids are not part of the flow: they come from the process's one rising sequence
            actions.append((action.op, [(o.price, o.qty) for o in action.new]))
            for order in action.new:
                model.placed(order, "T" + order.cl_ord_id, float(step))
        runs.append(actions)
    assert runs[0] == runs[1]
    assert FlowModel([BTC], seed=43, user=3).next_action(0.0).new[0].price != runs[0][0][1][0][0]


def test_targets_are_always_live_and_the_mix_is_followed():
    model = FlowModel([BTC, ETH], seed=1, max_live=40)
    ops = drive(model, 20_000)
    total = sum(ops.values())
    assert ops["add"] / total > 0.35 and ops["cancel"] / total > 0.3  # mostly add and cancel
    assert all(ops[op] > 0 for op in DEFAULT_WEIGHTS)
    assert len(model.orders) <= 40


def test_refusals_leave_nothing_half_known():
    model = FlowModel([BTC], seed=2)
    drive(model, 5_000, accept=0.6)  # the in-loop check is the assertion


def test_max_live_is_never_exceeded():
    model = FlowModel([BTC], seed=3, max_live=5, mix=OpMix({"add": 10, "batch_add": 10}))
    for step in range(200):
        action = model.next_action(float(step))
        for order in action.new:
            model.placed(order, "T" + order.cl_ord_id, float(step))
        assert len(model.orders) <= 5


def test_cl_ord_ids_unique_increasing_and_fix_sized():
    model = FlowModel([BTC], seed=4, user=123456)
    ids = [model.next_cl_ord_id() for _ in range(1000)]
    assert len(set(ids)) == 1000 and ids == sorted(ids, key=int)
    assert all(len(i) == 18 and i.isdigit() and i.startswith("123456") for i in ids)


def test_batches_have_kraken_sizes():
    model = FlowModel([BTC], seed=5, mix=OpMix({"add": 1, "batch_add": 5, "batch_cancel": 5}))
    for step in range(2_000):
        action = model.next_action(float(step))
        if action.op == "batch_add":
            assert 2 <= len(action.new) <= BATCH_ADD_MAX
            assert len({o.market.name for o in action.new}) == 1  # one pair per batch
        if action.op == "batch_cancel":
            assert 2 <= len(action.targets) <= 50
        for order in action.new:
            model.placed(order, "T" + order.cl_ord_id, float(step))
        for order in action.targets:
            model.gone(order)


def test_amend_resets_the_age_the_rate_limit_counts():
    model = FlowModel([BTC], seed=6)
    order = model.next_action(0.0).new[0]
    model.placed(order, "T1", 0.0)
    assert order.age(7.0) == 7.0
    model.amended(order, 0, order.qty, 7.0)
    assert order.age(43.0) == 36.0


@pytest.mark.parametrize("share", [0.0, 0.1, 0.5])
def test_crossing_share(share):
    walk = PriceWalk(BTC, random.Random(9), cross_share=share)
    crossed = 0
    for _ in range(20_000):
        mid_before = walk.mid
        price = walk.quote(BUY)
        crossed += price > walk.mid  # a buy above the mid takes from resting sells
        assert abs(walk.mid - mid_before) < 50
    assert abs(crossed / 20_000 - share) < 0.02


def test_quotes_rest_near_the_top():
    walk = PriceWalk(ETH, random.Random(10), cross_share=0.0)
    depths = []
    for _ in range(10_000):
        price = walk.quote(BUY)  # the walk steps first, then quotes behind the new mid
        depths.append(walk.mid - price)
    assert all(d >= 1 for d in depths) and sorted(depths)[len(depths) // 2] <= 4  # median <= 4


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ({"teleport": 1}, "unknown operation 'teleport'"),
        ({"add": -1}, "weight of 'add'"),
        ({"cancel": 1}, "'add' needs a weight"),
    ],
)
def test_bad_mixes_name_the_problem(weights, message):
    with pytest.raises(MixError, match=message):
        OpMix(weights)


def test_market_from_the_venues_asset_pairs():
    info = catalog(1)[0].public_info()
    assert info["wsname"] == "XBT/USD"  # WS v1's name, as Kraken lists it
    market = Market.from_asset_pair(info, 60000.0)
    assert (market.name, market.symbol, market.price_decimals) == ("XBTUSD", "BTC/USD", 1)
    assert market.mid == 60000.0
    with pytest.raises(ValueError, match="no starting price"):
        Market.from_asset_pair(info, 0.0)
    assert market.min_lots == 10_000 and market.price_text(600001) == "60000.1"
    assert market.qty_text(125_000_000) == "1.25000000"


def test_ids_heard_ended_early_are_few_and_the_newest_still_match():
    """Issue 13's soak: every execution event of an order the flow had already forgotten was
    kept (4,096 a trader) and the generator grew. Now a few hundred, the oldest going first."""
    from loadgen.flow.model import EARLY_ENDS_KEPT

    model = FlowModel([BTC], seed=5)
    for i in range(10 * EARLY_ENDS_KEPT):
        model.gone_txid(f"OLD{i}")
    assert len(model._ended_early) == EARLY_ENDS_KEPT
    action = model.next_action(0.0)
    model.gone_txid("FRESH-1")  # filled before its acceptance came back
    model.placed(action.new[0], "FRESH-1", 0.0)
    assert not model.orders.by_txid.get("FRESH-1")
