"""The embedded venue's TLS (`loadgen venue --tls`): a certificate authority of its own, made at
start, and a server certificate it signs for the loopback names.

Made with `trustme` (on `cryptography`) rather than hand-built ASN.1. The CA's certificate is
written as `venue-ca.pem` next to the keys file (or where the caller says), so the run's traders
verify the venue as they would a staging gateway with its own CA (`--ca-file`); its key never
leaves this process. With TLS on, every port serves TLS only, FIX included, as on Kraken (facts
section 5: plain TCP is rejected): a plain peer's bytes fail the handshake and it is closed.
"""

from __future__ import annotations

import ssl
from pathlib import Path

CA_FILE = "venue-ca.pem"


def server_context(host: str, directory: Path) -> tuple[ssl.SSLContext, Path]:
    """A server context for `host` (and localhost, 127.0.0.1, ::1), and the CA file written in
    `directory` that verifies it."""
    import trustme

    ca = trustme.CA(organization_name="loadgen embedded venue")
    names = dict.fromkeys((host, "localhost", "127.0.0.1", "::1"))
    cert = ca.issue_cert(*names)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(ctx)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / CA_FILE
    ca.cert_pem.write_to_path(str(path))
    return ctx, path
