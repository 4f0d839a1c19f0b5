"""What all three trader clients share: one interface, every operation, one Outcome each."""

from __future__ import annotations

import gevent
import pytest

from loadgen.clients.api import TraderClient
from loadgen.flow.market import BUY, SELL, Market
from loadgen.flow.model import FlowModel
from loadgen.flow.orders import LiveOrder
from loadgen.outcome import ERROR, LIMIT_TRADING, OK, RATE_LIMITED, REJECTED, TIMEOUT
from loadgen.venue.pairs import catalog
from tests.traders.conftest import make_client

BTC = Market.from_asset_pair(catalog(1)[0].public_info(), catalog(1)[0].ref_price)


@pytest.mark.parametrize("protocol", ["rest", "ws", "fix"])
def test_every_operation(venue_proc, protocol):
    client = make_client(protocol, venue_proc)
    assert isinstance(client, TraderClient)  # the one interface users/desk.py holds them by
    model = FlowModel([BTC], seed=1, cross_share=0.0)
    first = model._order(BTC, 0.0)
    placed = client.add(first)
    assert placed.outcome == OK and len(placed.detail) == 19 and placed.latency_us > 0
    first.txid = placed.detail
    assert client.amend(first, qty=first.qty + BTC.min_lots).outcome == OK
    edited = client.edit(first, price=first.price - 10)
    assert edited.outcome == OK and len(edited.detail) == 19  # REST/WS: a new id; FIX: the same
    first.txid = edited.detail
    assert client.cancel(first).outcome == OK
    batch = [model._order(BTC, 0.0) for _ in range(4)]
    added = client.batch_add(batch)
    assert added.outcome == OK and len(added.detail) == 4 and all(added.detail)
    for order, txid in zip(batch, added.detail, strict=True):
        order.txid = txid
    assert client.batch_cancel(batch[:3]).outcome == OK
    everything = client.cancel_all()
    assert everything.outcome == OK and everything.detail == 1
    client.close()


@pytest.mark.parametrize("protocol", ["rest", "ws", "fix"])
def test_rejected_and_rate_limited(venue_proc, protocol):
    client = make_client(protocol, venue_proc, "starter")  # threshold 60
    ghost = FlowModel([BTC], seed=2)._order(BTC, 0.0)
    ghost.txid = "OAAAAA-BBBBB-CCCCCC"
    outcome = client.cancel(ghost)
    assert (outcome.outcome, outcome.error) == (REJECTED, "EOrder:Unknown order")
    model = FlowModel([BTC], seed=3, cross_share=0.0)
    outcomes = [client.add(model._order(BTC, 0.0)) for _ in range(62)]
    limited = [o for o in outcomes if o.outcome == RATE_LIMITED]
    assert limited and limited[0].limit == LIMIT_TRADING
    assert limited[0].error == "EOrder:Rate limit exceeded"
    assert client.cancel_all().outcome == OK


@pytest.mark.parametrize("protocol", ["rest", "ws", "fix"])
def test_timeout_in_a_stall_then_recovery(knob_venue_proc, protocol):
    """Stalled for 0.9 s of every second: a request landing early in a stall outlives a 0.3 s
    timeout. Requests are paced 0.35 s apart so they fall at different points of the period
    (back-to-back ones would all land in the healthy tenth just after a stall)."""
    venue = knob_venue_proc("--stall-every", "1", "--stall-for", "0.9")
    client = make_client(protocol, venue, timeout=0.3)
    outcomes = []
    for _ in range(8):
        outcomes.append(client.cancel_all())
        gevent.sleep(0.35)
    assert any(o.outcome == TIMEOUT for o in outcomes)
    assert any(o.outcome == OK for o in outcomes)  # reconnected once the stall passed


@pytest.mark.parametrize("protocol", ["rest", "ws", "fix"])
def test_dropped_connections_are_error_outcomes_and_the_client_recovers(knob_venue_proc, protocol):
    venue = knob_venue_proc("--drop", "0.3")  # seeded: the same drops every run
    client = make_client(protocol, venue)
    outcomes = [client.cancel_all() for _ in range(20)]
    dropped = [o for o in outcomes if o.outcome == ERROR]
    assert dropped and all(o.error.startswith("transport:") for o in dropped)
    assert any(o.outcome == OK for o in outcomes[outcomes.index(dropped[0]) :])
    assert venue.proc.poll() is None  # the venue lives on


# How each protocol reports that a resting order was filled: (client's on_execution payload,
# order id) -> bool.
FILLED = {
    "ws": lambda update, txid: update["order_id"] == txid and update["exec_type"] == "filled",
    "fix": lambda report, txid: report.get(37) == txid and report.get(39) == "2",
}


@pytest.mark.parametrize(("protocol", "book"), [("ws", -1), ("fix", -2)])
def test_fills_reach_the_maker(venue_proc, protocol, book):
    """A fill of a resting order arrives unasked (executions channel, ExecutionReport)."""
    info = catalog(30)[book]  # a book no other test uses
    pair = Market.from_asset_pair(info.public_info(), info.ref_price)
    seen: list = []
    maker = make_client(protocol, venue_proc, on_execution=seen.append)
    taker = make_client(protocol, venue_proc)
    price = round(pair.mid * 10**pair.price_decimals)
    resting = LiveOrder("1", pair, SELL, price, pair.min_lots, 0.0)
    resting.txid = maker.add(resting).detail
    assert taker.add(LiveOrder("2", pair, BUY, price, pair.min_lots, 0.0)).outcome == OK
    maker.cancel_all()  # any call reads what arrived meanwhile
    assert any(FILLED[protocol](item, resting.txid) for item in seen), seen


@pytest.mark.parametrize("protocol", ["rest", "ws", "fix"])
def test_a_reply_is_timed_when_it_arrived_not_when_it_was_read(venue_proc, protocol, monkeypatch):
    """The process is frozen for BLOCK_S after each send, before it reads: the reply lands
    meanwhile (the venue is another process). With the kernel's receive timestamps the latency
    is the venue's; stamped in user space (the fallback) it includes the freeze."""
    import time

    from loadgen.clients import net

    block_s = 0.3
    client = make_client(protocol, venue_proc)
    client.cancel_all()  # connects, logs on; the kernel stamps from here on
    wait = net.wait_readable

    def frozen(sock):
        time.sleep(block_s)  # blocks the whole process: no greenlet reads meanwhile
        wait(sock)

    monkeypatch.setattr(net, "wait_readable", frozen)
    kernel = [client.cancel_all() for _ in range(3)]
    monkeypatch.setattr(net, "KERNEL_STAMPS", False)
    user = [client.cancel_all() for _ in range(3)]
    client.close()
    assert all(o.outcome == OK and o.stamp == "kernel" for o in kernel)
    assert all(o.latency_us == (o.answered_ns - o.sent_ns) // 1000 for o in kernel)
    # the venue answers a cancel-all in well under half the freeze, at least once in three
    assert min(o.latency_us for o in kernel) < block_s * 1e6 / 2
    assert all(o.outcome == OK and o.stamp == "user" for o in user)
    assert min(o.latency_us for o in user) >= block_s * 1e6


def _await(outcomes: list, n: int, within_s: float = 15.0) -> None:
    """Poll (cooperatively) until `n` outcomes have come in, for at most `within_s`."""
    import time

    deadline = time.monotonic() + within_s
    while len(outcomes) < n and time.monotonic() < deadline:
        gevent.sleep(0.01)


@pytest.mark.parametrize("protocol", ["rest", "ws", "fix"])
def test_open_loop_sends_never_wait_for_answers(knob_venue_proc, protocol):
    """Every reply is held 300 ms by the venue: five dispatches go out at once all the same,
    and their outcomes come in as the replies do, each timed from its own send."""
    import time

    venue = knob_venue_proc("--latency", f"{protocol}=fixed:300")
    client = make_client(protocol, venue)
    assert client.cancel_all().outcome == OK  # connected, logged on
    outcomes: list = []
    started = time.monotonic()
    for _ in range(5):
        client.begin()
        client.cancel_all()
        client.dispatch(outcomes.append)
    sending_s = time.monotonic() - started
    assert client.in_flight() == 5 and not outcomes
    _await(outcomes, 5)
    client.close()
    assert sending_s < 0.15  # half a reply's wait: nothing waited for an answer
    assert [o.outcome for o in outcomes] == [OK] * 5
    # (the venue's timers run on a millisecond clock: a hold may end up to 1 ms early)
    assert all(o.latency_us >= 299_000 and o.stamp == "kernel" for o in outcomes), [
        (o.latency_us, o.stamp) for o in outcomes
    ]
    assert all(o.latency_us == (o.answered_ns - o.sent_ns) // 1000 for o in outcomes)


@pytest.mark.parametrize("protocol", ["rest", "ws", "fix"])
def test_open_loop_sends_due_together_go_in_one_write_each_answered_to_its_own(
    venue_proc, protocol, monkeypatch
):
    """A user behind schedule sends what is due in one write (users/desk.Desk.turn_open): one
    callback per operation, each handed its own operation's Outcome."""
    import sys

    info = catalog(30)[-3]
    pair = Market.from_asset_pair(info.public_info(), info.ref_price)
    client = make_client(protocol, venue_proc)
    client.cancel_all()  # connected, logged on
    module = sys.modules[type(client).__module__]
    writes: list[bytes] = []
    send_all = module.send_all
    monkeypatch.setattr(
        module, "send_all", lambda sock, data: (writes.append(data), send_all(sock, data))[1]
    )
    price = round(pair.mid * 0.8 * 10**pair.price_decimals)  # rests: far under the market
    added: list = []
    cancelled: list = []
    client.begin()
    client.add(LiveOrder("3", pair, BUY, price, pair.min_lots, 0.0))
    client.cancel_all()
    client.dispatch([added.append, cancelled.append])
    _await(cancelled, 1)
    _await(added, 1)
    client.begin()
    client.cancel_all()
    with pytest.raises(ValueError, match="2 callbacks for 1 queued"):
        client.dispatch([added.append, cancelled.append])
    assert len(writes) == 1
    client.dispatch([cancelled.append])  # the queue was left as it was: it goes now
    _await(cancelled, 2)
    assert len(writes) == 2  # (before close: FIX's Logout is a write of its own)
    client.close()
    assert [(o.op, o.outcome) for o in added + cancelled] == [
        ("add", OK), ("cancel_all", OK), ("cancel_all", OK)]  # fmt: skip
    assert added[0].detail and cancelled[0].detail == 1  # the new order's id; the one cancelled


@pytest.mark.parametrize("protocol", ["rest", "ws", "fix"])
def test_open_loop_answers_owed_past_the_timeout_are_timeouts(knob_venue_proc, protocol):
    """Stalled for the last 5 s of every 8: a request sent in a stall is owed past the client's
    0.5 s timeout, the watchdog ends its connection and it becomes a timeout; a request sent
    after the stall reconnects and is answered."""
    import time

    venue = knob_venue_proc("--stall-every", "8", "--stall-for", "5")
    client = make_client(protocol, venue, timeout=0.5)
    outcomes: list = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        before = len(outcomes)  # a refused connect answers within dispatch()
        client.begin()
        client.cancel_all()
        client.dispatch(outcomes.append)
        _await(outcomes, before + 1)
        kinds = [o.outcome for o in outcomes]
        if TIMEOUT in kinds and OK in kinds[kinds.index(TIMEOUT) :]:
            break
        gevent.sleep(0.3)
    client.close()
    kinds = [o.outcome for o in outcomes]
    assert TIMEOUT in kinds and OK in kinds[kinds.index(TIMEOUT) :], kinds
    timed_out = outcomes[kinds.index(TIMEOUT)]
    assert timed_out.error.startswith("timeout") and timed_out.latency_us >= 500_000


@pytest.mark.parametrize("protocol", ["rest", "ws", "fix"])
def test_open_loop_dropped_connections_fail_what_they_owed(knob_venue_proc, protocol):
    venue = knob_venue_proc("--drop", "0.3")  # seeded: the same drops every run
    client = make_client(protocol, venue)
    outcomes: list = []
    for _ in range(20):
        before = len(outcomes)  # a refused connect answers within dispatch()
        client.begin()
        client.cancel_all()
        client.dispatch(outcomes.append)
        _await(outcomes, before + 1)
    client.close()
    assert len(outcomes) == 20  # every request got exactly one outcome
    dropped = [o for o in outcomes if o.outcome == ERROR]
    assert dropped and all(o.error.startswith("transport:") for o in dropped)
    assert any(o.outcome == OK for o in outcomes[outcomes.index(dropped[0]) :])


def test_a_send_is_stamped_by_the_kernel_as_it_went_and_the_error_queue_is_left_empty():
    """Linux's software transmit stamp: taken inside the send call, after the time taken just
    before it; read off the socket's error queue, which is left empty (an entry left there
    would wake the reader for nothing)."""
    import time

    from gevent import server

    from loadgen.clients import net
    from loadgen.clients.backoff import Backoff

    got: list[bytes] = []
    listener = server.StreamServer(("127.0.0.1", 0), lambda s, _: got.append(s.recv(100)))
    listener.start()
    try:
        sock = net.connect(listener.address, 5.0, Backoff())
        before = time.time_ns()
        at = net.send_stamped(sock, b"x" * 100)
        after = time.time_ns()
        assert before < at < after  # the kernel's stamp, not the time taken before the call
        assert net.tx_stamp(sock._sock, 0) == 0
        sock.close()
    finally:
        listener.stop()
