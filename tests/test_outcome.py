"""Outcome classes for every error string the facts list."""

from __future__ import annotations

import pytest

from loadgen.outcome import (
    ERROR,
    LIMIT_REST,
    LIMIT_THROTTLE,
    LIMIT_TRADING,
    RATE_LIMITED,
    REJECTED,
    Outcome,
    classify,
)


@pytest.mark.parametrize(
    ("error", "outcome", "limit"),
    [
        ("EOrder:Rate limit exceeded", RATE_LIMITED, LIMIT_TRADING),
        ("EAPI:Rate limit exceeded", RATE_LIMITED, LIMIT_REST),
        ("EService: Throttled: 1700000000", RATE_LIMITED, LIMIT_THROTTLE),
        ("EGeneral:Too many requests", RATE_LIMITED, LIMIT_THROTTLE),
        ("Exceeded msg rate", RATE_LIMITED, LIMIT_THROTTLE),
        ("EOrder:Unknown order", REJECTED, ""),
        ("EOrder:Insufficient funds", REJECTED, ""),
        ("EOrder:Orders limit exceeded", REJECTED, ""),
        ("EOrder:Order minimum not met", REJECTED, ""),
        ("EOrder:Invalid price:XBTUSD price can only be specified up to 1 decimals", REJECTED, ""),
        ("EQuery:Unknown asset pair", REJECTED, ""),
        ("EService:Deadline elapsed", REJECTED, ""),
        ("EService:Market in cancel_only mode", REJECTED, ""),
        ("EGeneral:Permission denied", REJECTED, ""),
        ("EService:Unavailable", ERROR, ""),
        ("EService:Busy", ERROR, ""),
        ("EGeneral:Invalid arguments:volume", ERROR, ""),
        ("EGeneral:Internal error", ERROR, ""),
        ("EGeneral:Temporary lockout", ERROR, ""),
        ("EAPI:Invalid nonce", ERROR, ""),
        ("EAPI:Invalid signature", ERROR, ""),
        ("ESession:Invalid session", ERROR, ""),
        ("connection reset by peer", ERROR, ""),
    ],
)
def test_classify(error, outcome, limit):
    """Each row: an error string and the class (and limiter) a report counts it under."""
    assert classify(error) == (outcome, limit)


def test_outcome_from_error():
    o = Outcome.from_error("ws", "add", 1234, "EOrder:Rate limit exceeded")
    assert (o.outcome, o.limit, o.latency_us, o.ok) == (RATE_LIMITED, LIMIT_TRADING, 1234, False)
    assert Outcome("fix", "cancel", "ok", 10).ok
