"""The venue's markets: a few real Kraken pairs, then synthetic ones up to the requested count.

Prices and quantities live as integers: price in ticks (10^-price_decimals), quantity in lots
(10^-lot_decimals), so matching never meets float rounding. The real venue lists 700+ markets
(facts 4 / the issue); the default here is the same order of size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from loadgen.protocol import assets

DEFAULT_PAIR_COUNT: Final = 720  # "the real venue lists 700+ markets"
LOT_DECIMALS: Final = 8  # Kraken quotes volumes to 8 decimals on spot pairs
# Balances are integers of 10^-18 of an asset: a fill's cost (lots * ticks, at most 10^-15 of
# the quote here) and its fee convert exactly.
BALANCE_DECIMALS: Final = 18

# (base altname, quote altname, price decimals, ordermin, reference price): real pairs first,
# so examples and tests read like Kraken's own ("XXBTZUSD" / "XBTUSD" / "BTC/USD").
_REAL: Final = (
    ("XBT", "USD", 1, "0.0001", 60000.0),
    ("ETH", "USD", 2, "0.002", 3000.0),
    ("XBT", "EUR", 1, "0.0001", 55000.0),
    ("ETH", "EUR", 2, "0.002", 2800.0),
    ("SOL", "USD", 2, "0.02", 150.0),
    ("XRP", "USD", 5, "2", 0.6),
    ("ADA", "USD", 6, "5", 0.45),
    ("DOT", "USD", 4, "0.5", 7.0),
    ("XDG", "USD", 7, "20", 0.15),
    ("LTC", "USD", 2, "0.05", 80.0),
    ("LINK", "USD", 5, "0.2", 15.0),
    ("ETH", "XBT", 5, "0.002", 0.05),
    ("XBT", "USDT", 1, "0.0001", 60000.0),
    ("ETH", "USDT", 2, "0.002", 3000.0),
    ("USDT", "USD", 4, "5", 1.0),
)
_SYNTH_QUOTES: Final = ("USD", "EUR", "USDT", "GBP")


# Decimal texts by (units, decimals): replies and ExecutionReports print the same few sizes
# and prices again and again; a lookup is a fraction of a float format. Bounded.
_TEXTS: Final[dict[tuple[int, int], str]] = {}
_TEXTS_LIMIT: Final = 65_536


def _fmt(units: int, decimals: int) -> str:
    """units / 10^decimals with exactly `decimals` digits, e.g. (125, 2) -> '1.25'; integer
    arithmetic, so exact at any size (a float would misprint quantities past 2^53 units)."""
    key = (units, decimals)
    text = _TEXTS.get(key)
    if text is None:
        if units < 0:
            return "-" + _fmt(-units, decimals)
        if decimals:
            whole, frac = divmod(units, 10**decimals)
            text = f"{whole}.{frac:0{decimals}d}"
        else:
            text = str(units)
        if len(_TEXTS) >= _TEXTS_LIMIT:
            _TEXTS.clear()
        _TEXTS[key] = text
    return text


def fmt_balance(units: int, decimals: int) -> str:
    """Balance units (10^-BALANCE_DECIMALS of an asset) as a decimal text, truncated to
    `decimals` (balances, fees, trade balances)."""
    return _fmt(units // 10 ** (BALANCE_DECIMALS - decimals), decimals)


# Kraken's fee schedules as AssetPairs lists them: [30-day volume in USD, percent] [S4]. The
# venue charges the first tier (every test key is new); the schedule is listed whole.
FEES_TAKER: Final = [[0, 0.26], [50000, 0.24], [100000, 0.22], [250000, 0.2], [500000, 0.18],
              [1000000, 0.16], [2500000, 0.14], [5000000, 0.12], [10000000, 0.1]]  # fmt: skip
FEES_MAKER: Final = [[0, 0.16], [50000, 0.14], [100000, 0.12], [250000, 0.1], [500000, 0.08],
              [1000000, 0.06], [2500000, 0.04], [5000000, 0.02], [10000000, 0]]  # fmt: skip
TAKER_FEE_BP: Final = 26  # basis points: FEES_TAKER's first tier
MAKER_FEE_BP: Final = 16
# Cost minimum and cost decimals by quote asset (Kraken: XBTUSD 0.5 / 5, ETHXBT 0.00002 / 6).
_COST_RULES: Final = {"XBT": ("0.00002", 6)}
_COST_DEFAULT: Final = ("0.5", 5)


@dataclass(frozen=True, slots=True)
class Pair:
    altname: str  # REST name, e.g. "XBTUSD"
    symbol: str  # WS v2 / FIX symbol, e.g. "BTC/USD"
    base: str  # asset altnames, e.g. "XBT", "USD"
    quote: str
    price_decimals: int
    ordermin: str
    ref_price: float  # where the market opens: its last price before any trade here
    lot_decimals: int = LOT_DECIMALS
    pair_id: str = field(init=False)  # REST key, e.g. "XXBTZUSD"
    wsname: str = field(init=False)  # WS v1 name, e.g. "XBT/USD"
    base_id: str = field(init=False)  # asset IDs, e.g. "XXBT", "ZUSD"
    quote_id: str = field(init=False)
    costmin: str = field(init=False)
    cost_decimals: int = field(init=False)
    price_scale: int = field(init=False)
    lot_scale: int = field(init=False)
    ordermin_lots: int = field(init=False)
    costmin_units: int = field(init=False)  # in lots * ticks
    cost_scale: int = field(init=False)  # lots * ticks -> balance units of the quote
    base_scale: int = field(init=False)  # lots -> balance units of the base
    zero_qty: str = field(init=False)  # "0.00000000", kept for hot paths
    zero_price: str = field(init=False)

    def __post_init__(self) -> None:
        put = object.__setattr__
        put(self, "pair_id", assets.pair_id(self.base, self.quote))
        put(self, "wsname", f"{self.base}/{self.quote}")
        put(self, "base_id", assets.asset_id(self.base))
        put(self, "quote_id", assets.asset_id(self.quote))
        costmin, cost_decimals = _COST_RULES.get(self.quote, _COST_DEFAULT)
        put(self, "costmin", costmin)
        put(self, "cost_decimals", cost_decimals)
        put(self, "price_scale", 10**self.price_decimals)
        put(self, "lot_scale", 10**self.lot_decimals)
        put(self, "ordermin_lots", round(float(self.ordermin) * self.lot_scale))
        put(self, "costmin_units", round(float(costmin) * self.lot_scale * self.price_scale))
        put(self, "cost_scale", 10 ** (BALANCE_DECIMALS - self.lot_decimals - self.price_decimals))
        put(self, "base_scale", 10 ** (BALANCE_DECIMALS - self.lot_decimals))
        put(self, "zero_qty", self.fmt_qty(0))
        put(self, "zero_price", self.fmt_price(0))

    def fmt_price(self, ticks: int) -> str:
        return _fmt(ticks, self.price_decimals)

    def fmt_qty(self, lots: int) -> str:
        return _fmt(lots, self.lot_decimals)

    def fmt_cost(self, units: int) -> str:
        """lots * ticks (a fill's cost) in quote currency, to the pair's cost decimals."""
        scale = self.lot_decimals + self.price_decimals - self.cost_decimals
        return _fmt(units // 10**scale if scale >= 0 else units * 10**-scale, self.cost_decimals)

    def public_info(self) -> dict[str, object]:
        """The pair's AssetPairs entry, in Kraken's fields and order (facts 7.1). No margin is
        served, so `leverage_buy` and `leverage_sell` are empty, as Kraken lists a spot-only
        pair."""
        return {
            "altname": self.altname,
            "wsname": self.wsname,
            "aclass_base": "currency",
            "base": self.base_id,
            "aclass_quote": "currency",
            "quote": self.quote_id,
            "lot": "unit",
            "cost_decimals": self.cost_decimals,
            "pair_decimals": self.price_decimals,
            "lot_decimals": self.lot_decimals,
            "lot_multiplier": 1,
            "leverage_buy": [],
            "leverage_sell": [],
            "fees": FEES_TAKER,
            "fees_maker": FEES_MAKER,
            "fee_volume_currency": "ZUSD",
            "margin_call": 80,
            "margin_stop": 40,
            "ordermin": self.ordermin,
            "costmin": self.costmin,
            "tick_size": self.fmt_price(1),
            "status": "online",
            "long_position_limit": 0,
            "short_position_limit": 0,
        }


def catalog(count: int = DEFAULT_PAIR_COUNT) -> list[Pair]:
    """`count` pairs: the real ones first, then synthetic `A001/USD`-style markets."""
    pairs = [
        Pair(base + quote, assets.v2_symbol(f"{base}/{quote}"), base, quote, dec, omin, ref)
        for base, quote, dec, omin, ref in _REAL
    ]
    i = 0
    while len(pairs) < count:
        base = f"A{i // len(_SYNTH_QUOTES) + 1:03d}"
        quote = _SYNTH_QUOTES[i % len(_SYNTH_QUOTES)]
        ref = 1.0 + (i * 37 % 997) / 10.0  # spread reference prices over 1..100
        pairs.append(Pair(base + quote, f"{base}/{quote}", base, quote, 4, "1", ref))
        i += 1
    return pairs[:count]


class PairIndex:
    """Lookup by any of a market's names (pair ID, altname, WS v1 name, WS v2 / FIX symbol):
    Kraken's REST takes the first two, its WS v2 and FIX the last; the venue takes each form on
    every API. O(1) whatever the number of pairs."""

    def __init__(self, pairs: list[Pair]) -> None:
        self.pairs = pairs
        self._by_name: dict[str, Pair] = {}
        for pair in pairs:
            for name in (pair.pair_id, pair.altname, pair.wsname, pair.symbol):
                self._by_name[name] = pair

    def get(self, name: str) -> Pair | None:
        return self._by_name.get(name)

    def assets(self) -> dict[str, str]:
        """The assets the markets trade, asset ID -> altname, in listing order."""
        out: dict[str, str] = {}
        for pair in self.pairs:
            out.setdefault(pair.base_id, pair.base)
            out.setdefault(pair.quote_id, pair.quote)
        return out

    def __len__(self) -> int:
        return len(self.pairs)
