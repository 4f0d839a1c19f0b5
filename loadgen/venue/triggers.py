"""One pair's armed stop-loss and take-profit orders, by the price move that fires them.

Two heaps: orders that fire when the last price rises to their trigger (lowest first) and
those that fire when it falls to it (highest first). Entries are never removed in place: a
cancelled, amended or triggered order leaves its entry, skipped when popped, and the heaps are
rebuilt from their live entries when stale ones outnumber them, so cancelling armed orders in
a loop cannot grow them without bound. Checking after a trade is O(1) when nothing is due.
"""

from __future__ import annotations

from heapq import heapify, heappop, heappush
from typing import Any


def _live(entry: tuple[int, int, Any]) -> bool:
    price, _, order = entry
    return order.armed and abs(price) == order.trigger and order.txid in order.account.orders


class Triggers:
    __slots__ = ("down", "live", "seq", "up")

    def __init__(self) -> None:
        self.up: list[tuple[int, int, Any]] = []  # (trigger, seq, order)
        self.down: list[tuple[int, int, Any]] = []  # (-trigger, seq, order)
        self.live = 0  # armed orders
        self.seq = 0  # FIFO among equal triggers

    def __bool__(self) -> bool:
        return self.live > 0

    def push(self, order: Any, fires_up: bool) -> None:
        self.seq += 1
        self.live += 1
        if fires_up:
            heappush(self.up, (order.trigger, self.seq, order))
        else:
            heappush(self.down, (-order.trigger, self.seq, order))
        if len(self.up) + len(self.down) > 2 * self.live + 64:
            self.up = [e for e in self.up if _live(e)]
            self.down = [e for e in self.down if _live(e)]
            heapify(self.up)
            heapify(self.down)

    def disarmed(self) -> None:
        """An armed order was cancelled, or triggered (its entry goes stale)."""
        self.live -= 1

    def due(self, last: int) -> Any:
        """The next armed order the last price `last` (ticks) has reached, or None."""
        up, down = self.up, self.down
        while up and up[0][0] <= last:
            entry = heappop(up)
            if _live(entry):
                return entry[2]
        while down and -down[0][0] >= last:
            entry = heappop(down)
            if _live(entry):
                return entry[2]
        return None
