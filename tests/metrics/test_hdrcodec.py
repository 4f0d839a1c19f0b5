"""The sparse histogram against hdrh (HdrHistogram's Python port): the same bytes on the wire,
the same percentiles, each end reading the other's encoding."""

from __future__ import annotations

import random

import pytest
from hdrh.histogram import HdrHistogram

from loadgen.metrics import hdrcodec
from loadgen.metrics.hist import HIGHEST_US, Latencies


def tallies() -> list[dict[int, int]]:
    out = []
    for seed in range(12):
        rng = random.Random(seed)
        tally: dict[int, int] = {}
        for _ in range(rng.randint(1, 2000)):
            value = rng.randint(0, 10 ** rng.randint(1, 9))
            tally[value] = tally.get(value, 0) + rng.randint(1, 9)
        out.append(tally)
    out.append({0: 1, 1: 1, 2047: 3, 2048: 1, 2049: 1, 4095: 2, 4096: 1, HIGHEST_US: 1})
    return out


def dense(tally: dict[int, int]) -> HdrHistogram:
    hist = HdrHistogram(1, HIGHEST_US, 3)
    for value, n in tally.items():
        hist.record_value(value, n)
    return hist


@pytest.mark.parametrize("tally", tallies())
def test_the_encoding_is_byte_for_byte_hdrhs_and_each_reads_the_other(tally):
    lat, hist = Latencies.from_tally(tally), dense(tally)
    ours = str(lat.encode()["hdr"])
    assert ours == hist.encode().decode()
    back = HdrHistogram(1, HIGHEST_US, 3)
    back.decode_and_add(ours)
    assert back.get_total_count() == sum(tally.values())
    assert Latencies.decode({"min": 0, "max": 0, "hdr": hist.encode().decode()}).counts == (
        lat.counts
    )


@pytest.mark.parametrize("tally", tallies())
def test_percentiles_are_hdrhs_capped_by_the_exact_min_and_max(tally):
    lat, hist = Latencies.from_tally(tally), dense(tally)
    for p in (0, 1, 25, 50, 95, 99, 99.9, 99.999, 100):
        expected = max(min(tally), min(hist.get_value_at_percentile(p), max(tally)))
        assert lat.percentile(p) == expected, p


def test_merging_is_adding_counts():
    a, b = tallies()[:2]
    merged = Latencies.from_tally(a)
    merged.add(Latencies.from_tally(b))
    both = dense(a)
    both.add(dense(b))
    assert merged.count == both.get_total_count()
    assert merged.percentile(99) == max(min(min(a), min(b)), both.get_value_at_percentile(99))


def test_a_histogram_of_a_second_is_small_in_memory():
    """The reason for the sparse form: a dense hdrh histogram is 23,552 counters."""
    lat = Latencies.from_tally(tallies()[0])
    assert len(lat.counts) < 2000 < dense(tallies()[0]).counts_len


@pytest.mark.parametrize(
    "text",
    [
        "not base64!",
        "AAAA",
        "HIST" + "A" * 40,
        str(Latencies.from_tally({5: 1}).encode()["hdr"])[:-8],
    ],
    ids=["not base64", "too short", "bad cookie", "cut"],
)
def test_damaged_encodings_are_a_named_error(text):
    with pytest.raises(hdrcodec.HdrCodecError):
        hdrcodec.decode(text)


def test_another_layout_is_refused_not_misread():
    other = HdrHistogram(1, HIGHEST_US, 2)
    other.record_value(1000)
    with pytest.raises(hdrcodec.HdrCodecError, match="2 digits"):
        hdrcodec.decode(other.encode())


def test_a_count_far_past_the_largest_value_is_refused_not_shifted_into_memory():
    """A zero run of 2**60 would make lowest_of() shift by ~2**59 (MemoryError)."""
    with pytest.raises(hdrcodec.HdrCodecError, match="past the largest value"):
        hdrcodec.decode(hdrcodec.encode({2**60: 1}, HIGHEST_US))
