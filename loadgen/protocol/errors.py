"""Kraken's error strings, written once: the venue sends them, the traders read them.

Kraken's errors are `<severity><category>:<message>` texts, the same on REST (the `error`
list), WebSocket v2 (`error`) and, in the embedded venue, FIX's Text (58) of a reject
(facts 1.4; https://docs.kraken.com/api/docs/guides/spot-errors). outcome.py classifies them
by prefix; this module names the ones that are sent or matched whole.
"""

from __future__ import annotations

INVALID_ARGUMENTS = "EGeneral:Invalid arguments"  # + ":<what>" (the venue says what)
UNKNOWN_METHOD = "EGeneral:Unknown method"
INTERNAL = "EGeneral:Internal error"
UNKNOWN_ORDER = "EOrder:Unknown order"  # also what a cancel of a filled order gets
UNKNOWN_PAIR = "EQuery:Unknown asset pair"
UNKNOWN_ASSET = "EQuery:Unknown asset"
TRADE_RATE = "EOrder:Rate limit exceeded"  # the per-pair trading counter
REST_RATE = "EAPI:Rate limit exceeded"  # the REST call counter
ORDERS_LIMIT = "EOrder:Orders limit exceeded"
FUNDS = "EOrder:Insufficient funds"
ORDER_MIN = "EOrder:Order minimum not met"
COST_MIN = "EOrder:Cost minimum not met"
PRICE = "EOrder:Invalid price"
POST_ONLY = "EOrder:Post only order"
UNAVAILABLE = "EService:Unavailable"
DEADLINE = "EService:Deadline elapsed"
INVALID_KEY = "EAPI:Invalid key"
INVALID_SIGNATURE = "EAPI:Invalid signature"
INVALID_NONCE = "EAPI:Invalid nonce"
INVALID_SESSION = "ESession:Invalid session"  # a bad WS token (what clients report for v1/v2)


def invalid_arguments(what: str) -> str:
    """`EGeneral:Invalid arguments:<what>`: the refusal that names the field."""
    return f"{INVALID_ARGUMENTS}:{what}"
