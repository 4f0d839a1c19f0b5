"""TLS for the three clients: `https://`, `wss://` and FIX over `tls://HOST:PORT`.

Why a memory BIO and not `ssl.SSLSocket`: the clients read with one `recvmsg()` on the socket
gevent wraps, so each read carries the kernel's receive stamp (net.py). `ssl.SSLObject` over two
`ssl.MemoryBIO`s keeps that: ciphertext is read (and stamped) exactly as plain TCP is, then
decrypted in memory; a reply's stamp is that of the read that completed its last TLS record.
Writes encrypt in memory and go out in the same single `send()`.

Choices:
- Verification is on by default (the system's CAs, the host name checked against SNI). A
  staging gateway's own CA is given with a CA file; `insecure` turns verification off, and the
  run's report says so (users.options).
- Sessions are resumed on reconnect: the last session of each (host, port, context) is kept
  and offered to the next handshake (TLS 1.3 tickets arrive after the handshake, so the session
  is taken when the connection ends, and again after each handshake).
- A certificate that does not verify is a `TlsError` naming the host and the reason.
"""

from __future__ import annotations

import functools
import hashlib
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # only a type here: this module loads without gevent (check, probe use it)
    from gevent import socket

READ_SIZE = 65536
SCHEMES = frozenset(("https", "wss", "tls"))  # the URL schemes that connect over TLS


class TlsError(ConnectionError):
    """The TLS handshake failed: a certificate that does not verify, or no TLS at all. The
    message ends with the traders' options that would help; `reason` is without them."""

    def __init__(self, reason: str, advice: str = "") -> None:
        super().__init__(f"{reason} ({advice})" if advice else reason)
        self.reason = reason
        self.unverified = bool(advice)


VERIFY_ADVICE = "give its CA with --ca-file, or --insecure to skip verification"


@functools.lru_cache(maxsize=8)
def context(ca_file: str = "", insecure: bool = False) -> ssl.SSLContext:
    """The client context: system CAs (or `ca_file`'s), host names checked; `insecure`: none."""
    ctx = ssl.create_default_context(cafile=ca_file or None)
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def for_scheme(scheme: str, ctx: ssl.SSLContext | None) -> ssl.SSLContext | None:
    """The context a URL of `scheme` connects with: None for a plain scheme, `ctx` (or the
    verifying default) for https, wss and tls."""
    if scheme not in SCHEMES:
        return None
    return ctx or context()


_sessions: dict[tuple[str, int, int], ssl.SSLSession] = {}


class TlsStream:
    """A TLS connection over a connected gevent socket (see the module docstring)."""

    def __init__(self, sock: socket.socket, ctx: ssl.SSLContext, host: str, port: int) -> None:
        self.raw = sock
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        self._key = (host, port, id(ctx))
        self._tls = ctx.wrap_bio(
            self._in, self._out, server_hostname=host, session=_sessions.get(self._key)
        )

    @property
    def resumed(self) -> bool:
        return self._tls.session_reused

    def describe(self) -> str:
        """The handshake as an operator reads it: version, cipher, whose certificate, from whom,
        until when, verified or not (then its SHA-256, to compare by hand)."""
        tls = self._tls
        cipher = (tls.cipher() or ("?",))[0]
        head = f"{tls.version()} {cipher}{', session resumed' if tls.session_reused else ''}"
        cert = tls.getpeercert()
        if not cert:
            der = tls.getpeercert(binary_form=True) or b""
            digest = hashlib.sha256(der).hexdigest()[:32]
            return f"{head}; certificate NOT verified (insecure), sha256 {digest}..."
        subject = _name(cert.get("subject", ())) or "?"
        issuer = _name(cert.get("issuer", ())) or "?"
        names: Any = cert.get("subjectAltName", ())  # ((kind, name), ...)
        alt = ", ".join(v for k, v in names if k in ("DNS", "IP Address"))
        return (
            f"{head}; certificate {subject}{f' ({alt})' if alt else ''} from {issuer}, "
            f"valid until {cert.get('notAfter', '?')}, verified"
        )

    def handshake(self) -> None:
        """Complete the handshake under the socket's timeout; TlsError when it fails."""
        while True:
            try:
                self._tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                data = self.raw.recv(READ_SIZE)
                if not data:
                    raise TlsError(f"{self._peer()} closed during the TLS handshake") from None
                self._in.write(data)
            except ssl.SSLCertVerificationError as exc:
                raise TlsError(
                    f"TLS certificate of {self._peer()} does not verify: "
                    f"{exc.verify_message or exc.reason}",
                    VERIFY_ADVICE,
                ) from None
            except ssl.SSLError as exc:
                raise TlsError(f"TLS handshake with {self._peer()} failed: {exc.reason}") from None
        self._flush()
        self._keep_session()

    def _peer(self) -> str:
        return f"{self._key[0]}:{self._key[1]}"

    def _keep_session(self) -> None:
        session = self._tls.session
        if session is not None:
            _sessions[self._key] = session

    def _flush(self) -> None:
        out = self._out.read()
        if out:
            self.raw.sendall(out)

    # ---- what net.py and the clients call ------------------------------------------------------

    def encrypt(self, data: bytes) -> bytes:
        """The records that carry `data`, to be sent as one write."""
        self._tls.write(data)
        return self._out.read()

    def decrypt(self, data: bytes) -> bytes | None:
        """Plaintext from ciphertext just read; None when the peer closed (close_notify), b""
        when the bytes completed no record yet (read again)."""
        self._in.write(data)
        chunks: list[bytes] = []
        while True:
            try:
                chunk = self._tls.read(READ_SIZE)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:
                return b"".join(chunks) or None
            except ssl.SSLError as exc:
                raise OSError(f"TLS: {exc.reason}") from None
            if not chunk:
                break
            chunks.append(chunk)
        self._flush()  # a post-handshake answer (TLS 1.3 KeyUpdate), if any
        return b"".join(chunks)

    def read_plain(self, read: Callable[[], bytes]) -> bytes:
        """Plaintext of the next `read()`s of ciphertext, as many as complete a record; b"" once
        closed. (net.recv_stamped reads stamped, so a reply keeps the completing read's stamp.)"""
        while True:
            data = read()
            plain = self.decrypt(data) if data else None
            if plain is None:
                return b""
            if plain:
                return plain

    def sendall(self, data: bytes) -> None:
        self.raw.sendall(self.encrypt(data))

    def recv(self, size: int = READ_SIZE) -> bytes:
        """Plaintext (at most what the records hold; `size` is ignored), b"" once closed."""
        return self.read_plain(lambda: self.raw.recv(READ_SIZE))

    def settimeout(self, timeout: float | None) -> None:
        self.raw.settimeout(timeout)

    def close(self) -> None:
        self._keep_session()
        self.raw.close()

    def __getattr__(self, name: str) -> Any:
        """fileno, setsockopt, getsockname ... of the socket; never its private parts (`_sock`,
        `_wait`), which would read or write around the encryption."""
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.raw, name)


def _name(rdns: Any) -> str:
    """The common name (else the organisation) from getpeercert()'s nested tuples."""
    fields = {k: v for rdn in rdns for k, v in rdn}
    return str(fields.get("commonName") or fields.get("organizationName") or "")


def wrap(sock: socket.socket, ctx: ssl.SSLContext, host: str, port: int) -> TlsStream:
    """`sock` after a TLS handshake with host:port (closed on failure)."""
    stream = TlsStream(sock, ctx, host, port)
    try:
        stream.handshake()
    except BaseException:
        sock.close()
        raise
    return stream
