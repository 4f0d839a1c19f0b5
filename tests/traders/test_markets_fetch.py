"""The traders' markets (AssetPairs and Ticker) are fetched once a process, however many users
spawn at once. Run in a child process: it imports Locust, whose gevent patching must not reach
this one (DESIGN: gevent and asyncio never share a process)."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import gevent, gevent.monkey
gevent.monkey.patch_all()
import loadgen.clients.rest as rest
from loadgen.users import options
calls = []
def fetch(host, names, tls=None):
    calls.append(names)
    gevent.sleep(0.05)  # a fetch yields, as a real one does on its socket
    return ["market"]
rest.fetch_markets = fetch
users = [gevent.spawn(options.markets, "http://127.0.0.1:1", "XBTUSD:3,ETHUSD") for _ in range(10)]
gevent.joinall(users, raise_error=True)
assert all(u.value == (["market"], [3.0, 1.0]) for u in users), [u.value for u in users]
print(len(calls))
"""


def test_users_spawned_together_share_one_fetch_of_the_markets():
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "1"  # 10 before: each user missed the cache while one fetched
