"""The recorder and histograms: merging, percentile bounds, windows, storage."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from loadgen.metrics.hist import Latencies
from loadgen.metrics.recorder import Recorder, Window, cell_key, merge, split_key
from loadgen.metrics.store import ResultsWriter, read_raw, read_windows
from loadgen.outcome import OK, REJECTED, Outcome


class FakeClock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def outcome(latency: int, cls: str = "ok", op: str = "add", limit: str = "") -> Outcome:
    return Outcome("rest", op, cls, latency, limit=limit)


def samples(n: int, seed: int = 1) -> list[int]:
    """Latencies spread over six decades, as a venue with stalls produces."""
    rng = random.Random(seed)
    return [int(rng.lognormvariate(6, 2.0)) + 1 for _ in range(n)]


@pytest.mark.parametrize("sources", [2, 3, 7])
def test_a_run_split_over_workers_reports_what_one_process_would(sources: int) -> None:
    """Samples recorded across N recorders, shipped encoded and merged == one recorder."""
    values = samples(20000)
    clock = FakeClock(1000.25)
    one: list[Window] = []
    single = Recorder(one.append, clock=clock)
    shipped: list[dict] = []
    workers = [Recorder(lambda w: shipped.append(w.encode()), clock=clock) for _ in range(sources)]
    for i, v in enumerate(values):
        clock.t = 1000.25 + i / 5000  # four seconds of windows
        single.record(outcome(v))
        workers[i % sources].record(outcome(v))
    single.flush()
    for w in workers:
        w.flush()
    merged = merge(Window.decode(json.loads(json.dumps(d))) for d in shipped)
    assert [w.t for w in merged] == [w.t for w in one] == [1001, 1002, 1003, 1004, 1005]
    for a, b in zip(merged, one, strict=True):
        assert a.count == b.count
        assert a.cells["rest/add/ok"].service.summary() == b.cells["rest/add/ok"].service.summary()
    whole_a, whole_b = Latencies(), Latencies()
    for w in merged:
        whole_a.add(w.cells["rest/add/ok"].service)
    for w in one:
        whole_b.add(w.cells["rest/add/ok"].service)
    assert whole_a.summary() == whole_b.summary()
    assert whole_a.count == len(values)


def test_percentiles_agree_with_the_exact_ones_to_three_digits() -> None:
    values = sorted(samples(5000, seed=2))
    lat = Latencies.from_tally({v: values.count(v) for v in set(values)})
    for p in (25, 50, 95, 99):
        exact = values[int(len(values) * p / 100 + 0.5) - 1]
        assert abs(lat.percentile(p) - exact) <= exact * 0.001 + 1


@pytest.mark.parametrize("seed", range(20))
def test_percentiles_never_exceed_the_max_nor_fall_below_the_min(seed: int) -> None:
    rng = random.Random(seed)
    values = [rng.randint(1, 10 ** rng.randint(1, 9)) for _ in range(rng.randint(1, 50))]
    tally: dict[int, int] = {}
    for v in values:
        tally[v] = tally.get(v, 0) + 1
    lat = Latencies.from_tally(tally)
    for p in (0.0, 25.0, 50.0, 95.0, 99.0, 99.9, 100.0):
        assert min(values) <= lat.percentile(p) <= max(values)
    assert lat.summary()["max"] == max(values)


def test_an_empty_histogram_reports_zeros() -> None:
    assert Latencies().summary() == {
        "p25": 0, "p50": 0, "p95": 0, "p99": 0, "p99.9": 0, "min": 0, "max": 0,
    }  # fmt: skip


def test_windows_close_on_the_second_and_keep_outcomes_apart() -> None:
    clock = FakeClock(1000.5)
    closed: list[Window] = []
    rec = Recorder(closed.append, clock=clock, gauges=lambda: (4, 0.0))
    rec.record(outcome(100))
    rec.record(outcome(900, "rate_limited", limit="trading"))
    rec.record(outcome(50, "rejected", op="cancel"))
    clock.t = 1000.99
    rec.tick()
    assert closed == []  # the second is not over yet
    clock.t = 1001.0
    rec.tick()
    assert [w.t for w in closed] == [1001]
    assert sorted(closed[0].cells) == [
        "rest/add/ok", "rest/add/rate_limited:trading", "rest/cancel/rejected",
    ]  # fmt: skip
    assert closed[0].users == 4
    clock.t = 1003.5  # an idle second still closes the open window
    rec.tick()
    assert [w.t for w in closed] == [1001, 1002]
    assert closed[1].count == 0


def test_open_loop_records_response_time_beside_service_time() -> None:
    closed: list[Window] = []
    rec = Recorder(closed.append, clock=FakeClock())
    rec.record(outcome(100), response_us=250_000)
    rec.behind_schedule()
    rec.flush()
    cell = closed[0].cells["rest/add/ok"]
    assert (cell.service.max_us, cell.response.max_us) == (100, 250_000)
    assert closed[0].late == 1


def test_windows_count_who_stamped_each_reply_and_keep_it_through_a_merge() -> None:
    closed: list[Window] = []
    rec = Recorder(closed.append, clock=FakeClock())
    for stamp in ("kernel", "kernel", "user", ""):  # "": no reply came (a timeout)
        o = outcome(100)
        o.stamp = stamp
        rec.record(o)
    rec.flush()
    assert closed[0].stamps == {"kernel": 2, "user": 1}
    again = Window.decode(json.loads(json.dumps(closed[0].encode())))
    assert merge([closed[0], again])[0].stamps == {"kernel": 4, "user": 2}


def test_cell_keys_name_the_limit_that_fired() -> None:
    key = cell_key(outcome(1, "rate_limited", limit="rest"))
    assert key == "rest/add/rate_limited:rest"
    assert split_key(key) == ("rest", "add", "rate_limited", "rest")
    assert split_key("fix/cancel/ok") == ("fix", "cancel", "ok", "")


def test_results_survive_a_write_cut_short(tmp_path: Path) -> None:
    """What a SIGKILL mid-write leaves: every whole line reads back, the torn one is skipped."""
    writer = ResultsWriter(tmp_path, {"loop": "closed"})
    clock = FakeClock()
    rec = Recorder(writer.append, clock=clock)
    for i in range(3000):
        clock.t = 1000 + i / 1000
        rec.record(outcome(100 + i))
    rec.flush()
    writer.close()
    with open(tmp_path / "windows.jsonl", "a") as fh:
        fh.write('{"t": 1004, "cells": {"rest/add/ok": {"n": 5, "serv')  # the kill
    windows = read_windows(tmp_path)
    assert [w.t for w in windows] == [1001, 1002, 1003]
    assert sum(w.count for w in windows) == 3000
    assert {s for s, _ in read_raw(tmp_path)} == {"local"}
    hlog = (tmp_path / "latency.hlog").read_text().splitlines()
    assert hlog[0] == "#[Histogram log format version 1.3]"
    assert sum(line.startswith("Tag=rest/add/ok,") for line in hlog) == 3


def test_locusts_per_second_counts_are_kept_for_a_minute_only():
    """Issue 13's soak: Locust keeps a count per second of every stats row for the whole run;
    it reads the last 12 s. Older ones are dropped. (Fakes of Locust's StatsEntry: importing
    Locust here would monkey-patch this test process's threads.)"""
    from types import SimpleNamespace

    from loadgen.users.locust_stats import PER_SECOND_KEPT_S, trim_per_second

    now = 1_800_000_000
    entries = [SimpleNamespace(num_reqs_per_sec={t: 1 for t in range(now - 600, now)},
                               num_fail_per_sec={now - 500: 2, now - 5: 1}) for _ in range(3)]  # fmt: skip
    trim_per_second(entries, now)
    for entry in entries:
        assert min(entry.num_reqs_per_sec) == now - PER_SECOND_KEPT_S
        assert len(entry.num_reqs_per_sec) == PER_SECOND_KEPT_S
        assert entry.num_fail_per_sec == {now - 5: 1}


def test_a_master_writes_a_workers_encoded_windows_byte_for_byte_as_decoded_ones(
    tmp_path: Path,
) -> None:
    """The master writes what a worker sent without decoding a histogram (bench master: its
    main cost); the files are those the decode-and-write path makes, and a record that is not
    an encoded window is refused with what is wrong with it."""
    windows: list[Window] = []
    clock = FakeClock()
    rec = Recorder(windows.append, clock=clock)
    for i in range(3000):
        clock.t = 1000 + i / 1000
        rec.record(outcome(100 + i, "rejected" if i % 7 else "ok"), response_us=150 + i)
    rec.flush()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    decoded = ResultsWriter(tmp_path / "a", {"start": 999.0})
    encoded = ResultsWriter(tmp_path / "b", {"start": 999.0})
    for w in windows:
        decoded.append(Window.decode(w.encode()), "worker-1")
        encoded.append_encoded(json.loads(json.dumps(w.encode())), "worker-1")
    decoded.close()
    encoded.close()
    for name in ("windows.jsonl", "latency.hlog"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    good = windows[0].encode()
    for bad, problem in [
        ({**good, "t": "soon"}, "no whole second 't'"),
        ({**good, "cells": {"add": good["cells"]["rest/add/ok"]}}, "is not protocol/op/outcome"),
        ({**good, "cells": {"rest/add/ok": {"n": 1}}}, "no count or no service latencies"),
        ({**good, "cells": {"rest/add/ok": {"n": 1, "service": {"max": 3}}}}, "no histogram"),
    ]:
        with pytest.raises(ValueError, match=problem):
            encoded.append_encoded(bad, "worker-2")


def test_market_data_rides_the_windows_apart_from_the_requests_and_merges() -> None:
    """Book messages are counted by kind with their fan-out latency, never as requests; two
    processes' windows merge into the one a single process would have made."""
    clock = FakeClock(1000.5)
    out: list[Window] = []
    recorders = [Recorder(out.append, clock=clock) for _ in range(2)]
    for n, rec in enumerate(recorders):
        rec.record(outcome(100))
        for latency in (1_000, 2_000 * (n + 1), 40_000):
            rec.market_data("updates", latency)
        rec.market_data("checksum_failures")
    clock.t = 1001.2
    for rec in recorders:
        rec.tick()
    decoded = [Window.decode(json.loads(json.dumps(w.encode()))) for w in out]
    (merged,) = merge(decoded)
    assert merged.count == 2  # the requests only
    assert merged.md == {"updates": 6, "checksum_failures": 2}
    assert merged.md_latency.count == 6 and merged.md_latency.max_us >= 40_000
    assert merged.md_latency.percentile(50) <= 4_100  # 1, 1, 2, 4, 40, 40 ms


def test_a_copy_of_a_window_encodes_alike_and_a_merge_into_it_leaves_the_original() -> None:
    closed: list[Window] = []
    now = [1000.5]
    rec = Recorder(closed.append, clock=lambda: now[0], gauges=lambda: (3, 20.0))
    rec.record(Outcome("rest", "add", OK, 120))
    rec.record(Outcome("ws", "cancel", REJECTED, 80, "EOrder:Unknown order"))
    now[0] = 1001.2
    rec.tick()
    original = closed[0]
    copy = original.copy()
    assert copy.encode() == original.encode()
    before = original.encode()
    copy.add(original)
    assert original.encode() == before and copy.count == 2 * original.count
