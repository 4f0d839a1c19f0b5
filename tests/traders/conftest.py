"""Trader tests run the venue as its own process: gevent (traders) and asyncio (venue) never
share a process (DESIGN)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


class VenueProcess:
    def __init__(self, tmp: Path, *args: str) -> None:
        self.keys_file = tmp / f"keys-{id(self)}.json"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "loadgen.cli", "venue", "--pairs", "30",
             "--keys-file", str(self.keys_file), *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
        for line in self.proc.stdout:  # type: ignore[union-attr]
            if line.startswith("ready"):
                break
        else:
            raise RuntimeError("venue did not start")
        data = json.loads(self.keys_file.read_text())
        self.endpoints: dict[str, str] = data["endpoints"]
        self.keys: list[dict] = data["keys"]
        self._next = 0

    def key(self, tier: str = "pro") -> dict:
        """A key no test used before."""
        while True:
            key = self.keys[self._next]
            self._next += 1
            if key["tier"] == tier:
                return key

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture(scope="session")
def venue_proc(tmp_path_factory) -> Iterator[VenueProcess]:
    venue = VenueProcess(tmp_path_factory.mktemp("venue"), "--keys", "200", "--tier", "pro,starter")
    yield venue
    venue.stop()


@pytest.fixture
def knob_venue_proc(tmp_path) -> Iterator[Callable[..., VenueProcess]]:
    started: list[VenueProcess] = []

    def start(*args: str) -> VenueProcess:
        started.append(VenueProcess(tmp_path, "--keys", "4", *args))
        return started[-1]

    yield start
    for venue in started:
        venue.stop()
