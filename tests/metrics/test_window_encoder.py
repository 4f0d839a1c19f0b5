"""users/encoding.WindowEncoder: closed windows encoded a cell at a time in a greenlet of their
own, so the greenlets reading replies run between the cells; windows leave in order, and a
drain in the middle of a window loses and repeats none."""

from __future__ import annotations

from typing import Any

import gevent

from loadgen.metrics.recorder import Recorder, Window
from loadgen.outcome import OK, Outcome
from loadgen.users.encoding import WindowEncoder


def _windows(n: int, cells: int = 6) -> list[Window]:
    """n closed windows, each with `cells` cells (one operation name per cell)."""
    closed: list[Window] = []
    now = [1000.0]
    recorder = Recorder(closed.append, clock=lambda: now[0])
    for second in range(n):
        now[0] = 1000.5 + second
        for cell in range(cells):
            recorder.record(Outcome("rest", f"op{cell}", OK, 100 + cell))
    recorder.flush()
    assert len(closed) == n
    return closed


def test_windows_leave_in_order_and_readers_run_between_the_cells() -> None:
    windows = _windows(3)
    done: list[dict[str, Any]] = []
    ran: list[int] = []  # how many windows were out when another greenlet got to run
    encoder = WindowEncoder(done.append)
    for window in windows:
        encoder.put(window)
    reader = gevent.spawn(lambda: ran.append(len(done)))
    gevent.joinall([reader], timeout=5)
    assert ran == [0]  # it ran while the first window was still being encoded
    while encoder.queue:
        gevent.sleep(0)
    assert [record["t"] for record in done] == [w.t for w in windows]
    assert done == [w.encode() for w in windows]  # the same encoding as at once


def test_a_drain_mid_window_loses_and_repeats_nothing() -> None:
    windows = _windows(3)
    done: list[dict[str, Any]] = []
    encoder = WindowEncoder(done.append)
    for window in windows:
        encoder.put(window)
    gevent.sleep(0)  # the encoder starts the first window and yields after its first cell
    gevent.sleep(0)
    assert not done and encoder.queue
    encoder.drain()
    assert [record["t"] for record in done] == [w.t for w in windows]
    gevent.sleep(0.01)  # the killed greenlet writes nothing after the drain
    assert len(done) == 3
