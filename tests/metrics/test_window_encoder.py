"""users/encoding.WindowEncoder: closed windows encoded a cell at a time in a greenlet of their
own, so the greenlets reading replies run between the cells; windows leave in order, and a
drain in the middle of a window loses and repeats none."""

from __future__ import annotations

from typing import Any

import gevent
from gevent import socket

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


def test_windows_leave_in_order_and_a_socket_reader_runs_between_the_cells() -> None:
    """A greenlet waiting on a socket (as the reply readers do) gets its data while the
    windows are still being encoded, not after every cell of them."""
    windows = _windows(3)
    done: list[dict[str, Any]] = []
    ran: list[int] = []  # how many windows were out when the reader got its data
    mine, theirs = socket.socketpair()
    try:
        reader = gevent.spawn(lambda: (mine.recv(16), ran.append(len(done))))
        gevent.sleep(0)  # the reader waits on its socket
        encoder = WindowEncoder(done.append)
        for window in windows:
            encoder.put(window)
        theirs.sendall(b"reply")  # in the socket before the encoder starts
        reader.join(timeout=5)
        assert ran == [0]  # the first window was still being encoded
        while encoder.queue:
            gevent.sleep(0.001)
    finally:
        mine.close()
        theirs.close()
    assert [record["t"] for record in done] == [w.t for w in windows]
    assert done == [w.encode() for w in windows]  # the same encoding as at once


def test_a_drain_mid_window_loses_and_repeats_nothing() -> None:
    windows = _windows(3)
    done: list[dict[str, Any]] = []
    encoder = WindowEncoder(done.append)
    for window in windows:
        encoder.put(window)
    gevent.sleep(0)  # the encoder starts the first window and pauses after its first cell
    assert not done and encoder.queue
    encoder.drain()
    assert [record["t"] for record in done] == [w.t for w in windows]
    gevent.sleep(0.01)  # the killed greenlet writes nothing after the drain
    assert len(done) == 3


def test_a_window_that_cannot_be_encoded_is_left_out_and_holds_back_none() -> None:
    windows = _windows(3)
    done: list[dict[str, Any]] = []
    encoder = WindowEncoder(done.append)
    windows[1].cells["broken"] = None  # type: ignore[assignment]  # a bug: encode() raises
    for window in windows:
        encoder.put(window)
    encoder.drain()
    assert [record["t"] for record in done] == [windows[0].t, windows[2].t]
