"""Trader tests run the venue as its own process: gevent (traders) and asyncio (venue) never
share a process (DESIGN)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from loadgen.venue.process import VenueProcess


class TestVenue(VenueProcess):
    """A venue process that hands out keys no test used before."""

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
