"""Profiles (profiles/*.toml): what a run is, checked before anything starts.

A profile names the target, the user mix by protocol, the order flow, the stages, the loop
model, the hard rate cap, the SLOs and the outputs. Every error names the file, the field and
what is wrong; an unknown field is an error (a typo must not silently become a default).

    name = "smoke"
    [target]   venue = "embedded" | "url"; rest/ws/fix URLs and keys_file for "url" (and
               ws_public, the public WebSocket the MarketDataUsers use; default: ws);
               allow_hosts (non-loopback hosts this profile may hit); tier, pairs (markets),
               latency/stall_every/stall_for/unavailable/drop/latency_per_krps (the embedded
               venue's knobs, as `loadgen venue` has them); limit_threshold/limit_decay/
               cancel_penalty (its rate limits mis-set on purpose); tls (the embedded venue
               serves TLS only); ca_file (PEM CAs that verify a URL target's certificates),
               insecure (verify none; the report says so); bind (the embedded venue's address:
               loopback, or one named in allow_hosts, so other machines' workers reach it)
    [users]    rest/ws/fix: relative weights of the three traders; md: the MarketDataUsers
    [market_data] channels (what each MarketDataUser follows: book, ticker, trade; default
               ["book"]), depth (its book subscriptions' levels a side: 10, 25, 100, 500, 1000)
    [flow]     mix (op -> weight), pairs (name -> weight), cross_share, seed, order_types
               (kind -> weight: limit, post, market, ioc, fok (FIX only), gtd, iceberg,
               stop-loss, stop-loss-limit, take-profit, take-profit-limit; default limit)
    [load]     loop = "closed" | "open"; max_rate (requests/s, the hard cap); spawn_rate;
               stay_under (traders wait for their shadow rate-limit counter: no rejections);
               pipeline (requests each user puts on the wire per turn, closed loop; default 1)
    [[stages]] kind = ramp | step | spike | soak; duration ("30s", "5m"); users; rate (open
               loop, total requests/s); mix (an op mix for this stage only, e.g. a spike)
    [slo]      max_error_ratio; rate_limited = [low, high] (share of requests);
               rate_limit_verdict = "conforms" | "too_strict" | "too_lenient" | "both";
               [slo.latency] "add" / "ws/add" / "*" = {p95 = ms, p99 = ms, ...}
    [output]   dir, html, junit
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from loadgen.conformance import VERDICTS
from loadgen.flow.pacing import pipeline_problem
from loadgen.metrics.recorder import MD_BOOK
from loadgen.protocol.book import DEFAULT_DEPTH, DEPTHS
from loadgen.protocol.operations import OPS
from loadgen.protocol.orderkinds import KINDS, for_protocol
from loadgen.protocol.ws import MD_CHANNELS, parse_md_channels
from loadgen.ratelimit import TIERS
from loadgen.safety import host_problem, is_loopback

PROTOCOLS = ("rest", "ws", "fix")
STAGE_KINDS = ("ramp", "step", "spike", "soak")
SLO_PERCENTILES = ("p25", "p50", "p95", "p99", "p99.9", "max")
_REQUIRED = object()
_DURATION = re.compile(r"^(?:\d+(?:\.\d+)?(?:ms|s|m|h))+$|^\d+(?:\.\d+)?$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)?")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


class ProfileError(ValueError):
    """A profile that cannot run; str() is one line naming the file and the field."""


def parse_duration(value: Any) -> float:
    """'30s', '5m', '1h30m', '250ms' or a number of seconds -> seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        text = str(value).replace(" ", "")
        if not _DURATION.match(text):
            raise ValueError(f"expected a duration such as '30s', '5m' or '1h30m', got {value!r}")
        seconds = sum(float(n) * _UNITS[u or None] for n, u in _DURATION_PART.findall(text))
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"a duration must be a finite number above 0, got {value!r}")
    return seconds


class _Table:
    """Fields read from one TOML table; what is left unread at the end is an unknown field."""

    def __init__(self, data: Any, where: str, file: str) -> None:
        self.file, self.where = file, where
        if not isinstance(data, dict):
            self.fail("", f"expected a table, got {type(data).__name__}")
        self.data = dict(data)
        self.known: list[str] = []

    def path(self, name: str) -> str:
        return f"{self.where}.{name}" if self.where and name else (self.where or name)

    def fail(self, name: str, problem: str) -> None:
        raise ProfileError(f"{self.file}: {self.path(name) or '(top level)'}: {problem}")

    def take(self, name: str, kinds: type | tuple[type, ...], default: Any = _REQUIRED) -> Any:
        self.known.append(name)
        if name not in self.data:
            if default is _REQUIRED:
                self.fail(name, "required field is missing")
            return default
        value = self.data.pop(name)
        kinds = kinds if isinstance(kinds, tuple) else (kinds,)
        if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            names = " or ".join(k.__name__ for k in kinds)
            self.fail(name, f"expected {names}, got {type(value).__name__} {value!r}")
        return value

    def number(self, name: str, default: Any = _REQUIRED, lo: float = 0.0, hi: float = 1e12) -> Any:
        value = self.take(name, (int, float), default)
        if value is not default and not lo <= value <= hi:
            self.fail(name, f"must be between {lo:g} and {hi:g}, got {value!r}")
        return value

    def choice(self, name: str, options: tuple[str, ...], default: Any = _REQUIRED) -> Any:
        value = self.take(name, str, default)
        if value is not default and value not in options:
            self.fail(name, f"must be one of {', '.join(options)}, got {value!r}")
        return value

    def table(self, name: str) -> _Table:
        return _Table(self.take(name, dict, {}), self.path(name), self.file)

    def weights(self, name: str, allowed: tuple[str, ...] | None, default: Any = None) -> Any:
        value = self.take(name, dict, default)
        if value is default:
            return default
        for key, weight in value.items():
            if allowed is not None and key not in allowed:
                self.fail(f"{name}.{key}", f"unknown name (use {', '.join(allowed)})")
            if (isinstance(weight, bool) or not isinstance(weight, (int, float))
                    or not math.isfinite(weight) or weight < 0):  # fmt: skip
                self.fail(f"{name}.{key}", f"weight must be a number >= 0, got {weight!r}")
        return {k: float(v) for k, v in value.items()}

    def done(self) -> None:
        for name in self.data:
            self.fail(name, f"unknown field (known here: {', '.join(self.known)})")


@dataclass(frozen=True)
class Target:
    venue: str = "embedded"  # "embedded" | "url"
    rest: str = ""
    ws: str = ""
    fix: str = ""
    ws_public: str = ""  # the public WS v2 URL (market data), Kraken's wss://ws.kraken.com/v2
    keys_file: str = ""
    allow_hosts: tuple[str, ...] = ()
    tier: str = "pro"
    pairs: int = 720
    latency: tuple[str, ...] = ()
    stall_every: float = 0.0
    stall_for: float = 0.0
    unavailable: float = 0.0
    drop: float = 0.0
    latency_per_krps: float = 0.0
    limit_threshold: float | None = None
    limit_decay: float | None = None
    cancel_penalty: bool = True
    tls: bool = False  # the embedded venue serves TLS only (its own CA)
    ca_file: str = ""  # PEM CAs that verify the target's certificates
    insecure: bool = False  # verify no certificate (named in the report)
    bind: str = "127.0.0.1"  # the embedded venue's address: loopback, or one in allow_hosts


@dataclass(frozen=True)
class Stage:
    kind: str
    duration: float  # seconds
    users: int
    rate: float = 0.0  # open loop: total requests/s (at the end of a ramp)
    mix: dict[str, float] | None = None


@dataclass(frozen=True)
class LatencySlo:
    selector: str  # "add", "ws/add" or "*"
    limits_ms: dict[str, float]  # percentile name -> ms


@dataclass(frozen=True)
class Slo:
    max_error_ratio: float | None = None
    rate_limited: tuple[float, float] | None = None
    latency: tuple[LatencySlo, ...] = ()
    rate_limit_verdict: str | None = None  # what the conformance check must conclude
    # most book checksum failures the MarketDataUsers may see (0: none); needs book updates
    book_checksum_failures: int | None = None


@dataclass(frozen=True)
class Profile:
    name: str
    path: str
    description: str
    target: Target
    users: dict[str, float]
    mix: dict[str, float] | None
    pairs: dict[str, float]
    cross_share: float
    seed: int
    loop: str
    max_rate: float
    spawn_rate: float
    stages: tuple[Stage, ...]
    slo: Slo
    output_dir: str = "results"
    html: bool = True
    junit: bool = True
    stay_under: bool = False
    pipeline: int = 1
    order_types: dict[str, float] | None = None
    md_channels: tuple[str, ...] = ("book",)
    md_depth: int = DEFAULT_DEPTH

    @property
    def duration(self) -> float:
        return sum(s.duration for s in self.stages)

    @property
    def peak_users(self) -> int:
        return max(s.users for s in self.stages)

    @property
    def peak_rate(self) -> float:
        return max(s.rate for s in self.stages)

    def pairs_spec(self) -> str:
        return ",".join(f"{k}:{v:g}" for k, v in self.pairs.items())

    def overridden(
        self,
        duration: float | None = None,
        users: int | None = None,
        rate: float | None = None,
        loop: str | None = None,
    ) -> Profile:
        """The profile with command-line overrides; the hard cap is never raised by one."""
        stages = self.stages
        if duration is not None:  # every stage scaled, so the shape keeps its proportions
            k = duration / self.duration
            stages = tuple(replace(s, duration=s.duration * k) for s in stages)
        if users is not None:
            peak = max(1, self.peak_users)
            stages = tuple(replace(s, users=max(1, round(s.users * users / peak))) for s in stages)
        prof = replace(self, stages=stages, loop=loop or self.loop)
        if rate is not None:
            if rate > self.max_rate:
                raise ProfileError(
                    f"{self.path}: --rate {rate:g} is above load.max_rate {self.max_rate:g}, the "
                    "profile's hard cap; raise load.max_rate in the profile to go faster"
                )
            peak = self.peak_rate or rate
            stages = tuple(
                replace(s, rate=s.rate * rate / peak if s.rate else rate) for s in prof.stages
            )
            prof = replace(prof, stages=stages)
        if prof.loop == "open" and any(s.rate <= 0 for s in prof.stages):
            raise ProfileError(f"{self.path}: open loop needs a rate on every stage (or --rate)")
        return prof


def load(path: str | Path) -> Profile:
    """Read and check a profile; ProfileError (one line) on anything wrong."""
    file = str(path)
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProfileError(f"{file}: no such profile file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{file}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{file}: not valid TOML: {exc}") from None
    top = _Table(data, "", file)
    name = top.take("name", str, Path(path).stem)
    description = top.take("description", str, "")
    target = _target(top.table("target"))
    users = _users(top.table("users"))
    if users["fix"] > 0 and target.venue == "url":
        _check_fix_comp_ids(top, target.keys_file)
    md_channels, md_depth = _market_data(top.table("market_data"))
    flow = top.table("flow")
    mix = flow.weights("mix", OPS)
    if mix is not None and mix.get("add", 0) <= 0:
        flow.fail("mix.add", "needs a weight above 0 (nothing else works without it)")
    pairs = flow.weights("pairs", None, {"XBTUSD": 1.0, "ETHUSD": 1.0, "SOLUSD": 1.0})
    if not pairs:
        flow.fail("pairs", "name at least one market")
    cross_share = flow.number("cross_share", 0.1, 0.0, 1.0)
    seed = flow.take("seed", int, 0)
    order_types = flow.weights("order_types", tuple(KINDS))
    if order_types is not None:
        _check_order_types(flow, order_types, users)
    flow.done()
    load_ = top.table("load")
    loop = load_.choice("loop", ("closed", "open"), "closed")
    max_rate = load_.number("max_rate", _REQUIRED, 1.0, 1e9)
    spawn_rate = load_.number("spawn_rate", 100.0, 0.001, 1e6)
    stay_under = load_.take("stay_under", bool, False)
    pipeline = load_.take("pipeline", int, 1)
    problem = pipeline_problem(pipeline, loop == "open", stay_under)
    if problem:
        load_.fail("pipeline", problem)
    load_.done()
    stages = _stages(top.take("stages", list), loop, max_rate, file)
    slo = _slo(top.table("slo"))
    out = top.table("output")
    output_dir = out.take("dir", str, "results")
    html = out.take("html", bool, True)
    junit = out.take("junit", bool, True)
    out.done()
    top.done()
    return Profile(
        name, file, description, target, users, mix, pairs, cross_share, seed, loop,
        float(max_rate), float(spawn_rate), stages, slo, output_dir, html, junit, stay_under,
        pipeline, order_types, md_channels, md_depth,
    )  # fmt: skip


def _market_data(t: _Table) -> tuple[tuple[str, ...], int]:
    """What the MarketDataUsers follow: channels (of MD_CHANNELS) and the book's depth."""
    names = t.take("channels", list, ["book"])
    if not names or not all(isinstance(n, str) for n in names):
        t.fail("channels", f"a list of channel names ({', '.join(MD_CHANNELS)})")
    unknown = [n for n in names if n not in MD_CHANNELS]
    if unknown:
        t.fail("channels", f"{', '.join(unknown)}: not one of {', '.join(MD_CHANNELS)}")
    channels = parse_md_channels(",".join(names))
    depth = t.take("depth", int, DEFAULT_DEPTH)
    if depth not in DEPTHS:
        t.fail("depth", f"one of {', '.join(map(str, DEPTHS))}")
    t.done()
    return channels, depth


def _check_order_types(flow: _Table, weights: dict[str, float], users: dict[str, float]) -> None:
    """Every trader with users has a kind of order with a weight above 0 it can send."""
    for protocol in PROTOCOLS:
        if users.get(protocol, 0) > 0 and not any(for_protocol(weights, protocol).values()):
            carried = [k for k, w in weights.items() if w > 0]
            flow.fail(
                "order_types",
                f"the {protocol} traders have no order type to send (given: "
                f"{', '.join(carried) or 'none above 0'}; fok is FIX only)",
            )


def _target(t: _Table) -> Target:
    venue = t.choice("venue", ("embedded", "url"), "embedded")
    urls = {p: t.take(p, str, "") for p in (*PROTOCOLS, "ws_public")}
    keys_file = t.take("keys_file", str, "")
    allow = t.take("allow_hosts", list, [])
    if not all(isinstance(h, str) for h in allow):
        t.fail("allow_hosts", "expected a list of host names")
    tier = t.choice("tier", tuple(TIERS), "pro")
    pairs = t.take("pairs", int, 720)
    latency = t.take("latency", list, [])
    knobs = {
        "stall_every": t.number("stall_every", 0.0),
        "stall_for": t.number("stall_for", 0.0),
        "unavailable": t.number("unavailable", 0.0, 0.0, 1.0),
        "drop": t.number("drop", 0.0, 0.0, 1.0),
        "latency_per_krps": t.number("latency_per_krps", 0.0),
    }
    # Rate limits mis-set on purpose (the embedded venue only): proving the conformance check
    misset: dict[str, Any] = {
        "limit_threshold": t.number("limit_threshold", None),
        "limit_decay": t.number("limit_decay", None),
        "cancel_penalty": t.take("cancel_penalty", bool, True),
    }
    tls = {
        "tls": t.take("tls", bool, False),
        "ca_file": t.take("ca_file", str, ""),
        "insecure": t.take("insecure", bool, False),
    }
    if tls["ca_file"] and not Path(tls["ca_file"]).is_file():
        t.fail("ca_file", f"no such file: {tls['ca_file']}")
    bind = t.take("bind", str, "127.0.0.1")
    if venue == "url" and bind != "127.0.0.1":
        t.fail("bind", "the embedded venue's address; a URL target's host is in its URLs")
    if bind in ("0.0.0.0", "::", "[::]"):
        t.fail("bind", f"{bind!r} is every interface, no address a worker can reach: give the "
               "address the other machines see (and name it in target.allow_hosts)")  # fmt: skip
    if not is_loopback(bind) and bind not in allow:
        t.fail("bind", f"{bind!r} is not loopback: name it in target.allow_hosts too, so the "
               "embedded venue serves other machines on purpose")  # fmt: skip
    if venue == "url" and tls["tls"]:
        t.fail("tls", "the embedded venue's switch; a URL target's TLS is in its URLs "
               "(https://, wss://, tls://HOST:PORT)")  # fmt: skip
    if venue == "url":
        if not urls["rest"]:
            t.fail("rest", 'required when venue = "url"')
        if not keys_file:
            t.fail("keys_file", 'required when venue = "url" ({"keys": [{"api_key": ..., '
                   '"secret": ...}]} as `loadgen venue` writes it, or a plain list)')  # fmt: skip
        for proto, url in urls.items():
            problem = host_problem(url, allow, "target.allow_hosts")
            if problem:
                t.fail(proto, problem)
        if latency or any(knobs.values()):
            t.fail("latency", "venue knobs apply to the embedded venue only")
        if misset != {"limit_threshold": None, "limit_decay": None, "cancel_penalty": True}:
            t.fail("limit_threshold", "mis-set limits apply to the embedded venue only")
        from loadgen.keys import KeysFileError, read_keys_file

        try:
            read_keys_file(keys_file)
        except KeysFileError as exc:
            t.fail("keys_file", str(exc))
    t.done()
    return Target(
        venue, urls["rest"], urls["ws"], urls["fix"], urls["ws_public"], keys_file, tuple(allow),
        tier, pairs,
        tuple(str(x) for x in latency), **knobs, **misset, **tls, bind=bind,
    )  # fmt: skip


def _check_fix_comp_ids(top: _Table, keys_file: str) -> None:
    """FIX traders log on with a SenderCompID Kraken assigned the key: a keys file for a URL
    target names them, or no FIX trader could log on (found here, not as a run of errors)."""
    from loadgen.keys import COMP_IDS_FIELD, read_keys_file

    bare = [k["api_key"][:8] for k in read_keys_file(keys_file) if not k.get(COMP_IDS_FIELD)]
    if bare:
        top.fail("users.fix", f"FIX traders need each key's SenderCompIDs: key {bare[0]}... of "
                 f"{keys_file} has no {COMP_IDS_FIELD} (Kraken assigns them with the FIX key)")  # fmt: skip


def _users(t: _Table) -> dict[str, float]:
    """Relative weights of the user classes: the three traders, and `md`, the market-data
    subscribers (MarketDataUser; none unless given)."""
    users = {p: float(t.number(p, 1.0 if not t.data else 0.0)) for p in PROTOCOLS}
    if sum(users.values()) <= 0:
        t.fail("", "give at least one of rest, ws, fix a weight above 0")
    users["md"] = float(t.number("md", 0.0))
    t.done()
    return users


def _stages(raw: list[Any], loop: str, max_rate: float, file: str) -> tuple[Stage, ...]:
    if not raw:
        raise ProfileError(f"{file}: stages: give at least one [[stages]] table")
    stages = []
    for i, item in enumerate(raw):
        s = _Table(item, f"stages[{i}]", file)
        kind = s.choice("kind", STAGE_KINDS, "step")
        raw_duration = s.take("duration", (str, int, float))
        try:
            duration = parse_duration(raw_duration)
        except ValueError as exc:
            s.fail("duration", str(exc))
        users = s.take("users", int)
        if users < 0:
            s.fail("users", f"must be >= 0, got {users}")
        rate = s.number("rate", 0.0, 0.0, 1e9)
        if loop == "open" and rate <= 0:
            s.fail("rate", "open loop needs the stage's total request rate (requests/s)")
        if rate > max_rate:
            s.fail("rate", f"{rate:g} requests/s is above load.max_rate {max_rate:g}")
        mix = s.weights("mix", OPS)
        if mix is not None and mix.get("add", 0) <= 0:
            s.fail("mix.add", "needs a weight above 0")
        s.done()
        stages.append(Stage(kind, duration, users, float(rate), mix))
    return tuple(stages)


def _slo(t: _Table) -> Slo:
    ratio = t.number("max_error_ratio", None, 0.0, 1.0)
    band = t.take("rate_limited", list, None)
    if band is not None and (
        len(band) != 2
        or not all(isinstance(x, (int, float)) and 0 <= x <= 1 for x in band)
        or band[0] > band[1]
    ):
        t.fail("rate_limited", f"expected [low, high] shares between 0 and 1, got {band!r}")
    verdict = t.choice("rate_limit_verdict", VERDICTS, None)
    checksums = t.take("book_checksum_failures", int, None)
    if checksums is not None and checksums < 0:
        t.fail("book_checksum_failures", "a count, 0 or more")
    lat = t.table("latency")
    slos = []
    for selector in list(lat.data):
        proto, _, op = selector.rpartition("/")
        if selector != MD_BOOK and ((proto and proto not in PROTOCOLS)
                                    or (op != "*" and op not in OPS)):  # fmt: skip
            lat.fail(selector, f"expected an operation, PROTOCOL/OPERATION, '*' or {MD_BOOK} "
                     "(the market-data fan-out)")  # fmt: skip
        limits = lat.table(selector)
        given = {p: limits.number(p, None, 0.0) for p in SLO_PERCENTILES}
        limits.done()
        values = {p: float(v) for p, v in given.items() if v is not None}
        if not values:
            limits.fail("", f"give at least one of {', '.join(SLO_PERCENTILES)} (ms)")
        slos.append(LatencySlo(selector, values))
    lat.done()
    t.done()
    return Slo(ratio, tuple(band) if band else None, tuple(slos), verdict, checksums)


# ---- the stages over time (the Locust shape in users/shape.py asks these) ----------------------
# ramp moves linearly from the previous stage's users and rate to its own; step, spike and soak
# hold theirs from their first second (a spike is a step that is short and steep, usually with
# a mix of its own).


def stage_at(profile: Profile, elapsed: float) -> tuple[int, Stage, float] | None:
    """(index, stage, fraction of it done) at `elapsed` seconds; None once the run is over."""
    start = 0.0
    for i, stage in enumerate(profile.stages):
        if elapsed < start + stage.duration:
            return i, stage, (elapsed - start) / stage.duration
        start += stage.duration
    return None


def level_at(profile: Profile, elapsed: float) -> tuple[int, float] | None:
    """(users, total open-loop rate) at `elapsed` seconds; None once the run is over."""
    found = stage_at(profile, elapsed)
    if found is None:
        return None
    i, stage, done = found
    if stage.kind != "ramp":
        return stage.users, stage.rate
    prev_users, prev_rate = (0, 0.0) if i == 0 else (
        profile.stages[i - 1].users, profile.stages[i - 1].rate
    )  # fmt: skip
    users = round(prev_users + (stage.users - prev_users) * done)
    return max(users, 1 if stage.users else 0), prev_rate + (stage.rate - prev_rate) * done


def stage_ends(profile: Profile, elapsed: float) -> float | None:
    """The run time (s) at which the stage running at `elapsed` ends (a step's load, a ramp's
    last rate or mix change there); None once the run is over."""
    found = stage_at(profile, elapsed)
    if found is None:
        return None
    return sum(stage.duration for stage in profile.stages[: found[0] + 1])


def load_as_run(path: str | Path, run_meta: str | Path | None) -> Profile:
    """The profile as `loadgen run` ran it: its run.json's stages and loop (overrides applied)."""
    prof = load(path)
    if not run_meta:
        return prof
    data = json.loads(Path(run_meta).read_text())
    stages = tuple(Stage(**s) for s in data["stages"])
    return replace(prof, stages=stages, loop=data["loop"])
