"""Kraken's names for assets and pairs, the same on both ends (facts 7, 10.4).

Kraken names one market four ways: REST's pair ID (`XXBTZUSD`, the key of AssetPairs and of
every market-data result), its `altname` (`XBTUSD`), WS v1's `wsname` (`XBT/USD`) and WS v2 /
FIX's symbol (`BTC/USD`). Assets have an ID (`XXBT`, `ZUSD`: older assets carry an `X` or `Z`
prefix) and an altname (`XBT`, `USD`); WS v2 spells two of them differently (`BTC`, `DOGE`).
This module is the one table of those spellings; the venue builds its markets from it and the
traders turn an AssetPairs entry into the symbol WS v2 and FIX want.
"""

from __future__ import annotations

from typing import Final

# altname -> (asset ID, decimals, display_decimals), as Kraken's public Assets lists them [S4].
ASSETS: Final[dict[str, tuple[str, int, int]]] = {
    "XBT": ("XXBT", 10, 5),
    "ETH": ("XETH", 10, 5),
    "XRP": ("XXRP", 8, 5),
    "LTC": ("XLTC", 10, 5),
    "XDG": ("XXDG", 8, 2),
    "USD": ("ZUSD", 4, 2),
    "EUR": ("ZEUR", 4, 2),
    "GBP": ("ZGBP", 4, 2),
    "SOL": ("SOL", 10, 5),
    "ADA": ("ADA", 8, 6),
    "DOT": ("DOT", 10, 8),
    "LINK": ("LINK", 10, 5),
    "USDT": ("USDT", 8, 4),
}
DEFAULT_DECIMALS: Final = (8, 5)  # an asset the table lacks (the venue's synthetic markets)

# WS v2 and FIX spell these assets as the rest of the industry does (facts 10.4).
V2_NAMES: Final = {"XBT": "BTC", "XDG": "DOGE"}
V1_NAMES: Final = {v2: v1 for v1, v2 in V2_NAMES.items()}

# Pair IDs that do not follow the rule in `pair_id` (as Kraken lists them) [S4].
PAIR_ID_EXCEPTIONS: Final = {"XDGUSD": "XDGUSD", "USDTUSD": "USDTZUSD"}


def asset_id(altname: str) -> str:
    """`XBT` -> `XXBT`, `SOL` -> `SOL` (newer assets have no prefix)."""
    entry = ASSETS.get(altname)
    return entry[0] if entry else altname


def asset_decimals(altname: str) -> tuple[int, int]:
    """(decimals, display_decimals) of an asset."""
    entry = ASSETS.get(altname)
    return (entry[1], entry[2]) if entry else DEFAULT_DECIMALS


def pair_id(base: str, quote: str) -> str:
    """REST's key for a market: both asset IDs when both are prefixed legacy assets
    (`XXBTZUSD`, `XETHXXBT`), else the altname (`SOLUSD`, `XBTUSDT`)."""
    altname = base + quote
    if altname in PAIR_ID_EXCEPTIONS:
        return PAIR_ID_EXCEPTIONS[altname]
    base_id, quote_id = asset_id(base), asset_id(quote)
    if len(base_id) == 4 and len(quote_id) == 4 and base_id[0] in "XZ" and quote_id[0] in "XZ":
        return base_id + quote_id
    return altname


def v2_asset(altname: str) -> str:
    return V2_NAMES.get(altname, altname)


def v2_symbol(wsname: str) -> str:
    """WS v1's `XBT/USD` (AssetPairs' `wsname`) as WS v2 and FIX write it: `BTC/USD`."""
    base, sep, quote = wsname.partition("/")
    if not sep:
        return wsname
    return f"{v2_asset(base)}/{v2_asset(quote)}"
