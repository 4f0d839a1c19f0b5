"""Independent clients for the venue tests: no loadgen codec is used here on purpose.

REST: http.client with the signing formula written out again from the facts file.
WS:   the `websockets` library's synchronous client.
FIX:  a raw socket with simplefix for encoding and parsing.
nginx: Debian's, started on loopback with a configuration a test writes (`running_nginx`).
A bug in loadgen's codecs therefore cannot be hidden by the same bug on the test side.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import itertools
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.parse
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import simplefix
from websockets.sync.client import connect as ws_connect

_nonce_source = itertools.count(int(time.time() * 1000) * 1000)


def free_port() -> int:
    """A loopback TCP port free right now, for a server a test starts."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else "")


def nginx_head(tmp: Path) -> str:
    """The top of an nginx.conf of a test: one worker in the foreground, everything it writes
    (pid, log, temp files) under `tmp`; add the http {} and stream {} blocks after it.
    `temp_paths(tmp)` goes inside http {}."""
    user = "user root;\n" if os.geteuid() == 0 else ""
    return (f"{user}worker_processes 1; daemon off; pid {tmp}/nginx.pid;\n"
            f"error_log {tmp}/error.log;\nevents {{ worker_connections 256; }}\n")  # fmt: skip


def temp_paths(tmp: Path) -> str:
    return "".join(
        f"  {k}_temp_path {tmp}/{k};\n"
        for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )


@contextmanager
def running_nginx(conf: Path, tmp: Path, ports: list[int]) -> Iterator[None]:
    """nginx running `conf` until the block ends, once it listens on every port (polled)."""
    import pytest

    proc = subprocess.Popen([NGINX, "-c", str(conf), "-p", str(tmp)], stderr=subprocess.PIPE)
    try:
        for port in ports:
            for _ in range(200):  # poll until it listens
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.05).close()
                    break
                except OSError:
                    if proc.poll() is not None:
                        assert proc.stderr is not None
                        pytest.fail(f"nginx did not start: {proc.stderr.read().decode()}")
                    time.sleep(0.05)  # the interval of the poll
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def as_at_a_terminal() -> None:
    """preexec_fn: SIGINT as a terminal's foreground job has it, whatever the test run inherited
    (started as a script's background job, it has SIGINT ignored, POSIX, and so would a child
    the test means to stop with SIGINT)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def kraken_sign(secret_b64: str, path: str, nonce: str, body: bytes) -> str:
    """API-Sign = b64(HMAC-SHA512(b64decode(secret), path + SHA256(nonce + body)))."""
    sha = hashlib.sha256(nonce.encode() + body).digest()
    mac = hmac.new(base64.b64decode(secret_b64), path.encode() + sha, hashlib.sha512)
    return base64.b64encode(mac.digest()).decode()


class Rest:
    def __init__(
        self, base_url: str, api_key: str = "", secret: str = "", ca_file: str = ""
    ) -> None:
        url = urllib.parse.urlsplit(base_url)
        if url.scheme == "https":  # the standard library's TLS, verified against ca_file
            ctx = ssl.create_default_context(cafile=ca_file or None)
            self.conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                url.hostname, url.port, timeout=10, context=ctx
            )
        else:
            self.conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
        self.api_key = api_key
        self.secret = secret

    def close(self) -> None:
        self.conn.close()

    def raw(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        self.conn.request(method, path, body=body, headers=headers or {})
        resp = self.conn.getresponse()
        data = resp.read()
        try:
            return resp.status, json.loads(data)
        except ValueError:
            return resp.status, data

    def public(self, name: str) -> Any:
        status, data = self.raw("GET", f"/0/public/{name}")
        assert status == 200, data
        return data

    def private(
        self,
        name: str,
        *,
        as_json: bool = False,
        nonce: int | None = None,
        sign_with: str | None = None,
        **fields: Any,
    ) -> Any:
        """Signed call; returns the parsed envelope {"error": [...], "result": ...}."""
        nonce_text = str(next(_nonce_source) if nonce is None else nonce)
        fields = {"nonce": nonce_text, **fields}
        if as_json:
            body = json.dumps(fields).encode()
            ctype = "application/json"
        else:
            body = form_encode(fields).encode()
            ctype = "application/x-www-form-urlencoded"
        path = f"/0/private/{name}"
        headers = {
            "API-Key": self.api_key,
            "API-Sign": kraken_sign(sign_with or self.secret, path, nonce_text, body),
            "Content-Type": ctype,
        }
        status, data = self.raw("POST", path, body, headers)
        assert status == 200, (status, data)
        return data


def form_encode(fields: dict[str, Any]) -> str:
    """Form encoding with Kraken's orders[i][k] convention for batches."""
    pairs: list[tuple[str, str]] = []
    for key, value in fields.items():
        if isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, dict):
                    pairs += [(f"{key}[{i}][{k}]", str(v)) for k, v in item.items()]
                else:
                    pairs.append((f"{key}[{i}]", str(item)))
        else:
            pairs.append((key, str(value).lower() if isinstance(value, bool) else str(value)))
    return urllib.parse.urlencode(pairs)


class Ws:
    """A v2 connection; `call` sends a request and returns the reply with its req_id."""

    def __init__(self, url: str, token: str = "") -> None:
        self._cm = ws_connect(url, open_timeout=10, max_size=2**22)
        self.sock = self._cm.__enter__()
        self.token = token
        self.req_ids = itertools.count(1)
        self.backlog: list[dict[str, Any]] = []
        first = self.recv()
        assert first["channel"] == "status", first

    def close(self) -> None:
        self._cm.__exit__(None, None, None)

    def send(self, payload: dict[str, Any] | str) -> None:
        self.sock.send(payload if isinstance(payload, str) else json.dumps(payload))

    def recv(self, timeout: float = 10.0) -> dict[str, Any]:
        return json.loads(self.sock.recv(timeout))

    def request(
        self, method: str, params: dict[str, Any] | None = None, *, token: bool = True
    ) -> int:
        req_id = next(self.req_ids)
        params = dict(params or {})
        if token:
            params["token"] = self.token
        self.send({"method": method, "params": params, "req_id": req_id})
        return req_id

    def reply(self, req_id: int) -> dict[str, Any]:
        """The next reply with req_id; other messages are kept in backlog."""
        for i, msg in enumerate(self.backlog):
            if msg.get("req_id") == req_id and "method" in msg:
                return self.backlog.pop(i)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            msg = self.recv()
            if msg.get("req_id") == req_id and "method" in msg:
                return msg
            self.backlog.append(msg)
        raise TimeoutError(f"no reply to req_id {req_id}")

    def call(self, method: str, params: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
        return self.reply(self.request(method, params, **kw))

    def channel(self, name: str, predicate: Any = None) -> dict[str, Any]:
        """The next message of a channel (checking the backlog first)."""
        for i, msg in enumerate(self.backlog):
            if msg.get("channel") == name and (predicate is None or predicate(msg)):
                return self.backlog.pop(i)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            msg = self.recv()
            if msg.get("channel") == name and (predicate is None or predicate(msg)):
                return msg
            self.backlog.append(msg)
        raise TimeoutError(f"no {name} message")


def fix_password(secret_b64: str, seq: int, sender: str, target: str, key: str, nonce: str) -> str:
    msg = f"35=A\x0134={seq}\x0149={sender}\x0156={target}\x01553={key}\x01{nonce}"
    digest = hashlib.sha256(msg.encode()).digest()
    mac = hmac.new(base64.b64decode(secret_b64), digest, hashlib.sha512)
    return base64.b64encode(mac.digest()).decode()


def fix_time() -> str:
    now = time.time()
    return time.strftime("%Y%m%d-%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}"


class Fix:
    """A FIX 4.4 initiator on a raw socket, with simplefix as the codec."""

    last_nonce = 0  # logon nonces are ms since epoch, made strictly increasing across clients

    def __init__(
        self,
        address: tuple[str, int],
        sender: str,
        api_key: str,
        secret: str,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.sock = socket.create_connection(address, timeout=10)
        if tls is not None:  # the standard library's own TLS socket: a peer independent of ours
            self.sock = tls.wrap_socket(self.sock, server_hostname=address[0])
        self.sender = sender
        self.api_key = api_key
        self.secret = secret
        self.seq = 1
        self.parser = simplefix.FixParser()
        self.backlog: list[simplefix.FixMessage] = []

    def close(self) -> None:
        self.sock.close()

    def message(
        self,
        msg_type: str,
        fields: list[tuple[int, Any]],
        *,
        seq: int | None = None,
        header: list[tuple[int, Any]] = (),
    ) -> bytes:
        msg = simplefix.FixMessage()
        msg.append_pair(8, "FIX.4.4", header=True)
        msg.append_pair(35, msg_type, header=True)
        msg.append_pair(49, self.sender, header=True)
        msg.append_pair(56, "KRAKEN-TRD", header=True)
        msg.append_pair(34, self.seq if seq is None else seq, header=True)
        msg.append_pair(52, fix_time(), header=True)
        for tag, value in header:
            msg.append_pair(tag, value, header=True)
        for tag, value in fields:
            msg.append_pair(tag, value)
        if seq is None:
            self.seq += 1
        return msg.encode()

    def send(self, msg_type: str, fields: list[tuple[int, Any]], **kw: Any) -> None:
        self.sock.sendall(self.message(msg_type, fields, **kw))

    def logon(
        self,
        *,
        reset: bool = True,
        cancel_on_disconnect: str | None = None,
        nonce: str | None = None,
        password: str | None = None,
        heartbeat: int = 30,
        omit: tuple[int, ...] = (),
    ) -> None:
        """A Logon, signed; `omit` leaves tags out (to test what the venue requires)."""
        if nonce is None:
            Fix.last_nonce = max(int(time.time() * 1000), Fix.last_nonce + 1)
            nonce = str(Fix.last_nonce)
        if reset:
            self.seq = 1
        pw = password or fix_password(
            self.secret, self.seq, self.sender, "KRAKEN-TRD", self.api_key, nonce
        )
        fields: list[tuple[int, Any]] = [(98, 0), (108, heartbeat)]
        if reset:
            fields.append((141, "Y"))
        fields += [(553, self.api_key), (554, pw), (5025, nonce)]
        if cancel_on_disconnect is not None:
            fields.append((8674, cancel_on_disconnect))
        self.send("A", [(tag, value) for tag, value in fields if tag not in omit])

    def recv(self, timeout: float = 10.0) -> simplefix.FixMessage | None:
        """The next message, or None when the venue closed the connection."""
        deadline = time.monotonic() + timeout
        while True:
            msg = self.parser.get_message()
            if msg is not None:
                return msg
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no FIX message")
            self.sock.settimeout(remaining)
            data = self.sock.recv(65536)
            if not data:
                return None
            self.parser.append_buffer(data)

    def expect(self, msg_type: str, predicate: Any = None) -> simplefix.FixMessage:
        """The next message of a type (kept messages first); others are kept in backlog."""
        for i, msg in enumerate(self.backlog):
            if msg.get(35) == msg_type.encode() and (predicate is None or predicate(msg)):
                return self.backlog.pop(i)
        while True:
            msg = self.recv()
            if msg is None:
                raise ConnectionError(f"closed while waiting for 35={msg_type}")
            if msg.get(35) == msg_type.encode() and (predicate is None or predicate(msg)):
                return msg
            self.backlog.append(msg)


def text(msg: simplefix.FixMessage, tag: int) -> str | None:
    value = msg.get(tag)
    return None if value is None else value.decode()


def wait_until(predicate: Any, timeout: float = 5.0, interval: float = 0.01) -> bool:
    """Poll `predicate` until it is true or `timeout` passes; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return bool(value)
        time.sleep(interval)


class BookKeeper:
    """A subscriber's book written from Kraken's checksum guide alone (facts 10.2), sharing no
    code with loadgen: numbers parsed as Decimal so the texts keep their trailing zeros."""

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.sides: dict[str, dict[Decimal, Decimal]] = {"bids": {}, "asks": {}}

    def apply(self, message: dict[str, Any]) -> bool:
        """Apply a book message (parsed with parse_float=Decimal); True if its checksum holds."""
        entry = message["data"][0]
        if message["type"] == "snapshot":
            self.sides = {"bids": {}, "asks": {}}
        for name in ("bids", "asks"):
            side = self.sides[name]
            for level in entry[name]:
                if level["qty"] == 0:
                    side.pop(level["price"], None)
                else:
                    side[level["price"]] = level["qty"]
            for price in self.ordered(name)[self.depth :]:
                del side[price]
        return entry["checksum"] == self.checksum()

    def ordered(self, name: str) -> list[Decimal]:
        return sorted(self.sides[name], reverse=name == "bids")

    def checksum(self) -> int:
        text = ""
        for name in ("asks", "bids"):
            for price in self.ordered(name)[:10]:
                qty = self.sides[name][price]
                text += str(price).replace(".", "").lstrip("0") + str(qty).replace(".", "").lstrip(
                    "0"
                )
        return zlib.crc32(text.encode())
