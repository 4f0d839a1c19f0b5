"""Shared fixtures: one embedded venue on loopback for the session, fresh keys per test."""

from __future__ import annotations

import os
import sys
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from loadgen.protocol.fixsession import ROLLOVER_ENV
from loadgen.venue.app import VenueConfig, VenueThread
from tests.clients import Fix, Rest, Ws

# No venue of the suite (in this process or started by a test) has a FIX rollover unless the
# test sets one: a suite that runs across 22:00 UTC must not see its sessions logged out.
os.environ[ROLLOVER_ENV] = "off"


def _gevent_patched() -> bool:
    monkey = sys.modules.get("gevent.monkey")
    return monkey is not None and monkey.is_module_patched("threading")


def _stop_if_patched(where: str) -> None:
    """The suite's venue runs on a thread with its own asyncio loop. Once gevent has patched
    threading (Locust does on import), that "thread" is a greenlet: its loop never yields and
    the next test that talks to it hangs, far from the cause. Stop the session here instead,
    naming where it happened. Tests that need Locust run it in a child process."""
    if _gevent_patched():
        pytest.exit(
            f"{where} let gevent patch this test process's threads (an import of Locust or "
            "loadgen.users.webui/base?): run that in a child process",
            returncode=1,
        )


def pytest_collection_finish(session: pytest.Session) -> None:
    _stop_if_patched("collecting the tests")


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    _stop_if_patched(item.nodeid)


TIERS = ["pro", "starter", "intermediate", "unlimited"]
KEYS = 1600  # enough fresh keys of each tier for every test that takes one (400 each)


@dataclass
class Key:
    api_key: str
    secret: str
    tier: str
    comp_ids: list[str]  # the FIX SenderCompIDs the venue assigned the key


@pytest.fixture(scope="session")
def venue() -> Iterator[VenueThread]:
    thread = VenueThread(VenueConfig(keys=KEYS, tiers=TIERS, pairs=60, keys_file=None)).start()
    yield thread
    thread.stop()


@pytest.fixture(scope="session")
def _key_pool(venue: VenueThread) -> dict[str, list[Key]]:
    pool: dict[str, list[Key]] = {t: [] for t in TIERS}
    for account in venue.venue.accounts.all:
        pool[account.tier.name].append(
            Key(account.api_key, account.secret_b64, account.tier.name, account.fix_comp_ids)
        )
    return pool


@pytest.fixture
def new_key(_key_pool: dict[str, list[Key]]) -> Callable[..., Key]:
    """A key no other test has used (its counters and orders start empty)."""

    def take(tier: str = "pro") -> Key:
        if not _key_pool[tier]:
            raise RuntimeError(f"tests/conftest.py: every {tier} key is used; raise KEYS")
        return _key_pool[tier].pop()

    return take


@pytest.fixture
def rest(venue: VenueThread, new_key: Callable[..., Key]) -> Iterator[Callable[..., Rest]]:
    made: list[Rest] = []

    def make(key: Key | None = None, tier: str = "pro") -> Rest:
        key = key or new_key(tier)
        client = Rest(venue.endpoints["rest"], key.api_key, key.secret)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def ws(venue: VenueThread, new_key: Callable[..., Key]) -> Iterator[Callable[..., Ws]]:
    """A WS client with a token from GetWebSocketsToken for a fresh (or given) key."""
    made: list[Ws] = []

    def make(key: Key | None = None, tier: str = "pro") -> Ws:
        key = key or new_key(tier)
        r = Rest(venue.endpoints["rest"], key.api_key, key.secret)
        token = r.private("GetWebSocketsToken")["result"]["token"]
        r.close()
        client = Ws(venue.endpoints["ws"], token)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def fix_address(venue: VenueThread) -> tuple[str, int]:
    url = urllib.parse.urlsplit(venue.endpoints["fix"])
    return url.hostname or "127.0.0.1", url.port or 0


@pytest.fixture
def fix(venue: VenueThread, new_key: Callable[..., Key]) -> Iterator[Callable[..., Fix]]:
    made: list[Fix] = []
    sessions: dict[str, int] = {}  # key -> sessions made on it: each takes its next SenderCompID

    def make(key: Key | None = None, tier: str = "pro", logon: bool = True, **kw: object) -> Fix:
        key = key or new_key(tier)
        n = sessions[key.api_key] = sessions.get(key.api_key, -1) + 1
        if n >= len(key.comp_ids):
            raise RuntimeError(f"tests/conftest.py: key {key.api_key[:8]} has no SenderCompID left")
        client = Fix(fix_address(venue), key.comp_ids[n], key.api_key, key.secret)
        made.append(client)
        if logon:
            client.logon(**kw)
            reply = client.expect("A")
            assert reply.get(108) is not None
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def open_count(venue: VenueThread) -> Callable[[str], int]:
    """Open orders of a key, read on the venue's own loop (no REST call, no rate limit)."""

    def count(api_key: str) -> int:
        return venue.call(lambda: len(venue.venue.accounts.get(api_key).orders))

    return count


@pytest.fixture(scope="session")
def _pair_pool(venue: VenueThread) -> list[str]:
    # the synthetic markets (A001/USD...), not ADA/USD, a real one with its own decimals
    return [
        p.altname for p in venue.venue.pairs.pairs if p.base[:1] == "A" and p.base[1:].isdigit()
    ]


@pytest.fixture
def fresh_pair(_pair_pool: list[str]) -> Callable[[], str]:
    """A synthetic pair (4 price decimals, ordermin 1) whose book no other test touches."""
    return _pair_pool.pop
