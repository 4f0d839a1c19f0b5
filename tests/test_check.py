"""`loadgen check PROFILE` and the preflight of `loadgen run`, against `loadgen venue --tls`.

One venue for the module, as a user runs it in another terminal (its own folder, free ports,
tier starter so a check's orders leave a counter warm long enough to be seen: 27 points at
1/s). Each test's keys file starts at a key of its own (a check authenticates and trades on
the first ones), so the tests' REST and trading counters never meet: Starter's REST counter
holds 15 calls.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from loadgen import keyuse
from tests.clients import Rest, free_port

PROFILE = """
name = "{name}"
[target]
venue = "url"
rest = "{rest}"
ws = "{ws}"
fix = "{fix}"
keys_file = "{keys_file}"
ca_file = "{ca_file}"
tier = "{tier}"
[users]
rest = 1
ws = 1
fix = 1
[flow]
pairs = {{ {pair} = 1 }}
[load]
loop = "closed"
max_rate = 50
[[stages]]
kind = "step"
duration = "3s"
users = 2
"""


class Venue:
    def __init__(self, folder: Path, ports: list[int]) -> None:
        self.folder = folder
        self.rest = f"https://127.0.0.1:{ports[0]}"
        self.ws = f"wss://127.0.0.1:{ports[1]}/v2"
        self.fix = f"tls://127.0.0.1:{ports[2]}"
        self.keys_file = folder / "results" / "venue-keys.json"
        self.ca_file = folder / "results" / "venue-ca.pem"

    def keys(self, first: int) -> list[dict[str, str]]:
        keys = json.loads(self.keys_file.read_text())["keys"]
        return keys[first:] + keys[:first]

    def profile(self, name: str, first_key: int, pair: str = "XBTUSD", **override: str) -> Path:
        """A profile of two users whose keys file starts at key `first_key`."""
        keys_file = self.folder / f"keys-{first_key}.json"
        keys_file.write_text(json.dumps({"keys": self.keys(first_key)}))
        fields = {"rest": self.rest, "ws": self.ws, "fix": self.fix, "pair": pair,
                  "keys_file": keys_file, "ca_file": self.ca_file, "tier": "starter", **override}  # fmt: skip
        path = self.folder / f"{name}.toml"
        path.write_text(PROFILE.format(name=name, **fields))
        return path

    def open_orders(self, first_key: int) -> int:
        """Orders open on a profile's two keys, asked with the standard library's HTTPS client."""
        total = 0
        for key in self.keys(first_key)[:2]:
            rest = Rest(self.rest, key["api_key"], key["secret"], str(self.ca_file))
            # the nonce as loadgen makes it (microseconds now): above what the checks sent
            reply = rest.private("OpenOrders", nonce=time.time_ns() // 1000)
            rest.close()
            assert reply["error"] == [], reply
            total += len(reply["result"]["open"])
        return total


@pytest.fixture(scope="module")
def venue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Venue]:
    folder = tmp_path_factory.mktemp("check")
    ports = [free_port() for _ in range(3)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "loadgen.cli", "venue", "--tls", "--tier", "starter", "--keys",
         "12", "--pairs", "30", "--rest-port", str(ports[0]), "--ws-port", str(ports[1]),
         "--fix-port", str(ports[2])],
        cwd=folder, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        assert any(line.startswith("ready") for line in proc.stdout), "the venue did not start"
        yield Venue(folder, ports)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def check(venue: Venue, profile: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "loadgen.cli", "check", str(profile), *args],
        cwd=venue.folder, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def fails(proc: subprocess.CompletedProcess) -> list[str]:
    return [line.split(None, 2)[2] for line in proc.stdout.splitlines() if " FAIL " in line]


def test_a_healthy_target_passes_every_step_and_leaves_nothing_open(venue: Venue) -> None:
    proc = check(venue, venue.profile("healthy", 0))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    steps = [line.split()[:2] for line in proc.stdout.splitlines() if line.startswith("  ")]
    assert steps == [["ok", "rest"], ["ok", "ws"], ["ok", "fix"], ["ok", "time"],
                     ["ok", "pairs"], ["ok", "keys"], ["ok", "rest"], ["ok", "ws"], ["ok", "fix"],
                     ["ok", "cleanup"]], proc.stdout  # fmt: skip
    assert proc.stdout.count("verified") == 3  # the certificate of each endpoint, shown
    assert "TLSv1.3" in proc.stdout and "WebSocket upgrade accepted" in proc.stdout
    assert proc.stdout.count("listed by OpenOrders") == 3
    assert proc.stdout.rstrip().endswith("healthy can run")
    (out,) = (venue.folder / "results").glob("check-*/check.json")
    saved = json.loads(out.read_text())
    assert saved["ok"] is True and len(saved["lines"]) == 10
    assert venue.open_orders(0) == 0
    for key in json.loads(venue.keys_file.read_text())["keys"]:  # no secret kept
        assert key["secret"] not in out.read_text() + proc.stdout

    # The check's own orders left key 0's counter warm: a check right after, on keys 11 and
    # 0 (its orders on key 11), names it
    again = check(venue, venue.profile("again", 11))
    assert again.returncode == 0, again.stdout + again.stderr
    (warm,) = [line for line in again.stdout.splitlines() if line.startswith("  warn")]
    assert "1 keys traded lately" in warm and "loadgen run waits it out" in warm


def test_a_warm_order_key_is_waited_out_before_the_orders_or_named_past_max_time(
    venue: Venue,
) -> None:
    """A new user's check right after a run failed: its orders went on a key the run had left
    warm and were refused. Now the check waits for that key (as `loadgen run` does), or says
    so in one line when the wait is past --max-time."""
    key = venue.keys(1)[0]["api_key"]
    results = venue.folder / "results"
    keyuse.write(results / "long-ago", venue.rest, {key: 200.0})  # warm past any --max-time
    proc = check(venue, venue.profile("too-warm", 1), "--max-time", "20")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    (failed,) = fails(proc)
    assert re.fullmatch(r"the first key's trading counter is warm for (199|200) s more, past "
                        "--max-time: check again then, or give a longer --max-time", failed)  # fmt: skip
    for record in (results / "long-ago").iterdir():
        record.unlink()
    started = time.monotonic()
    keyuse.write(results / "just-now", venue.rest, {key: 6.0})
    proc = check(venue, venue.profile("warm", 1))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"ok +orders +waited \d s for the first key's trading counter", proc.stdout)
    assert time.monotonic() - started >= 6.0  # its orders went once the key was quiet
    assert proc.stdout.count("listed by OpenOrders") == 3


@pytest.mark.parametrize(
    ("case", "first_key", "override", "cause"),
    [
        ("wrong-path", 2, {"rest": "{rest}/0"}, "HTTP 404 Not Found (target.rest's path '/0'"),
        ("ws-path", 3, {"ws": "{ws}3"}, "WebSocket upgrade of /v23 refused: HTTP/1.1 404"),
        ("unknown-pair", 4, {"pair": "XBTUSE"}, "the venue has no market 'XBTUSE'"),
        ("dead-port", 5, {"fix": "tls://127.0.0.1:{dead}"}, "cannot connect: Connection refused"),
        ("bad-certificate", 6, {"ca_file": ""}, "does not verify: unable to get local issuer"),
        ("bad-key", 7, {"keys_file": "{bad_keys}"}, "EAPI:Invalid signature"),
        ("wrong-tier", 8, {"tier": "pro"}, "is tier 'starter' in the keys file, target.tier is"),
    ],
)  # fmt: skip
def test_each_fault_fails_with_one_line_naming_it(
    venue: Venue, case: str, first_key: int, override: dict[str, str], cause: str
) -> None:
    bad_keys = venue.folder / "bad-keys.json"
    keys = venue.keys(first_key)
    keys[1]["secret"] = keys[2]["secret"]  # the second key signs with another's secret
    bad_keys.write_text(json.dumps({"keys": keys}))
    names = {"rest": venue.rest, "ws": venue.ws, "dead": free_port(), "bad_keys": bad_keys}
    fields = {k: v.format(**names) for k, v in override.items()}
    proc = check(venue, venue.profile(case, first_key, **fields))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    (summary,) = proc.stderr.splitlines()  # one line says why it cannot run
    assert f"{case} cannot run" in summary and cause in summary, proc.stderr
    assert all(cause.split(":")[0] in f or "does not verify" in f for f in fails(proc)), proc.stdout
    assert venue.open_orders(first_key) == 0


def test_an_embedded_profile_checks_against_its_own_venue(tmp_path: Path) -> None:
    path = tmp_path / "embedded.toml"
    path.write_text('name = "embedded"\n[target]\ntls = true\npairs = 30\n[users]\nrest = 1\n'
                    "ws = 1\nfix = 1\n[load]\nmax_rate = 50\n[[stages]]\nkind = \"step\"\n"
                    'duration = "3s"\nusers = 3\n')  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-m", "loadgen.cli", "check", str(path), "--results", str(tmp_path)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 of 3 keys authenticated" in proc.stdout
    assert proc.stdout.count("verified") == 3 and " FAIL " not in proc.stdout


def test_run_refuses_before_load_with_the_named_reason(venue: Venue) -> None:
    results = venue.folder / "refused"
    proc = subprocess.run(
        [sys.executable, "-m", "loadgen.cli", "run", str(venue.profile("nopair", 10, "NOSUCH")),
         "--results", str(results)],
        cwd=venue.folder, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "refused before load: flow.pairs: the venue has no market 'NOSUCH'" in proc.stderr
    (run_dir,) = results.glob("*-nopair")
    assert not (run_dir / "locust.log").exists()  # no user was started to die
    meta = json.loads((run_dir / "run.json").read_text())
    assert "NOSUCH" in meta["refused"][0]
    steps = json.loads((run_dir / "preflight.json").read_text())["lines"]
    assert [x["step"] for x in steps] == ["rest", "ws", "fix", "time", "pairs"]


def test_key_records_tell_when_counters_are_quiet(tmp_path: Path) -> None:
    now = 1_000_000.0
    quiet = {"key-a": keyuse.quiet_after("pro", 90.0), "key-b": keyuse.quiet_after("pro", 500)}
    assert quiet == {"key-a": 24.0, "key-b": 48.0}  # 90 / 3.75; the threshold 180 at most
    assert keyuse.quiet_after("unlimited", 1e9) == 0.0
    keyuse.write(tmp_path / "run-1", "https://venue/", quiet, now=now)
    on = lambda t, keys=("key-a", "key-b"): keyuse.warm(tmp_path, "https://venue", keys, t)  # noqa: E731
    assert on(now + 10)[:2] == (38.0, 2)
    assert on(now + 30)[:2] == (18.0, 1)  # key-a is quiet by then
    assert on(now + 10, ["key-a"])[:2] == (14.0, 1)
    assert on(now + 60) == (0.0, 0, "")
    assert keyuse.warm(tmp_path, "https://other", ["key-b"], now + 10) == (0.0, 0, "")
    record = next((tmp_path / "run-1").glob("keys-used-*.json")).read_text()
    assert "key-a" not in record  # fingerprints only


def test_the_probe_reaches_a_tls_venue_with_its_ca_and_is_refused_without(venue: Venue) -> None:
    keys = venue.folder / "probe-keys.json"
    keys.write_text(json.dumps({"keys": venue.keys(10)[:2]}))
    base = [sys.executable, "-m", "loadgen.cli", "probe", "--target", "ws", "--url", venue.rest,
            "--ws-url", venue.ws, "--keys-file", str(keys), "--pair", "ADAUSD", "--max-rate",
            "50", "--max-requests", "20", "--max-time", "10", "--results", str(venue.folder)]  # fmt: skip
    refused = subprocess.run(base, capture_output=True, text=True, timeout=60, check=False)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "does not verify" in refused.stderr and "--ca-file" in refused.stderr
    probed = subprocess.run([*base, "--ca-file", str(venue.ca_file)], capture_output=True,
                            text=True, timeout=60, check=False)  # fmt: skip
    assert "20 requests (0 failed)" in probed.stdout, probed.stdout + probed.stderr
    assert venue.open_orders(10) == 0  # the probe cancelled what it placed
