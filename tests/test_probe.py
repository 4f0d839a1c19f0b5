"""`loadgen probe` recovers configured limits from outside: the embedded venue set several ways
over its three protocols, and nginx's limit_req (Debian's nginx, started here on loopback)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from loadgen.probe import ACCEPTED, REFUSED, Bounds, ProbeError, Sender, measure
from tests.clients import NGINX, free_port, nginx_head, running_nginx, temp_paths


def probe(tmp: Path, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    proc = subprocess.run(
        [sys.executable, "-m", "loadgen.cli", "probe", "--results", str(tmp), *args],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    found = sorted(tmp.glob("probe-*/probe.json"))
    return proc, json.loads(found[-1].read_text()) if found else {}


@pytest.mark.parametrize(
    ("protocol", "threshold", "decay"), [("rest", 60, 20), ("ws", 40, 10), ("fix", 100, 25)]
)
def test_the_probe_recovers_the_venues_configured_limits(
    tmp_path: Path, protocol: str, threshold: float, decay: float
) -> None:
    proc, found = probe(
        tmp_path, "--target", protocol, "--limit-threshold", str(threshold),
        "--limit-decay", str(decay), "--max-rate", "1000",
        "--expect-burst", str(threshold), "--expect-rate", str(decay),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert found["burst"]["value"] == pytest.approx(threshold, rel=0.10)
    assert found["rate"]["value"] == pytest.approx(decay, rel=0.10)
    assert found["recovery"]["rate"] == pytest.approx(decay, rel=0.25)
    # Kraken's trading counter is per key and pair, shared by a key's connections
    assert found["scope"]["per_key"] and found["scope"]["per_pair"]
    assert not found["scope"]["per_connection"]
    assert "within tolerance" in proc.stdout and "OUTSIDE" not in proc.stdout


def test_a_wrong_expectation_fails_the_probe(tmp_path: Path) -> None:
    proc, found = probe(
        tmp_path, "--target", "rest", "--limit-threshold", "30", "--limit-decay", "30",
        "--expect-burst", "60",
    )  # fmt: skip
    assert proc.returncode == 1
    assert "OUTSIDE tolerance" in proc.stdout and found["checks"][0]["ok"] is False


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[str]:
    """nginx with limit_req keyed by the X-Api-Key header: rate 20 r/s, burst 10, nodelay."""
    if not NGINX:
        pytest.skip("Debian's nginx is not installed (.ci/run installs it)")
    port = free_port()
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "index.html").write_text("ok\n")
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"{nginx_head(tmp_path)}http {{\n  access_log off;\n{temp_paths(tmp_path)}"
        "  limit_req_zone $http_x_api_key zone=keys:1m rate=20r/s;\n"
        "  limit_req_status 429;\n"
        f"  server {{ listen 127.0.0.1:{port}; root {tmp_path}/www;\n"
        "    location / { limit_req zone=keys burst=10 nodelay; } }\n}\n"
    )
    with running_nginx(conf, tmp_path, [port]):
        yield f"http://127.0.0.1:{port}/index.html"


def test_the_probe_recovers_nginx_limit_req(tmp_path: Path, nginx: str) -> None:
    # limit_req with burst=10 lets 1 + 10 requests through at once, then 20 per second
    proc, found = probe(
        tmp_path, "--target", "http", "--url", nginx, "--key-header", "X-Api-Key",
        "--keys", "alpha,beta", "--max-rate", "400", "--expect-burst", "11", "--expect-rate", "20",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert found["burst"]["value"] == pytest.approx(11, rel=0.10)
    assert found["rate"]["value"] == pytest.approx(20, rel=0.10)
    assert found["scope"]["per_key"] and not found["scope"]["per_connection"]


class Bucket:
    """A token bucket on a fake clock, for the bounds tests."""

    def __init__(self, clock: list[float]) -> None:
        self.clock = clock
        self.tokens, self.stamp = 5.0, 0.0

    def __call__(self, key: int, conn: int, pair: int) -> str:
        now = self.clock[0]
        self.tokens = min(5.0, self.tokens + (now - self.stamp) * 2.0)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return ACCEPTED
        return REFUSED


def _fake(bounds: Bounds) -> Sender:
    clock = [0.0]

    def sleep(s: float) -> None:
        clock[0] += s

    return Sender(Bucket(clock), bounds, clock=lambda: clock[0], sleep=sleep)


def test_the_probe_never_sends_faster_than_its_cap_and_stops_at_its_bounds() -> None:
    send = _fake(Bounds(max_rate=50, max_requests=100_000, max_time=30))
    found = measure(send)
    assert found["complete"]
    assert found["rate"]["value"] == pytest.approx(2.0, rel=0.05)
    assert send.sent / found["elapsed_s"] <= 50 * 1.001
    capped = _fake(Bounds(max_rate=50, max_requests=40, max_time=30))
    found = measure(capped)
    assert not found["complete"] and "max-requests" in found["stopped"] and capped.sent == 40


def test_bad_bounds_are_refused_with_their_name() -> None:
    with pytest.raises(ProbeError, match="--max-rate"):
        Bounds(max_rate=0, max_requests=100, max_time=10)


def test_the_probe_refuses_a_non_loopback_url_unless_allowed(tmp_path) -> None:
    """Issue 13: `loadgen probe --url` had no host check (nothing is sent: it is refused first)."""
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "loadgen.cli", "probe", "--target", "http", "--url",
         "http://venue.example/limited", "--results", str(tmp_path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "host 'venue.example' is not loopback and not in --allow-host" in proc.stderr
