"""Kraken Spot REST wire format, sans-IO: request signing, body codecs, the reply envelope.

Used by both ends: the traders sign with `sign`, the venue checks with `verify`.

Signing (facts S1): API-Sign = base64(HMAC-SHA512(base64decode(secret),
uri_path + SHA256(nonce + post_body))). The HMAC covers the exact body bytes on the wire,
whatever their encoding (form or JSON), so the venue verifies the raw bytes it received and
only parses them afterwards.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import quote, unquote_plus

import orjson

from loadgen.protocol import jsonbound

PRIVATE_PREFIX: Final = "/0/private/"
PUBLIC_PREFIX: Final = "/0/public/"

FORM: Final = "application/x-www-form-urlencoded"
JSON: Final = "application/json"

_sha256 = hashlib.sha256
_sha512 = hashlib.sha512


class RestProtocolError(ValueError):
    """A body or envelope that does not follow the REST wire format."""


_IPAD: Final = bytes(b ^ 0x36 for b in range(256))
_OPAD: Final = bytes(b ^ 0x5C for b in range(256))
_SHA512_BLOCK: Final = 128


class KeyedHmac:
    """HMAC-SHA512 (RFC 2104) with the key's inner and outer pads hashed once.

    Each signature copies the two prepared SHA-512 states instead of keying a new HMAC:
    1.1 us against 3.0 us for hmac.new and 1.9 us for copying an hmac.HMAC (measured over 200
    keys). It sits on the hot path of both the venue (every API-Sign check) and the traders.
    """

    __slots__ = ("_inner", "_outer")

    def __init__(self, secret: bytes) -> None:
        key = _sha512(secret).digest() if len(secret) > _SHA512_BLOCK else secret
        key = key.ljust(_SHA512_BLOCK, b"\0")
        self._inner = _sha512(key.translate(_IPAD))
        self._outer = _sha512(key.translate(_OPAD))

    def digest(self, message: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()


def keyed(secret: bytes) -> KeyedHmac:
    """The HMAC-SHA512 of a (base64-decoded) secret, ready to sign many requests."""
    return KeyedHmac(secret)


def sign(secret: bytes | KeyedHmac, uri_path: bytes, nonce: bytes, body: bytes) -> bytes:
    """API-Sign for one request; `secret` is the decoded secret or keyed(secret)."""
    mac = KeyedHmac(secret) if isinstance(secret, bytes) else secret
    return base64.b64encode(mac.digest(uri_path + _sha256(nonce + body).digest()))


def verify(
    secret: bytes | KeyedHmac, uri_path: bytes, nonce: bytes, body: bytes, api_sign: bytes
) -> bool:
    """Constant-time check of an API-Sign header against the raw body bytes."""
    return hmac.compare_digest(sign(secret, uri_path, nonce, body), api_sign)


def decode_secret(secret_b64: str) -> bytes:
    return base64.b64decode(secret_b64)


# ---- bodies -----------------------------------------------------------------------------------


def encode_form(fields: Mapping[str, Any]) -> bytes:
    """Form-encode fields in the given order; lists of dicts use Kraken's `orders[0][k]` style."""
    parts: list[str] = []
    for key, value in fields.items():
        if isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, Mapping):
                    parts.extend(f"{_bracketed(key, i, k)}={_q(v)}" for k, v in item.items())
                else:
                    parts.append(f"{_bracketed(key, i)}={_q(item)}")
        else:
            parts.append(f"{key}={_q(value)}")
    return "&".join(parts).encode()


@functools.lru_cache(maxsize=1024)
def _bracketed(key: str, i: int, name: str = "") -> str:
    """`orders[0][price]`, quoted: a batch repeats the same few names (urllib's quote walks
    a string with brackets a character at a time, 8 calls a request in an open-loop run)."""
    return quote(f"{key}[{i}][{name}]" if name else f"{key}[{i}]", safe="")


# What quote(text, safe="") leaves as it is (RFC 3986's unreserved characters): most values
# (prices, sizes, pairs, ids) are only these, and a match is 0.14 us where quote() is 0.38.
_UNRESERVED: Final = re.compile(r"[A-Za-z0-9_.~-]*\Z").match


def _q(value: Any) -> str:
    if value is True or value is False:
        return "true" if value else "false"
    text = str(value)
    return text if _UNRESERVED(text) else quote(text, safe="")


# Bounds on a form body (the venue's only recursive parse): Kraken's deepest documented key is
# `close[ordertype]` inside a batch (`orders[0][close][ordertype]`, three brackets), and its
# widest body a 15-order batch (~200 fields). Past these a body is refused, never walked.
MAX_FORM_DEPTH: Final = 4
MAX_FORM_FIELDS: Final = 1024
MAX_FORM_INDEX_DIGITS: Final = 4  # `orders[0]` .. `orders[9999]`


def decode_form(body: bytes) -> dict[str, Any]:
    """Parse a form body into a dict; `a[0][b]=x` keys become lists of dicts or lists.

    The fast path (no escapes, no brackets) is a couple of splits: most order bodies are that.
    Bounded: at most MAX_FORM_FIELDS fields and MAX_FORM_DEPTH brackets per key, else
    RestProtocolError naming the bound.
    """
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError as exc:
        raise RestProtocolError("body is not ASCII form data") from exc
    out: dict[str, Any] = {}
    if not text:
        return out
    fields = text.count("&") + 1
    if fields > MAX_FORM_FIELDS:
        raise RestProtocolError(f"more than {MAX_FORM_FIELDS} form fields")
    if text.count("=") == fields and not ("%" in text or "+" in text or "[" in text):
        # Plain `k=v&k=v` (an order body, as clients send it): one split, keys paired with
        # values; 1 us against 2.4 us field by field (measured).
        tokens = iter(text.replace("&", "=").split("="))
        return dict(zip(tokens, tokens))  # noqa: B905 - even by the count check above
    nested = False
    for part in text.split("&"):
        key, sep, value = part.partition("=")
        if not sep:
            raise RestProtocolError(f"form field without '=': {part[:40]!r}")
        if "%" in value or "+" in value:
            value = unquote_plus(value)
        if "%" in key or "+" in key:
            key = unquote_plus(key)
        if "[" in key:
            _put_nested(out, key, value)
            nested = True
        else:
            out[key] = value
    return _lists_from_indexed(out) if nested else out


def form_value(body: bytes, name: bytes) -> str | None:
    """One field of a form body without parsing the rest (the nonce, before the signature is
    checked): the value of the last `name=` field (the one `decode_form` keeps), or None."""
    prefix = name + b"="
    at = body.rfind(b"&" + prefix)
    if at >= 0:
        start = at + 1 + len(prefix)
    elif body.startswith(prefix):
        start = len(prefix)
    else:
        return None
    end = body.find(b"&", start)
    raw = body[start:] if end < 0 else body[start:end]
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        return None
    return unquote_plus(text) if "%" in text or "+" in text else text


def _put_nested(out: dict[str, Any], key: str, value: str) -> None:
    head, _, rest = key.partition("[")
    if rest.count("[") >= MAX_FORM_DEPTH:
        raise RestProtocolError(f"form field {key[:40]!r}... nested deeper than {MAX_FORM_DEPTH}")
    path = [head] + [p.rstrip("]") for p in rest.split("[")]
    node = out
    for step in path[:-1]:
        child = node.setdefault(step, {})
        if not isinstance(child, dict):
            raise RestProtocolError(f"form field {key[:40]!r} conflicts with a plain field")
        node = child
    if isinstance(node.get(path[-1]), dict):
        raise RestProtocolError(f"form field {key[:40]!r} conflicts with a nested field")
    node[path[-1]] = value


def _is_index(key: str) -> bool:
    # ASCII digits only: "²".isdigit() is True and int("²") raises
    return 0 < len(key) <= MAX_FORM_INDEX_DIGITS and key.isascii() and key.isdigit()


def _lists_from_indexed(node: Any) -> Any:
    """{'0': a, '1': b} (from `x[0]`, `x[1]`) becomes [a, b]; other dicts are walked (at most
    MAX_FORM_DEPTH deep, as `_put_nested` built them)."""
    if not isinstance(node, dict):
        return node
    converted = {k: _lists_from_indexed(v) for k, v in node.items()}
    if converted and all(_is_index(k) for k in converted):
        return [converted[k] for k in sorted(converted, key=int)]
    return converted


def is_json(content_type: bytes | None) -> bool:
    return bool(content_type) and (
        content_type.split(b";", 1)[0].strip().lower() == JSON.encode()  # type: ignore[union-attr]
    )


def decode_json(body: bytes) -> dict[str, Any]:
    """A JSON body (orjson: C, its nesting bounded at 1024, numbers past a double refused)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RestProtocolError("malformed JSON body") from exc
    if not isinstance(data, dict):
        raise RestProtocolError("JSON body must be an object")
    if jsonbound.too_deep(body, data):
        raise RestProtocolError(
            f"JSON body nested deeper than {jsonbound.MAX_DEPTH} "
            f"or over {jsonbound.MAX_CONTAINERS} brackets"
        )
    return data


def decode_body(body: bytes, content_type: bytes | None) -> dict[str, Any]:
    """Parse a private call's body by its Content-Type (JSON or form; form is the default)."""
    return decode_json(body) if is_json(content_type) else decode_form(body)


# ---- envelope ---------------------------------------------------------------------------------


def ok(result: Any) -> bytes:
    return orjson.dumps({"error": [], "result": result})


def error(*messages: str) -> bytes:
    return orjson.dumps({"error": list(messages)})


def parse_reply(body: bytes) -> tuple[list[str], Any]:
    """(errors, result) from a reply body; result is None when absent."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RestProtocolError("reply is not JSON") from exc
    if not isinstance(data, dict) or not isinstance(data.get("error"), list):
        raise RestProtocolError("reply lacks the error array")
    return data["error"], data.get("result")
