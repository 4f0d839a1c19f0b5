"""Every trader through Debian's nginx terminating TLS in front of the plain venue, as exchanges
deploy gateways: the http proxy for REST and for WS (with Upgrade), the stream proxy for FIX.
The same requests through nginx and direct must come out the same and be counted the same by
the venue."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from loadgen.flow.model import FlowModel
from loadgen.outcome import OK
from tests.clients import NGINX, free_port, nginx_head, running_nginx, temp_paths
from tests.traders.conftest import TestVenue, make_client
from tests.traders.test_clients import BTC

STREAM = Path("/usr/lib/nginx/modules/ngx_stream_module.so")  # Debian's libnginx-mod-stream
ORDERS = 10  # adds, each cancelled, per protocol and path


class Via:
    """The venue as make_client sees it, at other endpoints (nginx's)."""

    def __init__(self, venue: TestVenue, endpoints: dict[str, str], ca_file: str) -> None:
        self.venue, self.endpoints, self.ca_file = venue, endpoints, ca_file

    def key(self, tier: str = "pro") -> dict[str, Any]:
        return self.venue.key(tier)


def _port(url: str) -> str:
    return url.rsplit(":", 1)[1].split("/")[0]


def _config(tmp: Path, venue: TestVenue, ports: dict[str, int], cert: Path, key: Path) -> Path:
    e = venue.endpoints
    tls = f"ssl_certificate {cert}; ssl_certificate_key {key};"
    conf = tmp / "nginx.conf"
    conf.write_text(
        f"load_module {STREAM};\n{nginx_head(tmp)}http {{\n  access_log off;\n{temp_paths(tmp)}"
        f"  server {{ listen 127.0.0.1:{ports['rest']} ssl; {tls}\n"
        f"    location / {{ proxy_pass http://127.0.0.1:{_port(e['rest'])};\n"
        '      proxy_http_version 1.1; proxy_set_header Connection ""; } }\n'
        f"  server {{ listen 127.0.0.1:{ports['ws']} ssl; {tls}\n"
        f"    location / {{ proxy_pass http://127.0.0.1:{_port(e['ws'])};\n"
        "      proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade;\n"
        '      proxy_set_header Connection "upgrade"; } }\n}\n'
        f"stream {{\n  server {{ listen 127.0.0.1:{ports['fix']} ssl; {tls}\n"
        f"    proxy_pass 127.0.0.1:{_port(e['fix'])}; }}\n}}\n"
    )
    return conf


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestVenue, Via]]:
    """A plain venue of its own (its counts are this module's) and nginx in front of it."""
    if not NGINX or not STREAM.exists():
        pytest.skip("Debian's nginx with its stream module is not installed (.ci/run installs it)")
    import trustme

    tmp = tmp_path_factory.mktemp("nginx")
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1")
    cert, key, ca_file = tmp / "cert.pem", tmp / "key.pem", tmp / "ca.pem"
    issued.private_key_and_cert_chain_pem.write_to_path(str(cert))
    issued.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(ca_file))
    venue = TestVenue("--keys", "20")
    ports = {p: free_port() for p in ("rest", "ws", "fix")}
    conf = _config(tmp, venue, ports, cert, key)
    endpoints = {
        "rest": f"https://127.0.0.1:{ports['rest']}",
        "ws": f"wss://127.0.0.1:{ports['ws']}/v2",
        "fix": f"tls://127.0.0.1:{ports['fix']}",
    }
    try:
        with running_nginx(conf, tmp, list(ports.values())):
            yield venue, Via(venue, endpoints, str(ca_file))
    finally:
        venue.stop()


def _trade(client: Any, seed: int) -> list[str]:
    """ORDERS adds, each cancelled, then a cancel-all: the outcome of each."""
    model = FlowModel([BTC], seed=seed, cross_share=0.0)
    outcomes = []
    for _ in range(ORDERS):
        order = model._order(BTC, 0.0)
        placed = client.add(order)
        order.txid = placed.detail
        outcomes += [placed.outcome, client.cancel(order).outcome]
    outcomes.append(client.cancel_all().outcome)
    client.close()
    return outcomes


def test_every_trader_through_nginx_tls_agrees_with_direct(gateway):
    venue, via = gateway
    for protocol in ("rest", "ws", "fix"):
        through = _trade(make_client(protocol, via), seed=1)
        direct = _trade(make_client(protocol, venue), seed=1)
        assert through == direct == [OK] * (2 * ORDERS + 1), (protocol, through, direct)
    lines = venue.stop()  # the venue's own count of what it served, over both paths
    served = next(line for line in lines if "served" in line)
    per_path = 2 * ORDERS + 1
    assert f"rest {2 * per_path}, ws {2 * per_path}, fix {2 * per_path}" in served, served
