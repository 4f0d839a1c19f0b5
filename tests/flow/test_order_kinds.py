"""The flow's mix of order types: drawn by weight, priced by kind, learnt by kind."""

from __future__ import annotations

from collections import Counter

import pytest

from loadgen.flow.market import BUY, SELL, TRIGGER_SLIP_TICKS
from loadgen.flow.mix import OpMix, parse_kinds, parse_weights
from loadgen.flow.model import GTD_MARGIN_S, Action, FlowModel
from loadgen.outcome import OK, Outcome
from loadgen.profiles import ProfileError, load
from loadgen.protocol.orderkinds import GTD_LIFETIME_S, KINDS, LIMIT, for_protocol
from tests.flow.test_flow import BTC, drive

ALL = dict.fromkeys(KINDS, 1.0)


def test_kinds_are_drawn_by_weight():
    model = FlowModel([BTC], seed=3, kinds={"limit": 8, "ioc": 1, "stop-loss": 1})
    drawn = Counter(model._order(BTC, 0.0).kind.name for _ in range(5000))
    assert set(drawn) == {"limit", "ioc", "stop-loss"}
    assert 0.77 < drawn["limit"] / 5000 < 0.83
    assert 0.08 < drawn["ioc"] / 5000 < 0.12


# Seed 5's first orders as the flow drew them before it knew order types (29a65d8)
SEED_5_BEFORE = [("buy", 600002, 10000), ("buy", 600001, 10000), ("buy", 599998, 10000),
                 ("buy", 599997, 20000), ("buy", 599993, 40000), ("buy", 599998, 40000)]  # fmt: skip


def test_without_weights_every_order_is_a_limit_order_drawn_as_before():
    plain = FlowModel([BTC], seed=5)
    limited = FlowModel([BTC], seed=5, kinds={"limit": 1})
    drawn = [plain._order(BTC, 0.0) for _ in range(200)]
    assert [(o.side, o.price, o.qty) for o in drawn[:6]] == SEED_5_BEFORE
    for a in drawn:
        b = limited._order(BTC, 0.0)
        assert a.kind is b.kind is LIMIT
        assert (a.side, a.price, a.qty, a.trigger, a.display) == (b.side, b.price, b.qty, 0, 0)


def test_post_only_orders_never_cross_not_even_when_re_priced():
    model = FlowModel([BTC], seed=6, cross_share=1.0, kinds={"post": 1})
    walk = model.walks[BTC.name]
    for step in range(300):
        order = model._order(BTC, 0.0)
        assert order.post_only
        assert order.price < walk.mid if order.side == BUY else order.price > walk.mid
        model.placed(order, f"TX{step}", 0.0)
        for draw in (model._amend, model._edit):
            action = draw(0.0)  # checked against the mid it was priced at
            if action.price:
                side = action.targets[0].side
                assert action.price < walk.mid if side == BUY else action.price > walk.mid


def test_gtd_orders_are_forgotten_before_the_venue_expires_them():
    model = FlowModel([BTC], seed=8, kinds={"gtd": 1}, mix=OpMix({"add": 1}))
    order = model._order(BTC, 0.0)
    model.placed(order, "TX1", 10.0)
    assert len(model.orders) == 1
    model.next_action(10.0 + GTD_LIFETIME_S - GTD_MARGIN_S - 0.01)
    assert order in list(model.orders)
    model.next_action(10.0 + GTD_LIFETIME_S - GTD_MARGIN_S)
    assert order not in list(model.orders)  # REST never hears the expiry: no dead target


def test_the_flow_learns_from_outcomes():
    model = FlowModel([BTC], seed=9, cross_share=0.0)
    orders = [model._order(BTC, 0.0) for _ in range(5)]
    ok = Outcome("rest", "batch_add", OK, 10, detail=["TX0", None, "TX2", "TX3", "TX4"])
    model.learn(Action("batch_add", BTC, new=orders), ok, 1.0)
    assert [o.txid for o in model.orders] == ["TX0", "TX2", "TX3", "TX4"]  # the gap not placed
    gone = Outcome.from_error("rest", "amend", 10, "EOrder:Unknown order")
    for op in ("amend", "edit", "cancel"):
        target = next(iter(model.orders))
        model.learn(Action(op, BTC, targets=[target], price=5), gone, 2.0)
        assert target not in list(model.orders), op  # filled meanwhile: forgotten
    last = next(iter(model.orders))
    busy = Outcome.from_error("rest", "amend", 10, "EOrder:Rate limit exceeded")
    model.learn(Action("amend", BTC, targets=[last], price=7), busy, 3.0)
    assert last in list(model.orders) and last.price != 7  # refused: as it was
    model.learn(Action("amend", BTC, targets=[last], price=7), Outcome("rest", "amend", OK, 1), 4.0)
    assert (last.price, last.placed) == (7, 4.0)


def test_weights_must_be_finite():
    with pytest.raises(ValueError, match="must be a number >= 0"):
        parse_weights("limit:nan", "--order-types")
    with pytest.raises(ValueError, match="must be a number >= 0"):
        parse_weights("limit:inf", "--order-types")


@pytest.mark.parametrize(
    "name", ["stop-loss", "stop-loss-limit", "take-profit", "take-profit-limit"]
)
def test_triggers_wait_on_the_side_their_name_says(name):
    model = FlowModel([BTC], seed=11, kinds={name: 1})
    walk = model.walks[BTC.name]
    sides = Counter()
    for _ in range(300):
        order = model._order(BTC, 0.0)
        sides[order.side] += 1
        mid = walk.mid
        stop = name.startswith("stop")
        above = (order.side == BUY) == stop  # a buy stop and a sell take-profit wait above
        assert (order.trigger > mid) if above else (order.trigger < mid), (order, mid)
        if name.endswith("-limit"):
            slip = TRIGGER_SLIP_TICKS if order.side == BUY else -TRIGGER_SLIP_TICKS
            assert order.price == order.trigger + slip
        else:
            assert order.price == 0
    assert sides[BUY] > 100 and sides[SELL] > 100


def test_orders_that_never_rest_cross_and_are_not_targeted():
    model = FlowModel([BTC], seed=2, cross_share=0.0, kinds={"ioc": 1, "market": 1, "fok": 1})
    walk = model.walks[BTC.name]
    for _ in range(200):
        order = model._order(BTC, 0.0)
        if order.kind.limit:  # ioc, fok: priced through the mid to take, whatever cross_share
            assert order.price > walk.mid if order.side == BUY else order.price < walk.mid
        else:
            assert order.price == 0
        model.placed(order, f"TX{order.cl_ord_id}", 0.0)
    assert len(model.orders) == 0  # answered and over: nothing left to cancel or amend


def test_iceberg_shows_a_tenth_and_at_least_a_minimum_order():
    model = FlowModel([BTC], seed=4, kinds={"iceberg": 1})
    for _ in range(300):
        order = model._order(BTC, 0.0)
        assert BTC.min_lots <= order.display <= order.qty <= 15 * order.display


def test_trigger_orders_are_amended_in_size_and_never_edited():
    model = FlowModel([BTC], seed=9, kinds={"stop-loss": 1, "take-profit-limit": 1},
                      mix=None)  # fmt: skip
    ops = drive(model, 3000)
    assert ops["amend"] and ops["edit"] == 0  # every edit of a trigger order became an amend
    assert model.orders  # what is left to amend: trigger orders only
    for _ in range(200):
        for action in (model._amend(0.0), model._edit(0.0)):
            assert action.op == "amend" and action.price == 0 and action.qty > 0
            assert action.targets[0].kind.trigger


def test_a_mix_of_every_kind_keeps_only_live_resting_orders():
    model = FlowModel([BTC], seed=1, kinds=ALL)
    drive(model, 5000)  # drive() checks every target is live at every step
    assert all(order.kind.rests for order in model.orders)


def test_fok_is_fix_only_and_unknown_kinds_are_named():
    assert "fok" not in for_protocol(ALL, "rest") and "fok" in for_protocol(ALL, "fix")
    with pytest.raises(ValueError, match="unknown kind 'stop'"):
        for_protocol({"stop": 1}, "fix")
    assert parse_kinds("limit:3,fok:1", "ws") == {"limit": 3.0}
    with pytest.raises(ValueError, match="--order-types: the rest traders have no order type"):
        parse_kinds("fok:1", "rest")
    with pytest.raises(ValueError, match="is not NAME:WEIGHT"):
        parse_kinds("limit:lots", "rest")
    with pytest.raises(ValueError, match="unknown order type"):
        FlowModel([BTC], kinds={"trailing-stop": 1})


def _profile(tmp_path, flow: str, users: str = "rest = 1\nws = 1\nfix = 1") -> str:
    path = tmp_path / "p.toml"
    path.write_text(
        f'name = "kinds"\n[users]\n{users}\n[flow]\n{flow}\n[load]\nmax_rate = 100\n'
        '[[stages]]\nkind = "soak"\nduration = "5s"\nusers = 3\n'
    )
    return str(path)


def test_profile_order_types_are_checked_by_name(tmp_path):
    prof = load(_profile(tmp_path, "order_types = { limit = 9, iceberg = 1 }"))
    assert prof.order_types == {"limit": 9.0, "iceberg": 1.0}
    with pytest.raises(ProfileError, match=r"order_types\.limit: weight must be a number"):
        load(_profile(tmp_path, "order_types = { limit = nan }"))
    with pytest.raises(ProfileError, match=r"order_types\.stop: unknown name"):
        load(_profile(tmp_path, "order_types = { stop = 1 }"))
    with pytest.raises(ProfileError, match="the rest traders have no order type to send"):
        load(_profile(tmp_path, "order_types = { fok = 1, limit = 0 }"))
    only_fix = load(_profile(tmp_path, "order_types = { fok = 1 }", "fix = 1"))
    assert only_fix.order_types == {"fok": 1.0}
