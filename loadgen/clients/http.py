"""One keep-alive HTTP/1.1 connection on a gevent socket, one request in flight.

Requests arrive as ready bytes (the REST client builds them); responses are parsed by httptools
(C). Transport failures raise TransportError, a timeout raises TransportTimeout; either way the
socket is dropped and the next request reconnects, after a backoff when the last one failed.
"""

from __future__ import annotations

import httptools
from gevent import socket

from loadgen.clients.backoff import Backoff
from loadgen.clients.net import connect, wait_readable


class TransportError(Exception):
    """The connection failed (refused, reset, closed mid-reply, garbled HTTP)."""


class TransportTimeout(TransportError):
    """No complete reply within the timeout."""


class HttpConnection:
    def __init__(self, host: str, port: int, timeout: float = 10.0) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self.parser = httptools.HttpResponseParser(self)
        self._body: list[bytes] = []
        self._done = False
        self.backoff = Backoff()

    # httptools callbacks
    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        self._done = True

    def roundtrip(self, request: bytes) -> tuple[int, bytes]:
        """Send one request, return (HTTP status, body)."""
        sock = self.sock or self._connect()
        self._body = []
        self._done = False
        try:
            sock.sendall(request)
            while not self._done:
                wait_readable(sock)
                data = sock.recv(65536)
                if not data:
                    raise TransportError("venue closed the connection")
                self.parser.feed_data(data)
        except TimeoutError:
            self._fail()
            raise TransportTimeout(f"no reply within {self.timeout} s") from None
        except httptools.HttpParserError as exc:
            self._fail()
            raise TransportError(f"malformed HTTP reply: {exc}") from None
        except OSError as exc:
            self._fail()
            raise TransportError(str(exc) or exc.__class__.__name__) from None
        except TransportError:
            self._fail()
            raise
        self.backoff.succeeded()
        return self.parser.get_status_code(), (
            self._body[0] if len(self._body) == 1 else b"".join(self._body)
        )

    def _connect(self) -> socket.socket:
        try:
            sock = connect((self.host, self.port), self.timeout, self.backoff)
        except OSError as exc:
            self._fail()
            raise TransportError(f"connect: {exc}") from None
        self.sock = sock
        self.parser = httptools.HttpResponseParser(self)
        return sock

    def _fail(self) -> None:
        """Drop the socket; the next request reconnects after a growing backoff."""
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        self.backoff.failed()

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
