"""Analysis, comparison, pacing and the shape, on windows and profiles made here."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest

from loadgen.flow.pacing import (
    BURST_S,
    PACE_GRACE_S,
    PACE_POLL_S,
    PACE_SLACK_S,
    Pace,
    Schedule,
    Throttle,
    take_due,
)
from loadgen.metrics.recorder import Recorder, Window
from loadgen.metrics.store import ResultsWriter
from loadgen.outcome import Outcome
from loadgen.profiles import Profile, Slo, Stage, Target, level_at, stage_ends
from loadgen.report import analysis, junit
from loadgen.report.compare import compare_runs


def write_run(
    run_dir: Path, levels: list[tuple[int, int, str]], slo: dict, loop: str = "closed"
) -> None:
    """Each level: (requests per second, latency us, outcome) for 5 seconds."""
    t = [1000.0]
    writer = ResultsWriter(run_dir, {"loop": loop, "start": 1000.0, "slo": slo,
                                     "stages": [{"kind": "step", "duration": 5}] * len(levels)})  # fmt: skip
    rec = Recorder(writer.append, clock=lambda: t[0], cpu_clock=lambda: t[0] / 2)
    for rate, latency, cls in levels:
        for _ in range(5):
            for i in range(rate):
                t[0] += 1 / rate if i else 0.0001
                rec.record(
                    Outcome(
                        "rest",
                        "add",
                        cls,
                        latency,
                        limit="trading" if cls == "rate_limited" else "",
                    )
                )
            t[0] = float(int(t[0])) + 1.0  # the next second
    rec.flush()
    writer.ended()
    writer.close()


SLO = {"max_error_ratio": 0.01, "rate_limited": None,
       "latency": [{"selector": "*", "limits_ms": {"p99": 5.0}}]}  # fmt: skip


def test_the_knee_is_the_busiest_level_that_kept_its_slos(tmp_path: Path) -> None:
    write_run(
        tmp_path, [(100, 1000, "ok"), (200, 2000, "ok"), (400, 9000, "ok"), (800, 20000, "ok")], SLO
    )
    s = analysis.analyse(tmp_path)
    assert s["knee"]["level"] == "stage 2 (step)"
    assert s["knee"]["throughput_rps"] == pytest.approx(200, rel=0.05)
    assert s["knee"]["broke_first"] == ["latency"] and s["knee"]["broke_at"] == "stage 3 (step)"
    assert not s["slos_held"] and s["verdict"]["status"] == "breached"
    assert s["findings"][0].startswith("SLOs breached: * p99")
    assert s["findings"][1].startswith("Knee: 200 requests/s (stage 2 (step))")
    assert s["capacity"]["generator_rps_per_core"] == pytest.approx(
        1600, rel=0.05
    )  # 800/s on 0.5 s CPU/s


def test_rejections_breaking_first_are_named_and_their_onset_found(tmp_path: Path) -> None:
    slo = dict(SLO, rate_limited=[0.0, 0.1])
    write_run(tmp_path, [(100, 1000, "ok"), (300, 1000, "rate_limited")], slo)
    s = analysis.analyse(tmp_path)
    assert s["knee"]["broke_first"] == ["rejections"]
    assert s["rate_limits_began"]["second"] == 6
    assert s["totals"]["rate_limited_by"] == {"trading": 1500}


def test_errors_are_counted_not_timed(tmp_path: Path) -> None:
    write_run(tmp_path, [(100, 1000, "ok"), (100, 999_000, "error")], SLO)
    s = analysis.analyse(tmp_path)
    assert s["totals"]["latency_us"]["max"] == 1000
    assert s["totals"]["outcomes"]["error"] == 500
    assert [v["ok"] for v in s["slo"]] == [False, True]  # error ratio 0.5; p99 1 ms


def test_junit_names_each_slo_and_fails_the_breached(tmp_path: Path) -> None:
    write_run(tmp_path, [(100, 9000, "ok")], SLO)
    xml = junit.xml(analysis.analyse(tmp_path))
    assert (
        'tests="3" failures="1" errors="0"' in xml
        and 'name="* p99"' in xml
        and "SLO breached: * p99" in xml
    )
    assert 'name="valid measurement"' in xml


def _five_seconds(run_dir: Path, meta: dict, ended: bool) -> None:
    """5 s of 100 ok requests a second; `ended`: the test stop came (as recording marks it)."""
    writer = ResultsWriter(run_dir, {"loop": "closed", "start": 1000.0, **meta})
    t = [1000.0]
    rec = Recorder(writer.append, clock=lambda: t[0], cpu_clock=lambda: t[0] / 4)
    for i in range(500):
        t[0] = 1000.0 + i / 100
        rec.record(Outcome("rest", "add", "ok", 900))
    rec.flush()
    if ended:
        writer.ended()
    writer.close()


def test_junit_errors_an_invalid_run_with_its_reasons(tmp_path: Path) -> None:
    """A run cut short (no end mark, 5 s of a planned 10): an error case, whatever the SLOs."""
    _five_seconds(tmp_path, {"slo": SLO, "stages": [{"kind": "step", "duration": 10}]}, False)
    s = analysis.analyse(tmp_path)
    assert s["verdict"]["status"] == "invalid" and s["verdict"]["exit_code"] == 3
    xml = junit.xml(s)
    assert 'errors="1"' in xml and 'type="cut_short"' in xml
    assert "INVALID MEASUREMENT: the load ran 5 s of the 10 s planned" in xml


def test_a_bare_locust_run_stopped_early_is_cut_short(tmp_path: Path) -> None:
    """`locust -t 10s --results-dir` Ctrl-C'd after 5 s: Locust's run time is the plan."""
    _five_seconds(tmp_path, {"planned_s": 10.0}, ended=True)  # the test stop came, 5 s early
    assert [r["code"] for r in analysis.analyse(tmp_path)["verdict"]["reasons"]] == ["cut_short"]


@pytest.mark.parametrize(("loop", "latency_slo", "invalid"), [
    ("closed", False, False),  # flat out is how a closed loop finds its throughput
    ("closed", True, True),  # but its latencies hold the generator's queueing
    ("open", False, True),  # an open loop's load was not applied
])  # fmt: skip
def test_a_saturated_generator_is_never_the_knee_and_invalid_where_it_decides(
    tmp_path: Path, loop: str, latency_slo: bool, invalid: bool
) -> None:
    slo = {"max_error_ratio": 0.01, "latency": SLO["latency"] if latency_slo else []}
    writer = ResultsWriter(tmp_path, {"loop": loop, "start": 1000.0, "slo": slo,
                                      "stages": [{"kind": "step", "duration": 5}]})  # fmt: skip
    t = [1000.0]
    rec = Recorder(writer.append, clock=lambda: t[0], cpu_clock=lambda: t[0] * 0.95)
    for i in range(1000):  # 200/s for 5 s on 0.95 CPU-seconds a second
        t[0] = 1000.0 + i / 200
        rec.record(Outcome("rest", "add", "ok", 900))
    t[0] = 1005.0
    rec.flush()
    writer.ended()
    writer.close()
    s = analysis.analyse(tmp_path)
    assert [lv["bound_by"] for lv in s["levels"]] == ["generator"]
    assert not s["knee"]["found"]
    assert ("generator_bound" in [r["code"] for r in s["verdict"]["reasons"]]) is invalid


def _random_run(run_dir: Path, seed: int, median_us: float, errors: float = 0.0,
                seconds: int = 20, loop: str = "closed") -> None:  # fmt: skip
    """400 requests a second with lognormal latency (sigma 0.5) around median_us."""
    rng = random.Random(seed)
    t = [1000.0]
    writer = ResultsWriter(run_dir, {"loop": loop, "start": 1000.0, "slo": SLO,
                                     "stages": [{"kind": "step", "duration": seconds}]})  # fmt: skip
    rec = Recorder(writer.append, clock=lambda: t[0], cpu_clock=lambda: t[0] / 4)
    for i in range(400 * seconds):
        t[0] = 1000.0 + i / 400
        cls = "error" if rng.random() < errors else "ok"
        rec.record(Outcome("ws", "add", cls, int(rng.lognormvariate(math.log(median_us), 0.5))))
    t[0] = 1000.0 + seconds
    rec.flush()
    writer.ended()
    writer.close()


def test_two_runs_of_one_distribution_differ_by_noise_only(tmp_path: Path) -> None:
    """Same latency distribution, other random draws: no figure is called a regression, even
    with a threshold of 1% (the noise test, not the threshold, holds them back)."""
    for seed in range(3):
        _random_run(tmp_path / f"a{seed}", seed, 800)
        _random_run(tmp_path / f"b{seed}", seed + 100, 800)
        result = compare_runs([tmp_path / f"a{seed}"], tmp_path / f"b{seed}", 0.01)
        assert {r["metric"] for r in result["headline"]} >= {"P50 ms", "P99 ms", "req/s"}
        assert not [r for r in result["headline"] + result["cells"] if r["beyond_noise"]], result


def test_a_real_shift_and_more_errors_are_regressions_beyond_noise(tmp_path: Path) -> None:
    _random_run(tmp_path / "a", 1, 800)
    _random_run(tmp_path / "b", 2, 1200, errors=0.05)  # +50% latency, 5 points more errors
    result = compare_runs([tmp_path / "a"], tmp_path / "b", 0.1)
    worse = {(r["scope"], r["metric"]) for r in result["headline"] if r["regression"]}
    assert {("ws", "P50 ms"), ("ws", "P99 ms"), ("ws", "error %")} <= worse
    assert ("ws", "req/s") not in worse
    errors = next(r for r in result["headline"] if r["scope"] == "ws" and r["metric"] == "error %")
    assert errors["change"].endswith(" pp") and errors["a"] == 0.0
    assert {r["scope"] for r in result["cells"]} == {"ws/add"}


def test_a_figure_from_too_few_blocks_is_not_compared(tmp_path: Path) -> None:
    """5 s at 400/s: P50 from five 1 s blocks, but two P99 blocks: no P99 row at all."""
    _random_run(tmp_path / "a", 1, 800, seconds=5)
    _random_run(tmp_path / "b", 2, 4000, seconds=5)
    result = compare_runs([tmp_path / "a"], tmp_path / "b", 0.1)
    metrics = {r["metric"] for r in result["headline"]}
    assert "P50 ms" in metrics and "P99 ms" not in metrics
    assert {"all P99 ms", "ws P99 ms"} <= set(result["left_out"])  # and it says so


def test_several_baselines_widen_the_band_to_their_own_spread(tmp_path: Path) -> None:
    """Baselines at 700, 800 and 1,000 us: B at 950 is inside their run-to-run range."""
    for i, median in enumerate((700, 800, 1000)):
        _random_run(tmp_path / f"a{i}", i, median)
    _random_run(tmp_path / "b", 9, 950)
    bases = [tmp_path / f"a{i}" for i in range(3)]
    assert not [r for r in compare_runs(bases, tmp_path / "b", 0.1)["headline"] if r["regression"]]
    single = compare_runs(bases[:1], tmp_path / "b", 0.1)  # against 700 alone it is worse
    assert any(r["regression"] for r in single["headline"])
    assert any("one baseline run" in w for w in single["warnings"])


def test_compare_warns_when_the_profiles_differ(tmp_path: Path) -> None:
    _random_run(tmp_path / "a", 1, 800)
    _random_run(tmp_path / "b", 2, 800, loop="open")
    warnings = compare_runs([tmp_path / "a"], tmp_path / "b", 0.1)["warnings"]
    assert any(w.startswith("the runs differ in loop") for w in warnings)


def test_an_open_loop_schedule_keeps_its_rate_whatever_the_replies_do() -> None:
    s = Schedule(start=10.0, rate=4.0)
    assert [s.take() for _ in range(4)] == [10.0, 10.25, 10.5, 10.75]  # hits(t) = rate * t
    s.set_rate(0.0, now=11.0)
    s.set_rate(2.0, now=20.0)  # a user that had no rate starts its schedule when given one
    assert [s.take() for _ in range(2)] == [20.0, 20.5]


def test_a_new_rate_re_times_the_next_send_from_the_last() -> None:
    """At the foot of a ramp the rate is tiny: the next send must not stay parked far ahead."""
    s = Schedule(start=0.0, rate=0.001)
    assert s.take() == 0.0 and s.next_at == 1000.0
    s.set_rate(5.0, now=0.1)
    assert s.next_at == pytest.approx(0.2)
    s.set_rate(1.0, now=0.15)  # slower: later than 0.2, from the last send
    assert s.next_at == pytest.approx(1.0)
    s.set_rate(10.0, now=0.4)  # faster, heard after its first slot (0.1) passed: from now on
    assert s.next_at == pytest.approx(0.4)


def test_the_throttle_hands_out_at_most_rate_slots_per_second() -> None:
    cap = Throttle(rate=100.0)
    slots = [cap.take(now=5.0) for _ in range(250)]
    assert slots[0] == 5.0 and slots[-1] == pytest.approx(7.49)
    assert Throttle().take(now=3.0) == 3.0  # rate 0: no cap
    fast = Throttle(rate=10_000.0)  # 0.1 ms a slot: a batch may run BURST_S ahead, no more
    fast.take(now=1.0)
    ahead = 0
    while fast.free(now=1.0):
        fast.take(now=1.0)
        ahead += 1
    assert ahead == round(BURST_S * 10_000) and fast.free(now=1.0001)


def test_the_shape_ramps_then_holds_and_ends() -> None:
    stages = (
        Stage("ramp", 10, 100, 1000.0),
        Stage("step", 5, 100, 1000.0),
        Stage("spike", 5, 50, 4000.0),
    )
    prof = Profile("p", "p.toml", "", Target(), {"rest": 1, "ws": 0, "fix": 0}, None, {"XBTUSD": 1},
                   0.1, 0, "open", 5000.0, 10.0, stages, Slo())  # fmt: skip
    assert level_at(prof, 0.0) == (1, 0.0)
    assert level_at(prof, 5.0) == (50, 500.0)
    assert level_at(prof, 12.0) == (100, 1000.0)
    assert level_at(prof, 16.0) == (50, 4000.0)
    assert level_at(prof, 20.0) is None


def test_users_asleep_across_a_step_wake_just_after_it() -> None:
    stages = (Stage("step", 5, 600, 2000.0), Stage("ramp", 10, 600, 6000.0),
              Stage("spike", 2, 600, 9000.0))  # fmt: skip
    prof = Profile("p", "p.toml", "", Target(), {"rest": 1, "ws": 0, "fix": 0}, None, {"XBTUSD": 1},
                   0.1, 0, "open", 20000.0, 10.0, stages, Slo())  # fmt: skip
    assert stage_ends(prof, 1.5) == 5.0 and stage_ends(prof, 7.0) == 15.0  # a ramp's end too
    assert stage_ends(prof, 15.2) == 17.0 and stage_ends(prof, 17.0) is None  # the run's end
    pace = Pace(tick=0.25)
    assert pace.nap(now=100.0) == 0.25  # no change known: a tick
    pace.apply(2000 / 600, 0.0, None, next_in=0.1, now=100.0)
    assert pace.nap(now=100.0) == pytest.approx(0.1 + PACE_SLACK_S)  # not a whole tick
    assert pace.nap(now=99.0) == 0.25
    late = 100.1 + PACE_SLACK_S + PACE_GRACE_S / 2  # past it, the new pace not in yet (a
    assert pace.nap(now=late) == PACE_POLL_S  # worker whose message is late): poll for it
    assert pace.nap(now=late + PACE_GRACE_S) == 0.25  # ...for a while, then tick again
    pace.apply(6000 / 600, 0.0, None, next_in=None, now=100.1)
    assert pace.nap(now=100.1) == 0.25


def test_sends_already_due_are_taken_together_within_the_window_and_the_cap() -> None:
    s = Schedule(start=10.0, rate=100.0)  # 10 ms a send; the generator woke at 10.035
    s.take()
    cap = Throttle(rate=0.0)
    due = [take_due(s, cap, now=10.035, room=8) for _ in range(5)]
    assert due[:3] == pytest.approx([10.01, 10.02, 10.03]) and due[3:] == [None, None]
    assert s.next_at == pytest.approx(10.04)  # the next one waits for its time
    s = Schedule(start=10.0, rate=100.0)
    s.take()
    assert [take_due(s, cap, 10.035, room) for room in (1, 0)] == [pytest.approx(10.01), None]
    assert take_due(s, Throttle(rate=1.0), 10.035, 8) is not None  # a cap's burst: one more
    tight = Throttle(rate=1.0)
    tight.take(10.035)
    assert take_due(s, tight, 10.035, 8) is None  # and then none till its slot
    s.set_rate(0.0, now=10.035)
    assert take_due(s, cap, 10.035, 8) is None  # no rate, no sends


def test_users_woken_at_a_step_keep_their_own_phases() -> None:
    """600 users hear a step from 2,000 to 6,000 req/s at one moment, and 600 others a first
    rate: their next sends stay spread over the new interval, not all at once."""
    users = [Schedule(start=0.0, rate=2000 / 600, phase=(n * 0.618) % 1) for n in range(600)]
    for n, s in enumerate(users):  # each has sent, at its own point of the old interval
        s.next_at = 9.7 + 0.3 * ((n * 0.618) % 1)
        s.take()
    fresh = [Schedule(start=0.0, rate=0.0, phase=(n * 0.618) % 1) for n in range(600)]
    for group in (users, fresh):
        for s in group:
            s.set_rate(6000 / 600, now=10.0)
        slots = [s.next_at - 10.0 for s in group]
        assert all(0 <= t < 0.1 + 1e-9 for t in slots)  # within one new interval
        busiest = max(sum(1 for t in slots if k / 100 <= t < (k + 1) / 100) for k in range(10))
        assert busiest <= 90  # of 600 in a tenth of it: spread (60 each when even)


def test_a_level_holds_only_the_windows_wholly_inside_its_stage() -> None:
    """A window that a step falls in carries both loads: it belongs to no level."""
    windows = [Window(t) for t in range(1001, 1010)]
    meta = {"start": 1000.3, "stages": [{"kind": "step", "duration": 2},
                                         {"kind": "step", "duration": 5},
                                         {"kind": "step", "duration": 0.5}]}  # fmt: skip
    got = {name: [w.t for w in ws] for name, ws in analysis.levels(windows, meta)}
    assert got == {
        "stage 1 (step)": [1002],  # [1001, 1002) of [1000.3, 1002.3)
        "stage 2 (step)": [1004, 1005, 1006, 1007],  # of [1002.3, 1007.3)
        "stage 3 (step)": [1008],  # holds no whole window: the window centred in it
    }
    # a run's first and last windows cover only part of their second: the part the run ran
    first, *rest, last = [Window(t) for t in range(1001, 1008)]
    first.span, last.span = 0.7, 0.3  # [1000.3, 1001) and [1006, 1006.3)
    meta = {"start": 1000.3, "stages": [{"kind": "step", "duration": 6}]}
    ((_, level),) = analysis.levels([first, *rest, last], meta)
    assert [w.t for w in level] == list(range(1001, 1008))


def test_windows_without_stages_are_cut_into_five_second_levels() -> None:
    windows = [Window(t) for t in range(101, 113)]
    names = [name for name, _ in analysis.levels(windows, {"start": 100.0})]
    assert names == ["0-5 s", "5-10 s", "10-15 s"]


def _md_run(run_dir: Path, fanout_us: int, failures: int = 0, seconds: int = 30) -> None:
    """A run of one REST trader and book subscribers: 200 updates a second at `fanout_us`."""
    t = [1000.0]
    writer = ResultsWriter(run_dir, {"loop": "closed", "start": 1000.0, "slo": {
        "book_checksum_failures": 0, "latency": [{"selector": "md/book", "limits_ms": {"p99": 5.0}}]},
        "stages": [{"kind": "step", "duration": seconds}]})  # fmt: skip
    rec = Recorder(writer.append, clock=lambda: t[0], cpu_clock=lambda: t[0] / 2)
    rng = random.Random(fanout_us)
    for second in range(seconds):
        for i in range(200):
            t[0] = 1000 + second + i / 200 + 0.0001
            rec.record(Outcome("rest", "add", "ok", 300))
            rec.market_data("updates", int(fanout_us * rng.uniform(0.8, 1.2)))
        if second < failures:
            rec.market_data("checksum_failures")
    t[0] = 1000.0 + seconds
    rec.flush()
    writer.ended()
    writer.close()


def test_market_data_is_summarised_judged_and_compared(tmp_path: Path) -> None:
    _md_run(tmp_path / "a", 2_000)
    _md_run(tmp_path / "b", 9_000, failures=2)
    a, b = analysis.analyse(tmp_path / "a"), analysis.analyse(tmp_path / "b")
    assert a["market_data"]["updates"] == 6000 and a["market_data"]["checksum_failures"] == 0
    assert 1_600 <= a["market_data"]["fanout_us"]["p50"] <= 2_400
    assert a["totals"]["count"] == 6000  # the updates are not requests
    held = {v["name"]: v["ok"] for v in a["slo"]}
    assert held == {"book checksum failures": True, "md/book p99": True}
    held = {v["name"]: v["ok"] for v in b["slo"]}
    assert held == {"book checksum failures": False, "md/book p99": False}
    assert [s["md_updates"] for s in a["series"]][:3] == [200.0] * 3
    rows = compare_runs([tmp_path / "a"], tmp_path / "b", 0.1)["headline"]
    md = [r for r in rows if r["scope"] == "md/book"]
    assert md and all(r["regression"] for r in md), md  # P50 and P99 of the fan-out, worse
