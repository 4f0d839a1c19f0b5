"""Profiles: the shipped ones load; every mistake is one line naming the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadgen import profiles
from loadgen.profiles import ProfileError, parse_duration

ROOT = Path(__file__).resolve().parents[1]
GOOD = """
name = "t"
[target]
venue = "embedded"
[load]
max_rate = 1000
[[stages]]
duration = "10s"
users = 5
"""


@pytest.mark.parametrize(
    "name", ["smoke", "ramp", "soak", "spike", "ratelimit", "throughput", "market-data"]
)
def test_every_shipped_profile_loads(name: str) -> None:
    prof = profiles.load(ROOT / "profiles" / f"{name}.toml")
    assert prof.name == name and prof.stages and prof.max_rate > 0


def test_the_market_data_profile_ramps_subscribers_against_a_fixed_order_rate() -> None:
    prof = profiles.load(ROOT / "profiles" / "market-data.toml")
    assert prof.users["md"] > 10 * max(prof.users[p] for p in ("rest", "ws", "fix"))
    assert {s.rate for s in prof.stages} == {1000} and prof.stages[-1].users >= 1000
    assert prof.slo.book_checksum_failures == 0
    assert any(item.selector == "md/book" for item in prof.slo.latency)


def test_book_slos_are_checked_up_front(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(GOOD + "[slo]\nbook_checksum_failures = -1\n")
    with pytest.raises(ProfileError, match="book_checksum_failures: a count, 0 or more"):
        profiles.load(bad)
    bad.write_text(GOOD + '[slo.latency]\n"md/trade" = { p99 = 5 }\n')
    with pytest.raises(ProfileError, match=r"or md/book \(the market-data fan-out\)"):
        profiles.load(bad)


def test_what_the_market_data_users_follow_is_read_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "md.toml"
    path.write_text(GOOD + '[market_data]\nchannels = ["book", "trade"]\ndepth = 25\n')
    prof = profiles.load(path)
    assert (prof.md_channels, prof.md_depth) == (("book", "trade"), 25)
    assert (profiles.load(ROOT / "profiles" / "smoke.toml").md_channels) == ("book",)
    for bad, named in (('channels = ["book", "spread"]', "channels: spread: not one of book, "
                        "ticker, trade"), ("channels = []", "channels: a list of channel names"),
                       ("depth = 11", "depth: one of 10, 25, 100, 500, 1000"),
                       ("chanels = []", "chanels: unknown field")):  # fmt: skip
        path.write_text(GOOD + f"[market_data]\n{bad}\n")
        with pytest.raises(ProfileError, match=f"market_data.{named}"):
            profiles.load(path)


def test_the_ramp_profile_climbs_to_a_million_requests_a_minute() -> None:
    prof = profiles.load(ROOT / "profiles" / "ramp.toml")
    assert prof.loop == "open" and prof.peak_rate * 60 >= 1_000_000
    rates = [s.rate for s in prof.stages]
    assert rates == sorted(rates)


def test_the_throughput_profile_holds_60_s_pipelined_on_unthrottled_keys() -> None:
    prof = profiles.load(ROOT / "profiles" / "throughput.toml")
    assert prof.loop == "closed" and prof.pipeline > 1 and prof.target.tier == "unlimited"
    assert prof.stages[-1].duration == 60 and prof.max_rate * 60 >= 1_000_000


def test_the_spike_profile_swings_its_mix_to_cancels_and_amends() -> None:
    prof = profiles.load(ROOT / "profiles" / "spike.toml")
    base, spike = prof.stages[0], next(s for s in prof.stages if s.kind == "spike")
    assert spike.rate >= 3 * base.rate
    assert spike.mix is not None and spike.mix["cancel"] + spike.mix["amend"] > spike.mix["add"]


LOAD = "[load]"
BAD = [
    # (what is wrong, text in GOOD, what replaces it, the tail of the one-line error)
    ("an unknown top-level field", 'name = "t"', 'name = "t"\ncolour = "red"', ": colour: unknown field"),
    ("a typo in a table", LOAD, "[slo]\nmax_eror_ratio = 0.1\n" + LOAD, "slo.max_eror_ratio: unknown field"),
    ("a duration that is not one", '"10s"', '"soon"', "stages[0].duration: expected a duration"),
    ("a negative user count", "users = 5", "users = -1", "stages[0].users: must be >= 0"),
    ("a stage rate above the cap", "users = 5", "users = 5\nrate = 5000",
     "stages[0].rate: 5000 requests/s is above load.max_rate 1000"),
    ("an unknown operation in the mix", LOAD, "[flow]\nmix = { add = 1, nuke = 2 }\n" + LOAD,
     "flow.mix.nuke: unknown name"),
    ("a mix with no adds", LOAD, "[flow]\nmix = { cancel = 1 }\n" + LOAD,
     "flow.mix.add: needs a weight above 0"),
    ("a wrong type", LOAD, '[users]\nrest = "lots"\n' + LOAD,
     "users.rest: expected int or float, got str 'lots'"),
    ("a bad SLO selector", LOAD, '[slo.latency]\n"ws/nuke" = { p99 = 5 }\n' + LOAD,
     "slo.latency.ws/nuke: expected an operation"),
    ("an unknown SLO percentile", LOAD, '[slo.latency]\n"*" = { p42 = 5 }\n' + LOAD,
     "slo.latency.*.p42: unknown field"),
    ("a rate-limit band upside down", LOAD, "[slo]\nrate_limited = [0.5, 0.1]\n" + LOAD,
     "slo.rate_limited: expected [low, high]"),
    ("an unknown tier", 'venue = "embedded"', 'venue = "embedded"\ntier = "gold"',
     "target.tier: must be one of"),
    ("a CA file that is not there", 'venue = "embedded"', 'venue = "embedded"\nca_file = "no.pem"',
     "target.ca_file: no such file: no.pem"),
    ("tls = true on a URL target", 'venue = "embedded"',
     'venue = "url"\nrest = "https://127.0.0.1:8443"\nkeys_file = "k.json"\ntls = true',
     "target.tls: the embedded venue's switch; a URL target's TLS is in its URLs"),
    ("an embedded venue bound off loopback, not allowed", 'venue = "embedded"',
     'venue = "embedded"\nbind = "10.0.0.5"', "target.bind: '10.0.0.5' is not loopback"),
    ("an embedded venue bound to every interface", 'venue = "embedded"',
     'venue = "embedded"\nbind = "0.0.0.0"\nallow_hosts = ["0.0.0.0"]',
     "target.bind: '0.0.0.0' is every interface, no address a worker can reach"),
    ("no stages", "[[stages]]", "[[nothing]]", ": stages: required field is missing"),
    ("no hard cap", "max_rate = 1000", "", "load.max_rate: required field is missing"),
    ("open loop without rates", LOAD, LOAD + '\nloop = "open"', "stages[0].rate: open loop needs"),
    ("a pipeline of none", LOAD, LOAD + "\npipeline = 0", "load.pipeline: must be between 1 and 256"),
    ("a pipeline in the open loop", LOAD, LOAD + '\nloop = "open"\npipeline = 4',
     "load.pipeline: works in the closed loop"),
    ("a pipeline under stay_under", LOAD, LOAD + "\nstay_under = true\npipeline = 4",
     "load.pipeline: works in the closed loop"),
]  # fmt: skip


@pytest.mark.parametrize(("why", "old", "new", "error"), BAD, ids=[b[0] for b in BAD])
def test_a_bad_profile_is_one_line_naming_file_and_field(
    tmp_path: Path, why: str, old: str, new: str, error: str
) -> None:
    assert old in GOOD
    path = tmp_path / "p.toml"
    path.write_text(GOOD.replace(old, new, 1))
    with pytest.raises(ProfileError) as info:
        profiles.load(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    assert error in message


def test_missing_and_broken_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="no such profile file"):
        profiles.load(tmp_path / "nope.toml")
    (tmp_path / "x.toml").write_text("name = = 1")
    with pytest.raises(ProfileError, match=r"x\.toml: not valid TOML"):
        profiles.load(tmp_path / "x.toml")


def _url_profile(tmp_path: Path, host: str, allow: str = "", keys: str | None = None) -> Path:
    path = tmp_path / "url.toml"
    keys_file = tmp_path / "k.json"
    keys_file.write_text(
        keys
        or '{"keys": [{"api_key": "K1", "secret": "c2VjcmV0", "fix_sender_comp_ids": ["K1S0"]}]}'
    )
    path.write_text(
        GOOD.replace(
            'venue = "embedded"',
            f'venue = "url"\nrest = "http://{host}:8080"\nkeys_file = "{keys_file}"\n{allow}',
        )
    )
    return path


@pytest.mark.parametrize(("keys", "error"), [
    ('[{"api_key": "K1", "secret": "c2VjcmV0", "fix_sender_comp_ids": ["A"]}]', ""),  # a list too
    ('[{"api_key": "K1", "secret": "c2VjcmV0", "fix_sender_comp_ids": "A"}]',
     "key 0 (K1...): fix_sender_comp_ids must be a list of SenderCompIDs"),
    ('[{"api_key": "K1", "secret": "c2VjcmV0", "fix_sender_comp_ids": ["A B"]}]',
     "key 0 (K1...): fix_sender_comp_ids must be a list of SenderCompIDs"),
    ("{not json", "not readable JSON"),
    ('{"keys": []}', 'expected {"keys": [...]} or a list of keys'),
    ('[{"api_key": "K1"}]', "key 0: secret is missing or not a string"),
    ('[{"api_key": "K1", "secret": "c2VjcmV0"}, {"api_key": "K2", "secret": "s3cr3t!"}]',
     "key 1 (K2...): secret is not base64"),
])  # fmt: skip
def test_a_keys_file_is_read_as_the_venue_writes_it_or_a_list_and_checked_up_front(
    tmp_path: Path, keys: str, error: str
) -> None:
    path = _url_profile(tmp_path, "127.0.0.1", keys=keys)
    if not error:
        assert profiles.load(path).target.keys_file
        return
    with pytest.raises(ProfileError) as info:
        profiles.load(path)
    assert f"target.keys_file: keys file {tmp_path / 'k.json'}: " in str(info.value)
    assert error in str(info.value) and "s3cr3t" not in str(info.value)


def test_fix_traders_on_a_url_target_need_the_keys_sender_comp_ids(tmp_path: Path) -> None:
    bare = '[{"api_key": "K1", "secret": "c2VjcmV0"}]'
    with pytest.raises(ProfileError, match=r"users\.fix: FIX traders need each key's "
                       r"SenderCompIDs: key K1\.\.\. of .*k\.json has no fix_sender_comp_ids"):  # fmt: skip
        profiles.load(_url_profile(tmp_path, "127.0.0.1", keys=bare))
    no_fix = _url_profile(tmp_path, "127.0.0.1", keys=bare)
    no_fix.write_text(no_fix.read_text() + "[users]\nrest = 1\nfix = 0\n")
    assert profiles.load(no_fix).users["fix"] == 0


def test_a_host_off_loopback_runs_only_when_the_profile_allows_it(tmp_path: Path) -> None:
    assert profiles.load(_url_profile(tmp_path, "127.0.0.1")).target.rest
    with pytest.raises(
        ProfileError, match=r"'venue\.example' is not loopback and not in target\.allow_hosts"
    ):
        profiles.load(_url_profile(tmp_path, "venue.example"))
    allowed = _url_profile(tmp_path, "venue.example", 'allow_hosts = ["venue.example"]')
    assert profiles.load(allowed).target.allow_hosts == ("venue.example",)


def test_no_override_raises_the_hard_cap(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(GOOD)
    prof = profiles.load(path)
    with pytest.raises(ProfileError, match=r"--rate 2000 is above load\.max_rate 1000"):
        prof.overridden(rate=2000)
    assert prof.overridden(rate=500, loop="open").stages[0].rate == 500


def test_duration_and_users_overrides_keep_the_shape() -> None:
    prof = profiles.load(ROOT / "profiles" / "ramp.toml").overridden(duration=50, users=90)
    assert prof.duration == pytest.approx(50)
    assert [s.users for s in prof.stages] == [15, 30, 30, 60, 90]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("5m", 300),
        ("1h30m", 5400),
        ("250ms", 0.25),
        ("12", 12),
        (7, 7),
        ("29m30s", 1770),
    ],
)
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "s", "10 parsecs", "-5s", "0", "1h-3m"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)
