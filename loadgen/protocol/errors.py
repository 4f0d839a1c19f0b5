"""Kraken's error strings, written once: the venue sends them, the traders read them.

Kraken's errors are `<severity><category>:<message>` texts, the same on REST (the `error`
list), WebSocket v2 (`error`) and, in the embedded venue, FIX's Text (58) of a reject
(facts 1.4; https://docs.kraken.com/api/docs/guides/spot-errors). outcome.py classifies them
by prefix; this module names the ones that are sent or matched whole.
"""

from __future__ import annotations

from typing import Final

INVALID_ARGUMENTS: Final = "EGeneral:Invalid arguments"  # + ":<what>" (the venue says what)
UNKNOWN_METHOD: Final = "EGeneral:Unknown method"
INTERNAL: Final = "EGeneral:Internal error"
UNKNOWN_ORDER: Final = "EOrder:Unknown order"  # also what a cancel of a filled order gets
UNKNOWN_PAIR: Final = "EQuery:Unknown asset pair"
UNKNOWN_ASSET: Final = "EQuery:Unknown asset"
TRADE_RATE: Final = "EOrder:Rate limit exceeded"  # the per-pair trading counter
REST_RATE: Final = "EAPI:Rate limit exceeded"  # the REST call counter
ORDERS_LIMIT: Final = "EOrder:Orders limit exceeded"
FUNDS: Final = "EOrder:Insufficient funds"
ORDER_MIN: Final = "EOrder:Order minimum not met"
COST_MIN: Final = "EOrder:Cost minimum not met"
PRICE: Final = "EOrder:Invalid price"
POST_ONLY: Final = "EOrder:Post only order"
UNAVAILABLE: Final = "EService:Unavailable"
DEADLINE: Final = "EService:Deadline elapsed"
INVALID_KEY: Final = "EAPI:Invalid key"
INVALID_SIGNATURE: Final = "EAPI:Invalid signature"
INVALID_NONCE: Final = "EAPI:Invalid nonce"
# a bad WS token (what clients report for v1/v2)
INVALID_SESSION: Final = "ESession:Invalid session"


def invalid_arguments(what: str) -> str:
    """`EGeneral:Invalid arguments:<what>`: the refusal that names the field."""
    return f"{INVALID_ARGUMENTS}:{what}"
