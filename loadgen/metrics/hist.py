"""Latency histograms: a cheap tally on the hot path, sparse HdrHistograms for merging and storing.

Recording one value into `hdrh.HdrHistogram` costs about 1.5 us of Python on this project's
reference VM, a twentieth of a trader's whole budget per request; a dict tally (value -> count)
costs 0.2 us. So a window tallies exact microsecond values and becomes a histogram (3
significant digits, DESIGN's measurement rules) once, when it closes.

The histogram is HdrHistogram's bucket layout kept sparse, {counts index: count}
(metrics/hdrcodec.py): a dense `hdrh.HdrHistogram` is 188 KB whatever it holds, and a run keeps
two per cell per second. Percentiles are HdrHistogram's (the same target count, the highest
value equivalent to the bucket), and the stored form is HdrHistogram's own V2 encoding, byte
for byte what `hdrh` writes, so its tools read our logs.

An HdrHistogram answers a percentile with the highest value equivalent to its bucket, which can
lie up to 0.1% above every recorded value; the exact max travels beside each histogram and caps
every percentile, so a report never shows a P99 above the max.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Final

from loadgen.metrics import hdrcodec

LOWEST_US: Final = 1
HIGHEST_US: Final = 3_600_000_000  # one hour: no request outlives the run's timeouts by that much
# DESIGN: microseconds, 3 significant digits
SIGNIFICANT_DIGITS: Final = hdrcodec.SIGNIFICANT_DIGITS
PERCENTILES = (25.0, 50.0, 95.0, 99.0, 99.9)


@dataclass(slots=True)
class Latencies:
    """One cell's latencies: HdrHistogram buckets {index: count}, the exact min and max beside."""

    counts: dict[int, int] = field(default_factory=dict)
    count: int = 0
    min_us: int = 0
    max_us: int = 0
    # sorted indexes and running totals, built by the first percentile asked: no part of the
    # value (equality, repr, the constructor)
    _cumulative: tuple[list[int], list[int]] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    @classmethod
    def from_tally(cls, tally: dict[int, int]) -> Latencies:
        lat = cls()
        if tally:
            counts = lat.counts
            index_of = hdrcodec.index_of
            for value, n in tally.items():
                i = index_of(min(max(value, 0), HIGHEST_US))
                counts[i] = counts.get(i, 0) + n
            lat.count = sum(tally.values())
            lat.min_us, lat.max_us = min(tally), max(tally)
        return lat

    def add(self, other: Latencies) -> None:
        """Merge other into self (percentiles of the sum, never an average of percentiles)."""
        if not other.count:
            return
        self.min_us = other.min_us if not self.count else min(self.min_us, other.min_us)
        self.max_us = max(self.max_us, other.max_us)
        counts = self.counts
        for i, n in other.counts.items():
            counts[i] = counts.get(i, 0) + n
        self.count += other.count
        self._cumulative = None

    def percentile(self, p: float) -> int:
        """The value at percentile p (0..100), never above the exact max nor below the min.

        As HdrHistogram: the first bucket whose running count reaches round(p% of the count)
        (at least 1), reported as the highest value equivalent to it (its lowest for p = 0)."""
        if not self.count:
            return 0
        if self._cumulative is None:
            indexes = sorted(self.counts)
            self._cumulative = (indexes, list(accumulate(self.counts[i] for i in indexes)))
        indexes, running = self._cumulative
        target = max(int(min(p, 100.0) * self.count / 100 + 0.5), 1)
        at = bisect_left(running, target)
        index = indexes[min(at, len(indexes) - 1)]
        value = hdrcodec.highest_of(index) if p else hdrcodec.lowest_of(index)
        return max(self.min_us, min(value, self.max_us))

    def summary(self, percentiles: Iterable[float] = PERCENTILES) -> dict[str, int]:
        out = {f"p{p:g}": self.percentile(p) for p in percentiles}
        out["min"], out["max"] = self.min_us, self.max_us
        return out

    # ---- storage: HdrHistogram's compressed V2 encoding (base64), readable by its tools ----

    def encode(self) -> dict[str, int | str]:
        return {
            "min": self.min_us,
            "max": self.max_us,
            "hdr": hdrcodec.encode(self.counts, HIGHEST_US),
        }

    @classmethod
    def decode(cls, data: dict[str, int | str]) -> Latencies:
        counts = hdrcodec.decode(str(data["hdr"]))
        return cls(counts, sum(counts.values()), int(data["min"]), int(data["max"]))
