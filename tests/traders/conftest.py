"""Trader tests run the venue as its own process: gevent (traders) and asyncio (venue) never
share a process (DESIGN)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from loadgen.venue.process import VenueProcess


class TestVenue(VenueProcess):
    """A venue process that hands out keys no test used before."""

    __test__ = False  # a helper, not a test class, wherever it is imported

    def __init__(self, *args: str) -> None:
        super().__init__("--pairs", "30", *args)
        self._next = 0

    def key(self, tier: str = "pro") -> dict:
        while True:
            key = self.keys[self._next]
            self._next += 1
            if key["tier"] == tier:
                return key


@pytest.fixture(scope="session")
def venue_proc() -> Iterator[TestVenue]:
    venue = TestVenue("--keys", "200", "--tier", "pro,starter")
    yield venue
    venue.stop()


@pytest.fixture
def knob_venue_proc() -> Iterator[Callable[..., TestVenue]]:
    started: list[TestVenue] = []

    def start(*args: str) -> TestVenue:
        started.append(TestVenue("--keys", "4", *args))
        return started[-1]

    yield start
    for venue in started:
        venue.stop()


def make_client(protocol: str, venue: TestVenue, tier: str = "pro", key: dict | None = None,
                **kw: object) -> object:  # fmt: skip
    """A fresh client of one protocol, on `key` or a key no test used before."""
    from loadgen.clients.fix import FixClient
    from loadgen.clients.rest import RestClient
    from loadgen.clients.ws import WsClient
    from loadgen.flow.model import cl_ord_id

    key = key or venue.key(tier)
    if venue.ca_file and "tls" not in kw:  # a venue started with --tls: verify it by its CA
        from loadgen.clients.tls import context

        kw["tls"] = context(venue.ca_file)
    if protocol == "rest":
        return RestClient(venue.endpoints["rest"], key["api_key"], key["secret"], **kw)
    if protocol == "ws":
        rest = RestClient(venue.endpoints["rest"], key["api_key"], key["secret"], tls=kw.get("tls"))
        for _ in range(10):  # a venue that drops connections may drop this call too
            _, _, result, _ = rest.call("GetWebSocketsToken", "")
            if result:
                break
        rest.close()
        return WsClient(venue.endpoints["ws"], result["token"], **kw)
    # the traders' own ClOrdIDs: one rising sequence with the FlowModels' orders (facts 11)
    return FixClient(
        venue.endpoints["fix"],
        key["api_key"],
        key["secret"],
        key["fix_sender_comp_ids"][0],
        lambda: cl_ord_id(0),
        **kw,
    )
