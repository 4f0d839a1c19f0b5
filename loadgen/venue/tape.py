"""One market's public trade record: its last price, its recent trades, 1-minute candles.

The engine records every trade here once (not once per side); REST Ticker, Trades and OHLC
read it. Bounded: TRADES_KEPT trades and CANDLES_KEPT 1-minute candles (24 hours) per market,
so memory never grows with a run's length. Before any trade a market's last price is its
reference price: it opens where it last traded, as a real market after a restart.

Choices where Kraken's docs are silent: longer OHLC intervals are built from the 1-minute
candles kept (so a 60-minute candle covers at most the last 24 hours); the Ticker's "today"
starts at 00:00 UTC as Kraken documents, its 24-hour figures span the candles of the last 1,440
minutes.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Final

TRADES_KEPT: Final = 1000  # Trades' default and maximum `count` (facts 7)
CANDLES_KEPT: Final = 1440  # 24 hours of 1-minute candles
OHLC_INTERVALS: Final = (1, 5, 15, 30, 60, 240, 1440, 10080, 21600)  # minutes (facts 7)
OHLC_ROWS: Final = 720  # "at most the 720 most recent entries"

# candle fields: [minute start (s), open, high, low, close, sum of price*qty, qty, trades]
_T, _O, _H, _L, _C, _PQ, _V, _N = range(8)


class Tape:
    __slots__ = ("candles", "last", "last_qty", "pair", "seq", "trades")

    def __init__(self, pair: Any) -> None:
        self.pair = pair
        self.last = round(pair.ref_price * pair.price_scale)  # ticks
        self.last_qty = 0  # lots
        self.seq = 0  # trade_id: a sequence per book, as Kraken's
        self.trades: deque[tuple[int, int, float, str, str, int]] = deque(maxlen=TRADES_KEPT)
        self.candles: deque[list[Any]] = deque(maxlen=CANDLES_KEPT)

    def record(self, price: int, qty: int, taker_side: str, taker_type: str, when: float) -> None:
        """One trade: `price` in ticks, `qty` in lots, the taker's side and order type."""
        self.seq += 1
        self.last, self.last_qty = price, qty
        self.trades.append((price, qty, when, taker_side, taker_type, self.seq))
        minute = int(when // 60) * 60
        candles = self.candles
        if not candles or candles[-1][_T] != minute:
            candles.append([minute, price, price, price, price, 0, 0, 0])
        c = candles[-1]
        if price > c[_H]:
            c[_H] = price
        elif price < c[_L]:
            c[_L] = price
        c[_C] = price
        c[_PQ] += price * qty
        c[_V] += qty
        c[_N] += 1

    # ---- readers (REST public endpoints) --------------------------------------------------

    def stats(self, since: float) -> tuple[int, int, int, int, int, int]:
        """(open, high, low, volume lots, sum price*lots, trades) over the candles from `since`;
        with no trade in that span, the last price for open, high and low."""
        rows = [c for c in self.candles if c[_T] >= since - 59]
        if not rows:
            return self.last, self.last, self.last, 0, 0, 0
        return (
            rows[0][_O],
            max(c[_H] for c in rows),
            min(c[_L] for c in rows),
            sum(c[_V] for c in rows),
            sum(c[_PQ] for c in rows),
            sum(c[_N] for c in rows),
        )

    def running(self, interval: int) -> list[Any]:
        """The candle of `interval` minutes that holds the last trade, from the 1-minute ones
        it spans (newest first, so the cost is its length, not the day's)."""
        span = interval * 60
        last = self.candles[-1]
        begin = last[_T] // span * span
        row = [begin, last[_O], last[_H], last[_L], last[_C], 0, 0, 0]
        for c in reversed(self.candles):
            if c[_T] < begin:
                break
            row[_O], row[_H], row[_L] = c[_O], max(row[_H], c[_H]), min(row[_L], c[_L])
            row[_PQ] += c[_PQ]
            row[_V] += c[_V]
            row[_N] += c[_N]
        return row

    def ohlc(self, interval: int, since: float) -> list[list[Any]]:
        """Candles of `interval` minutes from the 1-minute ones, oldest first, those that begin
        after `since` (s), at most OHLC_ROWS."""
        span = interval * 60
        out: list[list[Any]] = []
        for c in self.candles:
            begin = c[_T] // span * span
            if out and out[-1][_T] == begin:
                row = out[-1]
                row[_H], row[_L], row[_C] = max(row[_H], c[_H]), min(row[_L], c[_L]), c[_C]
                row[_PQ] += c[_PQ]
                row[_V] += c[_V]
                row[_N] += c[_N]
            else:
                out.append([begin, *c[1:]])
        return [row for row in out if row[_T] > since][-OHLC_ROWS:]
