"""The venue's markets: a few real Kraken pairs, then synthetic ones up to the requested count.

Prices and quantities live as integers: price in ticks (10^-price_decimals), quantity in lots
(10^-lot_decimals), so matching never meets float rounding. The real venue lists 700+ markets
(facts 4 / the issue); the default here is the same order of size.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_PAIR_COUNT = 720  # "the real venue lists 700+ markets"
LOT_DECIMALS = 8  # Kraken quotes volumes to 8 decimals on spot pairs

# (base altname, ws base, quote, price decimals, ordermin, reference price): real pairs first,
# so examples and tests read like Kraken's own ("XBTUSD" / "BTC/USD").
_REAL = (
    ("XBT", "BTC", "USD", 1, "0.0001", 60000.0),
    ("ETH", "ETH", "USD", 2, "0.002", 3000.0),
    ("XBT", "BTC", "EUR", 1, "0.0001", 55000.0),
    ("ETH", "ETH", "EUR", 2, "0.002", 2800.0),
    ("SOL", "SOL", "USD", 2, "0.02", 150.0),
    ("XRP", "XRP", "USD", 5, "2", 0.6),
    ("ADA", "ADA", "USD", 6, "5", 0.45),
    ("DOT", "DOT", "USD", 4, "0.5", 7.0),
    ("XDG", "DOGE", "USD", 7, "20", 0.15),
    ("LTC", "LTC", "USD", 2, "0.05", 80.0),
    ("LINK", "LINK", "USD", 5, "0.2", 15.0),
    ("ETH", "ETH", "XBT", 5, "0.002", 0.05),
    ("XBT", "BTC", "USDT", 1, "0.0001", 60000.0),
    ("ETH", "ETH", "USDT", 2, "0.002", 3000.0),
    ("USDT", "USDT", "USD", 4, "5", 1.0),
)
_SYNTH_QUOTES = ("USD", "EUR", "USDT", "GBP")


# Decimal texts by (units, decimals): replies and ExecutionReports print the same few sizes
# and prices again and again; a lookup is a fraction of a float format. Bounded.
_TEXTS: dict[tuple[int, int], str] = {}
_TEXTS_LIMIT = 65_536


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


@dataclass(frozen=True, slots=True)
class Pair:
    altname: str  # REST name, e.g. "XBTUSD"
    wsname: str  # WS/FIX symbol, e.g. "BTC/USD"
    base: str
    quote: str
    price_decimals: int
    ordermin: str
    ref_price: float
    lot_decimals: int = LOT_DECIMALS
    price_scale: int = field(init=False)
    lot_scale: int = field(init=False)
    ordermin_lots: int = field(init=False)
    zero_qty: str = field(init=False)  # "0.00000000", kept for hot paths
    zero_price: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "price_scale", 10**self.price_decimals)
        object.__setattr__(self, "lot_scale", 10**self.lot_decimals)
        object.__setattr__(self, "ordermin_lots", round(float(self.ordermin) * self.lot_scale))
        object.__setattr__(self, "zero_qty", self.fmt_qty(0))
        object.__setattr__(self, "zero_price", self.fmt_price(0))

    def fmt_price(self, ticks: int) -> str:
        return _fmt(ticks, self.price_decimals)

    def fmt_qty(self, lots: int) -> str:
        return _fmt(lots, self.lot_decimals)

    def public_info(self) -> dict[str, object]:
        """The subset of Kraken's AssetPairs entry a client needs."""
        return {
            "altname": self.altname,
            "wsname": self.wsname,
            "base": self.base,
            "quote": self.quote,
            "pair_decimals": self.price_decimals,
            "lot_decimals": self.lot_decimals,
            "ordermin": self.ordermin,
            "tick_size": self.fmt_price(1),
            "status": "online",
            "ref_price": self.fmt_price(round(self.ref_price * self.price_scale)),
        }


def catalog(count: int = DEFAULT_PAIR_COUNT) -> list[Pair]:
    """`count` pairs: the real ones first, then synthetic `A001/USD`-style markets."""
    pairs = [
        Pair(base + quote, f"{ws}/{quote}", ws, quote, dec, omin, ref)
        for base, ws, quote, dec, omin, ref in _REAL
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
    """Lookup by REST altname or WS/FIX symbol; O(1) whatever the number of pairs."""

    def __init__(self, pairs: list[Pair]) -> None:
        self.pairs = pairs
        self._by_name: dict[str, Pair] = {}
        for pair in pairs:
            self._by_name[pair.altname] = pair
            self._by_name[pair.wsname] = pair

    def get(self, name: str) -> Pair | None:
        return self._by_name.get(name)

    def __len__(self) -> int:
        return len(self.pairs)
