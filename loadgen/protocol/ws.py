"""Kraken WebSocket v2 messages, sans-IO (facts section 4).

Requests: {"method": m, "params": {...}, "req_id": n}. Replies echo method and req_id and carry
success, result or error (one string, not an array), time_in and time_out. Channel messages
(executions, heartbeat, status) have no method. Both ends build and read these here.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

from loadgen.protocol import jsonbound
from loadgen.protocol.clock import rfc3339

HEARTBEAT: Final = orjson.dumps({"channel": "heartbeat"})
# The public channels a market-data subscriber follows (clients/marketdata): the book it keeps
# and checks, the ticker, and the trades whose trade_id (a sequence per book) shows any gap.
MD_CHANNELS: Final = ("book", "ticker", "trade")


def parse_md_channels(text: str) -> tuple[str, ...]:
    """'book,trade' -> ("book", "trade"); ValueError naming what is not one of MD_CHANNELS."""
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    unknown = [n for n in names if n not in MD_CHANNELS]
    if unknown or not names:
        raise ValueError(
            f"--md-channels {text!r}: {', '.join(unknown) or 'none named'} is not "
            f"a channel a MarketDataUser follows ({', '.join(MD_CHANNELS)})"
        )
    return names


class WsMessageError(ValueError):
    """A text frame that is not a well-formed v2 message; `req_id` when it could be read."""

    def __init__(self, text: str, req_id: int | None = None) -> None:
        super().__init__(text)
        self.req_id = req_id


def request(method: str, params: dict[str, Any] | None = None, req_id: int | None = None) -> bytes:
    msg: dict[str, Any] = {"method": method}
    if params is not None:
        msg["params"] = params
    if req_id is not None:
        msg["req_id"] = req_id
    return orjson.dumps(msg)


def parse(payload: bytes | str, bounded: bool = False) -> dict[str, Any]:
    """Any v2 message (request, reply or channel message) as a dict; `bounded` (the venue, for
    a peer's requests) refuses one nested past jsonbound's limits."""
    try:
        msg = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise WsMessageError("malformed JSON") from exc
    if not isinstance(msg, dict):
        raise WsMessageError("message must be a JSON object")
    if bounded and jsonbound.too_deep(payload, msg):
        req_id = msg.get("req_id")
        raise WsMessageError(
            f"message nested deeper than {jsonbound.MAX_DEPTH} "
            f"or over {jsonbound.MAX_CONTAINERS} brackets",
            req_id if isinstance(req_id, int) and not isinstance(req_id, bool) else None,
        )
    return msg


def reply_ok(
    method: str, req_id: Any, result: Any, time_in: float, time_out: float, **extra: Any
) -> bytes:
    msg: dict[str, Any] = {"method": method}
    if req_id is not None:
        msg["req_id"] = req_id
    msg["result"] = result
    msg["success"] = True
    msg["time_in"] = rfc3339(time_in)
    msg["time_out"] = rfc3339(time_out)
    if extra:
        msg.update(extra)
    return orjson.dumps(msg)


def read_reply(msg: dict[str, Any], missing: str = "no error given") -> tuple[str | None, Any]:
    """A method's reply, as reply_ok and reply_error write it: (None, its result) when it
    succeeded, else (its error, None); `missing` where a refusal gives no error."""
    if msg.get("success") is True:
        return None, msg.get("result")
    return str(msg.get("error", missing)), None


def reply_error(
    method: str | None, req_id: Any, error: str, time_in: float, time_out: float
) -> bytes:
    msg: dict[str, Any] = {"error": error}
    if method is not None:
        msg["method"] = method
    if req_id is not None:
        msg["req_id"] = req_id
    msg["success"] = False
    msg["time_in"] = rfc3339(time_in)
    msg["time_out"] = rfc3339(time_out)
    return orjson.dumps(msg)


def pong(req_id: Any, time_in: float, time_out: float) -> bytes:
    msg: dict[str, Any] = {"method": "pong"}
    if req_id is not None:
        msg["req_id"] = req_id
    msg["time_in"] = rfc3339(time_in)
    msg["time_out"] = rfc3339(time_out)
    return orjson.dumps(msg)


def channel(name: str, kind: str, data: list[Any], sequence: int | None = None) -> bytes:
    msg: dict[str, Any] = {"channel": name, "type": kind, "data": data}
    if sequence is not None:
        msg["sequence"] = sequence
    return orjson.dumps(msg)


def status(connection_id: int, system: str = "online") -> bytes:
    """The status message a v2 connection receives first."""
    return channel(
        "status",
        "update",
        [
            {
                "api_version": "v2",
                "connection_id": connection_id,
                "system": system,
                "version": "2.0.0",
            }
        ],
    )
