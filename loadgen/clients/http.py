"""One keep-alive HTTP/1.1 connection on a gevent socket: one request, or several pipelined.

Requests arrive as ready bytes (the REST client builds them); responses are parsed by httptools
(C). Transport failures raise TransportError, a timeout raises TransportTimeout; either way the
socket is dropped and the next request reconnects, after a backoff when the last one failed.
"""

from __future__ import annotations

import ssl
import time

import httptools
from gevent import socket

from loadgen.clients.backoff import Backoff
from loadgen.clients.net import Stamp, connect, recv_stamped, send_stamped


class TransportError(Exception):
    """The connection failed (refused, reset, closed mid-reply, garbled HTTP)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.partial: list[Reply] = []  # replies read before it failed


class TransportTimeout(TransportError):
    """No complete reply within the timeout."""


Reply = tuple[int, bytes, int, str]  # status, body, when it arrived (wall ns), who stamped it


class HttpConnection:
    def __init__(
        self, host: str, port: int, timeout: float = 10.0, tls: ssl.SSLContext | None = None
    ) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.tls = tls  # https: the context its connections verify with
        self.sock: socket.socket | None = None
        self.parser = httptools.HttpResponseParser(self)
        self._body: list[bytes] = []
        self._replies: list[Reply] = []
        self._stamp = Stamp()  # when the last read's data arrived
        self.sent_at = 0  # wall-clock ns of the last send (roundtrips)
        self.backoff = Backoff()

    # httptools callbacks
    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        self._body = []
        stamp = self._stamp
        self._replies.append((self.parser.get_status_code(), body, stamp.ns, stamp.source))

    def roundtrip(self, request: bytes) -> tuple[int, bytes]:
        """Send one request, return (HTTP status, body)."""
        status, body, _, _ = self.roundtrips([request])[0]
        return status, body

    def roundtrips(self, requests: list[bytes]) -> list[Reply]:
        """Send the requests in one write (HTTP/1.1 pipelining), return (status, body, when
        its bytes arrived, who stamped that) for each, in order (net.Stamp).
        On a failure the exception's `partial` holds the replies that had come in. `sent_at`
        is when the bytes went out, taken after any reconnect, so a latency measured from it
        never includes a connect."""
        self.sent_at = time.time_ns()  # a failed connect's outcome is timed from here
        sock = self.sock or self._connect()
        self._body = []
        replies: list[Reply] = []  # the parser's callbacks append to it
        self._replies = replies
        n = len(requests)
        try:
            self.sent_at = send_stamped(sock, requests[0] if n == 1 else b"".join(requests))
            stamp = self._stamp
            while len(replies) < n:
                data = recv_stamped(sock, stamp)
                if not data:
                    raise TransportError("venue closed the connection")
                self.parser.feed_data(data)
        except TimeoutError:
            raise self._fail(TransportTimeout(f"no reply within {self.timeout} s")) from None
        except httptools.HttpParserError as malformed:
            raise self._fail(TransportError(f"malformed HTTP reply: {malformed}")) from None
        except OSError as lost:
            raise self._fail(TransportError(str(lost) or lost.__class__.__name__)) from None
        except TransportError as failed:
            raise self._fail(failed) from None
        self.backoff.succeeded()
        self._replies = []  # taken: an open-loop reader on this connection starts afresh
        return replies

    def _connect(self) -> socket.socket:
        try:
            sock = connect((self.host, self.port), self.timeout, self.backoff, self.tls)
        except OSError as exc:
            self.drop()
            raise TransportError(f"connect: {exc}") from None
        self.sock = sock
        self.parser = httptools.HttpResponseParser(self)
        return sock

    def _fail(self, exc: TransportError) -> TransportError:
        """Drop the socket (the next request reconnects after a growing backoff); `exc`, with
        the replies that had come in as its `partial`."""
        self.drop()
        exc.partial = self._replies
        return exc

    def drop(self) -> None:
        """Drop the socket; the next request reconnects after a growing backoff."""
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        self.backoff.failed()

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
