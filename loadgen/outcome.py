"""What one request came to: the Outcome record every client call returns (DESIGN, data path 4).

Outcome classes:
- ok
- rate_limited: refused by a limiter, with which one (trading counter, REST counter, throttle)
- rejected: a business refusal the venue made on purpose (unknown order, funds, order limits...)
- error: the request itself was wrong or the service failed (bad arguments, auth, unavailable,
  transport, protocol violation)
- timeout: no reply in time

A rate-limit rejection is an expected outcome, not a failure (DESIGN, measurement rules).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from loadgen.protocol import errors

OK: Final = "ok"
RATE_LIMITED: Final = "rate_limited"
REJECTED: Final = "rejected"
ERROR: Final = "error"
TIMEOUT: Final = "timeout"
CLASSES: Final = (OK, RATE_LIMITED, REJECTED, ERROR, TIMEOUT)

# Which limiter refused a rate-limited request.
LIMIT_TRADING: Final = "trading"  # EOrder:Rate limit exceeded: the per-pair matching-engine counter
LIMIT_REST: Final = "rest"  # EAPI:Rate limit exceeded: the REST call counter
# EService: Throttled, EGeneral:Too many requests, HTTP 429, WS msg rate
LIMIT_THROTTLE: Final = "throttle"

# Error-string prefixes (facts 1.4) -> (class, limit). First match wins, so longer prefixes of
# the same family come first.
_RULES: Final[tuple[tuple[str, str, str], ...]] = (
    (errors.TRADE_RATE, RATE_LIMITED, LIMIT_TRADING),
    (errors.REST_RATE, RATE_LIMITED, LIMIT_REST),
    ("EService: Throttled", RATE_LIMITED, LIMIT_THROTTLE),
    ("EService:Throttled", RATE_LIMITED, LIMIT_THROTTLE),
    ("EGeneral:Too many requests", RATE_LIMITED, LIMIT_THROTTLE),
    ("Exceeded msg rate", RATE_LIMITED, LIMIT_THROTTLE),
    (errors.DEADLINE, REJECTED, ""),
    ("EService:Market in", REJECTED, ""),
    ("EService:", ERROR, ""),  # Unavailable, Busy
    ("EOrder:", REJECTED, ""),  # Unknown order, Insufficient funds, Orders limit exceeded...
    ("EQuery:", REJECTED, ""),  # Unknown asset pair
    ("ETrade:", REJECTED, ""),
    ("EFunding:", REJECTED, ""),
    ("EGeneral:Permission denied", REJECTED, ""),
    ("EGeneral:", ERROR, ""),  # Invalid arguments, Internal error, Unknown method, lockout
    ("EAPI:", ERROR, ""),  # Invalid key, signature, nonce
    ("ESession:", ERROR, ""),  # Invalid session (WS token)
)


def classify(error: str) -> tuple[str, str]:
    """(outcome class, limit) for a venue error string; unknown strings are errors."""
    for prefix, outcome, limit in _RULES:
        if error.startswith(prefix):
            return outcome, limit
    return ERROR, ""


@dataclass(slots=True, init=False)  # its own __init__: the dataclass one would be Python's
class Outcome:
    """One request's result. Latency is in microseconds (service time: sent to answered)."""

    protocol: str  # "rest" | "ws" | "fix"
    op: str  # "add" | "amend" | "edit" | "cancel" | "cancel_all" | "batch_add" | "batch_cancel"
    outcome: str  # one of CLASSES
    latency_us: int
    error: str  # the venue's error string, or the transport failure
    limit: str  # for rate_limited: LIMIT_TRADING, LIMIT_REST or LIMIT_THROTTLE
    # What the flow model learns: add -> txid; edit -> the new txid; batch_add -> a txid or
    # None per order, in request order; cancel_all -> the count.
    detail: Any
    # A request sent as several messages (FIX batches): each message's error, "" if accepted
    parts: list[str] | None
    # When it went and when its answer arrived (wall-clock ns), and who stamped the answer:
    # "kernel" (as it reached the socket), "user" (when this process read it), "" (no answer)
    sent_ns: int
    answered_ns: int
    stamp: str

    def __init__(
        self,
        protocol: str,
        op: str,
        outcome: str,
        latency_us: int,
        error: str = "",
        limit: str = "",
        detail: Any = None,
        parts: list[str] | None = None,
        sent_ns: int = 0,
        answered_ns: int = 0,
        stamp: str = "",
    ) -> None:
        self.protocol = protocol
        self.op = op
        self.outcome = outcome
        self.latency_us = latency_us
        self.error = error
        self.limit = limit
        self.detail = detail
        self.parts = parts
        self.sent_ns = sent_ns
        self.answered_ns = answered_ns
        self.stamp = stamp

    @classmethod
    def from_error(cls, protocol: str, op: str, latency_us: int, error: str) -> Outcome:
        outcome, limit = classify(error)
        return cls(protocol, op, outcome, latency_us, error, limit)

    @property
    def ok(self) -> bool:
        return self.outcome == OK


# What a reply's reader (protocol/messages.py) raises on a result that lacks what Kraken's
# carries: a venue that is not quite Kraken.
UNREADABLE: Final = (KeyError, IndexError, TypeError, ValueError, AttributeError)


def read_back(outcome: Outcome, post: Callable[[Any], Any], result: Any) -> Outcome:
    """`outcome` with what the trader reads back from its reply (its detail), or, where the
    reply lacks it, an error naming what was missing: never an exception in the reader that
    would lose the request (and, in open loop, the answers behind it)."""
    try:
        outcome.detail = post(result)
    except UNREADABLE as exc:
        outcome.outcome = ERROR
        outcome.error = f"reply: not as Kraken's ({exc.__class__.__name__}: {exc})"
    return outcome
