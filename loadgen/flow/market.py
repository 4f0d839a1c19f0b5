"""Markets as a trader sees them, and the price process that quotes in them.

Prices move in whole ticks: a pair quoted to 0.1 at 60,000 and one quoted to 0.0001 at 50 get
the same behaviour relative to their books. Most quotes rest a few ticks behind the mid (near
the top of the book); a configurable share crosses it by a few ticks, so fills happen.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Final

from loadgen.flow import draws
from loadgen.protocol import assets

BUY: Final = "buy"
SELL: Final = "sell"

STEP_TICKS: Final = 1.0  # standard deviation of the mid's move per quote, in ticks
# Each step also pulls the mid back toward the market's reference by this share of the way
# (mean reversion): every trader walks its own mid, and without a pull two traders' mids drift
# apart without bound, until one's resting quotes cross the other's (fills nobody asked for).
# Stationary spread of a mid: STEP_TICKS / sqrt(2 * REVERT), about 2.2 ticks.
REVERT: Final = 0.1
REST_DEPTH_TICKS: Final = 3.0  # mean distance behind the mid of a resting quote, in ticks
CROSS_DEPTH_TICKS: Final = 3.0  # mean distance through the mid of a crossing quote, in ticks
# A stop or take-profit's trigger waits beyond the mid by at least TRIGGER_GAP_TICKS plus an
# exponential of this mean: with mids spread ~2 ticks and crossing quotes ~3 ticks through
# them, the last trade price reaches a share of the triggers (they fire) and not most.
TRIGGER_GAP_TICKS: Final = 2
TRIGGER_DEPTH_TICKS: Final = 6.0
TRIGGER_SLIP_TICKS: Final = 2  # a -limit variant's limit: this far past its trigger, toward a fill


@dataclass(frozen=True, slots=True)
class Market:
    name: str  # REST pair name, e.g. "XBTUSD"
    symbol: str  # WS and FIX symbol, e.g. "BTC/USD"
    price_decimals: int
    lot_decimals: int
    ordermin: float
    mid: float  # where the price process starts

    @classmethod
    def from_asset_pair(cls, info: dict[str, Any], mid: float) -> Market:
        """From an AssetPairs entry (Kraken's fields) and a starting price (the venue's last
        trade, from Ticker). WS v2 and FIX get the pair's symbol in their spelling (`BTC/USD`
        for AssetPairs' `XBT/USD`)."""
        if not mid > 0:
            raise ValueError(f"market {info.get('altname')}: no starting price")
        return cls(
            info["altname"],
            assets.v2_symbol(info["wsname"]),
            int(info["pair_decimals"]),
            int(info["lot_decimals"]),
            float(info["ordermin"]),
            mid,
        )

    def price_text(self, ticks: int) -> str:
        return _text(ticks, self.price_decimals)

    def qty_text(self, lots: int) -> str:
        return _text(lots, self.lot_decimals)

    @property
    def min_lots(self) -> int:
        return max(1, round(self.ordermin * 10.0**self.lot_decimals))  # (a float: exact to 10^22)


def _text(units: int, decimals: int) -> str:
    if not decimals:
        return str(units)
    scale: int = 10**decimals  # (int ** int is Any to mypy: typed here, it is int arithmetic)
    whole, frac = divmod(units, scale)
    return f"{whole}.{str(scale + frac)[1:]}"  # not {frac:0{decimals}d}: a format call compiled


class PriceWalk:
    """A mid in ticks that random-walks one step per quote around the market's reference
    (mean-reverting), never below ten ticks."""

    __slots__ = ("cross_share", "market", "mid", "ref", "rng")

    def __init__(self, market: Market, rng: random.Random, cross_share: float = 0.1) -> None:
        if not 0.0 <= cross_share <= 1.0:
            raise ValueError(f"crossing share must be within 0..1, got {cross_share}")
        self.market = market
        self.rng = rng
        self.cross_share = cross_share
        self.mid = self.ref = max(10, round(market.mid * 10**market.price_decimals))

    def step(self) -> int:
        """One step of the walk: the new mid, in ticks."""
        pull = (self.ref - self.mid) * REVERT
        self.mid = max(10, self.mid + round(pull + draws.gauss(self.rng, 0.0, STEP_TICKS)))
        return self.mid

    def quote(self, side: str, cross: bool | None = None) -> int:
        """A limit price in ticks for a new order on `side`, after one step of the walk;
        crossing the mid for a share of orders (always with cross=True, never with False)."""
        rng = self.rng
        self.step()
        if cross is None:
            cross = rng.random() < self.cross_share
        if cross:
            depth = 1 + int(draws.expovariate(rng, 1.0 / CROSS_DEPTH_TICKS))
            return self.mid + depth if side == BUY else max(1, self.mid - depth)
        depth = 1 + int(draws.expovariate(rng, 1.0 / REST_DEPTH_TICKS))
        return max(1, self.mid - depth) if side == BUY else self.mid + depth

    def trigger(self, side: str, kind: str) -> int:
        """A trigger price in ticks: a stop (kind "stop") waits on the losing side of the mid
        (below it for a sell, above for a buy), a take-profit ("profit") on the winning side."""
        self.step()
        depth = TRIGGER_GAP_TICKS + int(draws.expovariate(self.rng, 1.0 / TRIGGER_DEPTH_TICKS))
        above = (side == BUY) == (kind == "stop")
        return self.mid + depth if above else max(1, self.mid - depth)


def slipped(trigger: int, side: str) -> int:
    """A -limit trigger order's limit: TRIGGER_SLIP_TICKS past its trigger toward a fill."""
    return trigger + TRIGGER_SLIP_TICKS if side == BUY else max(1, trigger - TRIGGER_SLIP_TICKS)
