"""Locust's stats kept to what it reads (no Locust import here: tests use it in-process).

Locust keeps a count per second of every stats row for the whole run (StatsEntry's
num_reqs_per_sec, num_fail_per_sec) though it reads only the last 12 s (current_rps): with a
row per operation and outcome, a soak's master grew by that history (issue 13). Older counts
are dropped; the run's totals and Locust's own history (stats_history) are untouched. A
deliberate exception to using Locust's public hooks only: it has no hook for this.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

PER_SECOND_KEPT_S = 60


def trim_per_second(entries: Iterable[Any], now: float) -> None:
    """Drop each entry's per-second counts older than PER_SECOND_KEPT_S."""
    oldest = int(now) - PER_SECOND_KEPT_S
    for entry in entries:
        for per_second in (entry.num_reqs_per_sec, entry.num_fail_per_sec):
            for t in [t for t in per_second if t < oldest]:
                del per_second[t]
