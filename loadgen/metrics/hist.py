"""Latency histograms: a cheap tally on the hot path, HdrHistogram for merging and storing.

Recording one value into `hdrh.HdrHistogram` costs about 1.5 us of Python on this project's
reference VM, a twentieth of a trader's whole budget per request; a dict tally (value -> count)
costs 0.2 us. So a window tallies exact microsecond values and becomes an HdrHistogram (3
significant digits, DESIGN's measurement rules) once, when it closes: a second's few thousand
distinct values cost a few milliseconds, once a second.

An HdrHistogram answers a percentile with the highest value equivalent to its bucket, which can
lie up to 0.1% above every recorded value; the exact max travels beside each histogram and caps
every percentile, so a report never shows a P99 above the max.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 3_600_000_000  # one hour: no request outlives the run's timeouts by that much
SIGNIFICANT_DIGITS = 3  # DESIGN: microseconds, 3 significant digits
PERCENTILES = (25.0, 50.0, 95.0, 99.0, 99.9)


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


@dataclass(slots=True)
class Latencies:
    """One cell's latencies: an HdrHistogram with the exact min and max beside it."""

    hist: HdrHistogram = field(default_factory=new_histogram)
    min_us: int = 0
    max_us: int = 0

    @property
    def count(self) -> int:
        return self.hist.get_total_count()

    @classmethod
    def from_tally(cls, tally: dict[int, int]) -> Latencies:
        lat = cls()
        if tally:
            record = lat.hist.record_value
            for value, n in tally.items():
                record(min(max(value, 0), HIGHEST_US), n)
            lat.min_us, lat.max_us = min(tally), max(tally)
        return lat

    def add(self, other: Latencies) -> None:
        """Merge other into self (percentiles of the sum, never an average of percentiles)."""
        if not other.count:
            return
        self.min_us = other.min_us if not self.count else min(self.min_us, other.min_us)
        self.max_us = max(self.max_us, other.max_us)
        self.hist.add(other.hist)

    def percentile(self, p: float) -> int:
        """The value at percentile p (0..100), never above the exact max nor below the min."""
        if not self.count:
            return 0
        value = self.hist.get_value_at_percentile(p)
        return max(self.min_us, min(value, self.max_us))

    def summary(self, percentiles: Iterable[float] = PERCENTILES) -> dict[str, int]:
        out = {f"p{p:g}": self.percentile(p) for p in percentiles}
        out["min"], out["max"] = self.min_us, self.max_us
        return out

    # ---- storage: HdrHistogram's compressed V2 encoding (base64), readable by its tools ----

    def encode(self) -> dict[str, int | str]:
        return {"min": self.min_us, "max": self.max_us, "hdr": self.hist.encode().decode()}

    @classmethod
    def decode(cls, data: dict[str, int | str]) -> Latencies:
        lat = cls()
        lat.hist.decode_and_add(str(data["hdr"]))
        lat.min_us, lat.max_us = int(data["min"]), int(data["max"])
        return lat
