"""A locustfile the benchmarks load beside the one under test (`-f target.py,meter.py`).

Every METER_EVERY_S it appends one line to the file named by LOADGEN_BENCH_METER:
`monotonic seconds, requests so far (Locust's own total, failures included), this process's CPU
seconds (user + system)`. The bench then takes the generator's cost from the steady part of the
run only, so start-up (imports, connecting, fetching markets) and the stop (a last cancel-all
per user) are not charged to the requests. It reads Locust's stats, so it measures stock
Locust users and loadgen's traders alike, at no cost per request.
"""

from __future__ import annotations

import os
import time
from typing import Any

import gevent
from locust import events
from locust.env import Environment
from locust.runners import MasterRunner

METER_EVERY_S = 0.25
_greenlet: gevent.Greenlet | None = None


def _meter(environment: Environment, path: str) -> None:
    with open(path, "a", buffering=1) as out:
        while True:
            t = os.times()
            total = environment.runner.stats.total.num_requests if environment.runner else 0
            out.write(f"{time.monotonic():.4f},{total},{t.user + t.system:.4f}\n")
            gevent.sleep(METER_EVERY_S)


@events.test_start.add_listener
def _start(environment: Environment, **_: Any) -> None:
    global _greenlet
    path = os.environ.get("LOADGEN_BENCH_METER", "")
    if path and _greenlet is None and not isinstance(environment.runner, MasterRunner):
        path = f"{path}.{os.getpid()}"  # one file per process that runs users
        _greenlet = gevent.spawn(_meter, environment, path)


@events.test_stop.add_listener
def _stop(**_: Any) -> None:
    global _greenlet
    if _greenlet is not None:
        _greenlet.kill(block=False)
        _greenlet = None
