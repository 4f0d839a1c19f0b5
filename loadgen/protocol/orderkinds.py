"""The kinds of order a trader sends, and how each of Kraken's APIs spells one: the traders
write orders by this table and the venue parses them by the same rows read the other way.

One row a kind: its name in a profile's `[flow] order_types`, its order type (REST `ordertype`
and WebSocket v2 `order_type` use the same words; FIX its OrdType 40 code), its time in force
(REST `timeinforce`, WS `time_in_force`, FIX TimeInForce 59), which APIs carry it, and what
the trader can expect of it once accepted: whether it rests (so a cancel or amend can name it
later), whether it carries a trigger price, a limit price, a display quantity or an expiry.

Sources: REST AddOrder `ordertype` and `timeinforce` (GTC, IOC, GTD), WS v2 add_order
`order_type` and `time_in_force` (gtc, ioc, gtd), FIX NewOrderSingle 40 and 59 (0/1 GTC, 3 IOC,
4 FOK, 6 GTD): https://docs.kraken.com/api/docs/rest-api/add-order,
https://docs.kraken.com/api/docs/websocket-v2/add_order,
https://docs.kraken.com/api/docs/fix-api/nos-fix (facts 4.2, 5, 9).

Choices where the docs leave room, written down:
- FOK is FIX only: REST and WS v2 document no fill-or-kill, so a `fok` weight applies to the
  FIX traders and is dropped from the others' draw (`for_protocol`).
- Trigger orders rest untriggered, a few ticks beyond the trader's mid on the side their name
  says (a stop below a sell, a take-profit above it), so a share of them fire as the last trade
  price wanders; their `-limit` variants carry a limit a few ticks past the trigger.
- Amends of trigger orders change their size only, and their edits are amends (Kraken's
  EditOrder takes no triggered types; a stop-loss has no limit price to re-price). Icebergs
  are amended and edited as limit orders are: their slice stays (at most 1/10 of the size,
  so a size amend down a minimum order still keeps it within the size).
- A GTD order lives GTD_LIFETIME_S, then the venue expires it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

REST, WS, FIX = "rest", "ws", "fix"
# a GTD order's life; REST's `expiretm=+30` (at least 5 s ahead, facts 9)
GTD_LIFETIME_S: Final = 30
ICEBERG_SHOWN: Final = 10  # an iceberg shows 1/10 of its size (Kraken's floor is 1/15)


@dataclass(frozen=True, slots=True)
class Kind:
    name: str
    type: str  # REST's ordertype and WS v2's order_type (the same words)
    fix: str  # FIX OrdType (40)
    tif: str = "gtc"  # gtc | ioc | fok | gtd
    rests: bool = True  # stays in the book (or waits for its trigger) once accepted
    trigger: str = ""  # "stop" | "profit": a trigger price on that side of the market
    limit: bool = True  # carries a limit price (after its trigger, for the trigger kinds)
    display: bool = False  # an iceberg: shows a slice at a time
    post_only: bool = False
    apis: tuple[str, ...] = (REST, WS, FIX)

    @property
    def size_amends_only(self) -> bool:
        """Amend its size, never its price; its edits are amends (see the module's choices)."""
        return bool(self.trigger)


KINDS: Final[dict[str, Kind]] = {
    k.name: k
    for k in (
        Kind("limit", "limit", "2"),
        Kind("post", "limit", "2", post_only=True),
        Kind("market", "market", "1", rests=False, limit=False),
        Kind("ioc", "limit", "2", tif="ioc", rests=False),
        Kind("fok", "limit", "2", tif="fok", rests=False, apis=(FIX,)),
        Kind("gtd", "limit", "2", tif="gtd"),
        Kind("iceberg", "iceberg", "2", display=True),
        Kind("stop-loss", "stop-loss", "3", trigger="stop", limit=False),
        Kind("stop-loss-limit", "stop-loss-limit", "4", trigger="stop"),
        Kind("take-profit", "take-profit", "R", trigger="profit", limit=False),
        Kind("take-profit-limit", "take-profit-limit", "T", trigger="profit"),
    )
}
LIMIT: Final = KINDS["limit"]
REST_TIF: Final = {"gtc": "", "ioc": "IOC", "gtd": "GTD"}  # timeinforce ("" = the default, GTC)
FIX_TIF: Final = {"gtc": "1", "ioc": "3", "fok": "4", "gtd": "6"}  # TimeInForce (59)

# The same rows read the other way, as the venue parses what a trader sent: one dialect.
ORDER_TYPES: Final = tuple(dict.fromkeys(k.type for k in KINDS.values()))  # ordertype / order_type
TRIGGER_TYPES: Final = frozenset(k.type for k in KINDS.values() if k.trigger)
LIMIT_TYPES: Final = frozenset(
    k.type for k in KINDS.values() if k.limit
)  # those with a limit price
REST_TIME_IN_FORCE: Final = {"GTC": "gtc"} | {code: tif for tif, code in REST_TIF.items() if code}
FIX_ORD_TYPES: Final = {k.fix: k.type for k in KINDS.values() if not k.display}  # iceberg: 2 + 1138
FIX_TIME_IN_FORCE: Final = {code: tif for tif, code in FIX_TIF.items()}


def for_protocol(weights: dict[str, float], protocol: str) -> dict[str, float]:
    """The weights of the kinds `protocol` carries (a FIX-only kind is dropped elsewhere)."""
    unknown = sorted(set(weights) - set(KINDS))
    if unknown:
        raise ValueError(f"order_types: unknown kind {unknown[0]!r} (known: {', '.join(KINDS)})")
    return {name: w for name, w in weights.items() if protocol in KINDS[name].apis}
