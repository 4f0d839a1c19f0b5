"""The REST gateway: HTTP/1.1 keep-alive (pipelining kept in order) on httptools.

Checks, in Kraken's order: API-Key known (EAPI:Invalid key), API-Sign over the raw body
(EAPI:Invalid signature), nonce above the key's last (EAPI:Invalid nonce); then the knobs
(EService:Unavailable), the REST call counter, and the method. Protocol-level garbage gets an
HTTP error status and a closed connection; API-level errors get Kraken's envelope with HTTP 200.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import httptools

from loadgen.protocol import errors, numbers, rest
from loadgen.venue.conn import Connection
from loadgen.venue.engine import E_UNAVAILABLE, VenueError
from loadgen.venue.rest_api import TRADING_METHODS

if TYPE_CHECKING:
    from loadgen.venue.context import ServerContext

MAX_BODY: Final = 64 * 1024  # a 15-order batch is ~2 KiB; 64 KiB is generous, more is abuse
MAX_HEADERS: Final = 16 * 1024
# A head (request line and headers) still open after this many bytes is refused: httptools
# gathers a URL or header until it ends. Counted from the end of the last request, so the count
# may hold up to one read (64 KiB) of that request's body besides.
HEAD_LIMIT: Final = MAX_HEADERS + 64 * 1024

E_INVALID_KEY: Final = errors.INVALID_KEY
E_INVALID_SIGNATURE: Final = errors.INVALID_SIGNATURE
E_INVALID_NONCE: Final = errors.INVALID_NONCE
E_UNKNOWN_METHOD: Final = errors.UNKNOWN_METHOD

_STATUS: Final = {
    200: b"200 OK",
    400: b"400 Bad Request",
    404: b"404 Not Found",
    500: b"500 Internal Server Error",
    405: b"405 Method Not Allowed",
    413: b"413 Payload Too Large",
    431: b"431 Request Header Fields Too Large",
}


def http_response(status: int, body: bytes, *, close: bool = False) -> bytes:
    conn = b"Connection: close\r\n" if close else b""
    return (
        b"HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n"
        % (_STATUS[status], len(body), conn)
        + body
    )


class RestConnection(Connection):
    protocol_name = "rest"

    def __init__(self, venue: ServerContext) -> None:
        super().__init__(venue)
        assert venue.rest_api is not None  # made with the context, before any connection
        self.api = venue.rest_api
        self.parser = httptools.HttpRequestParser(self)
        self.failed = False  # after a protocol error the stream is not read any further
        self.in_head = True  # between a request's first byte and the end of its headers
        self.head_bytes = 0
        self._reset()

    def _reset(self) -> None:
        self.url = b""
        self.api_key = b""
        self.api_sign = b""
        self.content_type: bytes | None = None
        self.body: list[bytes] = []
        self.body_size = 0
        self.header_size = 0

    # ---- httptools callbacks ---------------------------------------------------------------

    def on_data(self, data: bytes) -> None:
        if self.failed:
            return
        self.head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(400, "upgrade is not served on the REST port")
        except httptools.HttpParserCallbackError as exc:  # one of ours raised: a venue bug
            self.venue.problems.report("REST parser callback", exc.__context__ or exc)
            self._fail(500, "", error=errors.INTERNAL)
        except httptools.HttpParserError as malformed:
            self._fail(400, f"malformed HTTP: {malformed}")
        else:
            # httptools gathers a URL or header until it ends: a peer that never ends one
            # must not grow the venue without bound (nor cost it a quadratic concatenation)
            if self.in_head and self.head_bytes > HEAD_LIMIT:
                self._fail(431, "request line and headers too large")

    def on_message_begin(self) -> None:
        self.in_head = True
        self._reset()

    def on_headers_complete(self) -> None:
        self.in_head = False
        self.head_bytes = 0

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_size += len(name) + len(value)
        if self.header_size > MAX_HEADERS:
            self._fail(431, "request headers too large")
            return
        lname = name.lower()
        if lname == b"api-key":
            self.api_key = value
        elif lname == b"api-sign":
            self.api_sign = value
        elif lname == b"content-type":
            self.content_type = value
        elif lname == b"content-length" and value.isdigit() and int(value) > MAX_BODY:
            self._fail(413, f"body over {MAX_BODY} bytes")

    def on_body(self, body: bytes) -> None:
        self.body_size += len(body)
        if self.body_size > MAX_BODY:
            self._fail(413, f"body over {MAX_BODY} bytes")
            return
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.head_bytes = 0
        if self.failed or self.closed:
            return
        keep_alive = self.parser.should_keep_alive()
        if self.faults.drop_ratio and self.faults.drop():
            # before the request is handled, as on WS and FIX: a drop places nothing, though the
            # request was received and counts as served
            if self.api.private_urls.get(self.url) in TRADING_METHODS:
                self.venue.served["rest"] += 1
            self.abort()
            return
        try:
            status, payload = self.handle(self.parser.get_method(), self.url)
        except Exception as exc:  # a bug must cost one reply, never the venue
            self.venue.problems.report("REST handler", exc)
            status, payload = 200, rest.error(errors.INTERNAL)
        self.send(http_response(status, payload, close=not keep_alive), self.reply_delay())
        self.venue.exchange.flush()
        if not keep_alive:  # `Connection: close`: whatever follows is not read
            self.failed = True
            self.close_after_write()

    def _fail(self, status: int, reason: str, error: str = "") -> None:
        """Protocol-level error: answer once, then close (the stream can't be trusted)."""
        if self.failed or self.closed:
            return
        self.failed = True
        error = error or errors.invalid_arguments(reason)
        self.send(http_response(status, rest.error(error), close=True))
        self.close_after_write()

    # ---- routing -------------------------------------------------------------------------

    def handle(self, http_method: bytes, url: bytes) -> tuple[int, bytes]:
        name = self.api.private_urls.get(url)
        if name is not None and http_method == b"POST":  # the hot path: one dict lookup
            return 200, self.private(name, url)
        path = url.split(b"?", 1)[0].decode("latin-1")
        if path.startswith(rest.PRIVATE_PREFIX):
            if http_method != b"POST":
                return 405, rest.error(errors.invalid_arguments("private calls use POST"))
            name = path[len(rest.PRIVATE_PREFIX) :]
            if name not in self.api.private_methods:
                return 404, rest.error(E_UNKNOWN_METHOD)
            return 200, self.private(name, path.encode())
        if path.startswith(rest.PUBLIC_PREFIX):
            name = path[len(rest.PUBLIC_PREFIX) :]
            method = self.api.public_methods.get(name)
            if method is None:
                return 404, rest.error(E_UNKNOWN_METHOD)
            return 200, self.public(method, url, http_method)
        return 404, rest.error(E_UNKNOWN_METHOD)

    def public(self, method: Any, url: bytes, http_method: bytes) -> bytes:
        """A public call: its parameters from the query string (GET, as Kraken documents) or a
        form or JSON body (POST, which Kraken also takes)."""
        _, _, query = url.partition(b"?")
        body = b"".join(self.body)
        try:
            params = rest.decode_form(query)
            if http_method == b"POST" and body:
                more = rest.decode_json(body) if rest.is_json(self.content_type) else (
                    rest.decode_form(body))  # fmt: skip
                params.update(more)
            return rest.ok(method(params))
        except rest.RestProtocolError as exc:
            return rest.error(errors.invalid_arguments(str(exc)))
        except VenueError as refused:
            return rest.error(refused.message)

    def private(self, name: str, path: bytes) -> bytes:
        if name in TRADING_METHODS:
            self.venue.served["rest"] += 1
        body = self.body[0] if len(self.body) == 1 else b"".join(self.body)
        account = self.venue.accounts.get(self.api_key.decode("latin-1"))
        if account is None:
            return rest.error(E_INVALID_KEY)
        params: dict[str, Any] | None = None
        try:
            if rest.is_json(self.content_type):  # orjson is bounded and C: parsed first
                params = rest.decode_json(body)
                nonce_text = _nonce_text(params.get("nonce"))
            else:  # a form body is parsed only once the signature holds
                nonce_text = rest.form_value(body, b"nonce") or ""
        except rest.RestProtocolError as exc:
            return rest.error(errors.invalid_arguments(str(exc)))
        value = numbers.nonce(nonce_text)
        if value is None:
            return rest.error(E_INVALID_NONCE)
        if not rest.verify(account.signer, path, nonce_text.encode(), body, self.api_sign):
            return rest.error(E_INVALID_SIGNATURE)
        if value <= account.last_nonce:
            return rest.error(E_INVALID_NONCE)
        if params is None:
            try:
                params = rest.decode_form(body)
            except rest.RestProtocolError as bad_form:
                return rest.error(errors.invalid_arguments(str(bad_form)))
            if params.get("nonce") != nonce_text:  # a second, escaped `nonce` field
                return rest.error(E_INVALID_NONCE)
        account.last_nonce = value
        if self.faults.unavailable_ratio and self.faults.unavailable():
            return rest.error(E_UNAVAILABLE)
        try:
            return rest.ok(self.api.call_private(name, account, params))
        except VenueError as refused:
            return rest.error(refused.message)


def _nonce_text(nonce: Any) -> str:
    """A JSON nonce as the text it was signed with: a string, or an integer (never a bool)."""
    if isinstance(nonce, str) or (isinstance(nonce, int) and not isinstance(nonce, bool)):
        return str(nonce)
    return ""
