"""The traders' Locust options and run set-up: markets, keys, and the embedded venue.

Reaches Locust only through its public hooks (STYLE): init_command_line_parser (every option
has an env var and shows in the web UI), init (the master or a local runner starts the
embedded venue when no --host is given, and hands its endpoints to workers through the
options Locust sends with each spawn) and quit (the venue stops, after the users stopped and
cleaned up). The cancel-alls at test stop are called by users/recording, which counts them.
"""

from __future__ import annotations

import argparse
import atexit
import itertools
import logging
import math
import ssl
import time
from pathlib import Path
from typing import Any

import gevent.lock
from locust import events
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from loadgen import keyuse
from loadgen.flow.market import Market
from loadgen.keys import (
    COMP_IDS_FIELD,
    DEFAULT_SEED,
    MAX_PROCESSES,
    RUN_KEYS,
    comp_id_for,
    derive_comp_ids,
    derive_key,
    read_keys_file,
)
from loadgen.outcome import Outcome
from loadgen.protocol.book import DEFAULT_DEPTH, DEPTHS
from loadgen.protocol.ws import MD_CHANNELS, parse_md_channels
from loadgen.ratelimit import INF
from loadgen.safety import host_problem
from loadgen.venue.process import VenueProcess

log = logging.getLogger("loadgen.users")

DEFAULT_PAIRS = "XBTUSD,ETHUSD,SOLUSD,XRPUSD"


@events.init_command_line_parser.add_listener
def add_options(parser: Any) -> None:
    # On the parser itself: only LocustArgumentParser.add_argument marks an option for the web
    # UI (an argument group's add_argument bypasses it).
    group = parser
    group.add_argument(
        "--pairs",
        default=DEFAULT_PAIRS,
        env_var="LOADGEN_PAIRS",
        help=f"markets to trade, NAME or NAME:WEIGHT, comma separated (default {DEFAULT_PAIRS})",
    )
    group.add_argument(
        "--order-mix",
        default="",
        env_var="LOADGEN_ORDER_MIX",
        help="operation weights, e.g. add:45,cancel:35,amend:10,edit:4,"
        "batch_add:3,batch_cancel:2,cancel_all:1 (default: that mix)",
    )
    group.add_argument(
        "--order-types",
        default="",
        env_var="LOADGEN_ORDER_TYPES",
        help="weights of the order types new orders take, e.g. limit:80,post:5,market:2,ioc:3,"
        "gtd:3,iceberg:3,stop-loss:1,stop-loss-limit:1,take-profit:1,take-profit-limit:1 "
        "(fok: FIX only); default: limit orders only",
    )
    group.add_argument(
        "--cross-share",
        type=float,
        default=0.1,
        env_var="LOADGEN_CROSS_SHARE",
        help="share of new orders priced to cross the book, 0..1 (default 0.1)",
    )
    group.add_argument(
        "--tier",
        default="pro",
        env_var="LOADGEN_TIER",
        help="rate-limit tier of the keys: the embedded venue's, and the published limits the "
        "conformance check holds the venue to (default pro)",
    )
    group.add_argument(
        "--stay-under",
        action="store_true",
        default=False,
        env_var="LOADGEN_STAY_UNDER",
        help="traders wait until their shadow of the venue's rate-limit counter has room, "
        "as careful trading systems do: the highest clean throughput a key can get",
    )
    group.add_argument(
        "--pipeline",
        type=int,
        default=1,
        env_var="LOADGEN_PIPELINE",
        help="requests each trader puts on the wire per turn, closed loop (default 1: send, "
        "wait for the answer, send again); more saves system calls on both ends",
    )
    group.add_argument(
        "--flow-seed",
        type=int,
        default=0,
        env_var="LOADGEN_FLOW_SEED",
        help="seed of the order flow: same seed, same orders (default 0)",
    )
    group.add_argument(
        "--key-seed",
        default=DEFAULT_SEED,
        env_var="LOADGEN_KEY_SEED",
        help="seed the test keys derive from (the venue's --seed)",
    )
    group.add_argument(
        "--keys-file",
        default="",
        env_var="LOADGEN_KEYS_FILE",
        help="JSON keys file (the venue's --keys-file format) for a venue already running "
        "('' = keys derived from --key-seed, as the embedded venue has them)",
    )
    group.add_argument(
        "--key-stride",
        type=int,
        default=0,
        env_var="LOADGEN_KEY_STRIDE",
        include_in_web_ui=False,
        help=argparse.SUPPRESS,  # set by the master for its workers (key_stride)
    )
    group.add_argument(
        "--allow-host",
        action="append",
        default=[],
        env_var="LOADGEN_ALLOW_HOST",
        help="a non-loopback host the traders may load (repeat for several); without it only "
        "loopback targets run",
    )
    group.add_argument(
        "--ws-url",
        default="",
        env_var="LOADGEN_WS_URL",
        help="WebSocket v2 URL (default: the embedded venue's)",
    )
    group.add_argument(
        "--md-url",
        default="",
        env_var="LOADGEN_MD_URL",
        help="public WebSocket v2 URL the MarketDataUsers subscribe on, Kraken's "
        "wss://ws.kraken.com/v2 (default: the embedded venue's public one, else --ws-url)",
    )
    group.add_argument(
        "--fix-url",
        default="",
        env_var="LOADGEN_FIX_URL",
        help="FIX 4.4 address tcp://HOST:PORT, or tls://HOST:PORT for FIX over TLS "
        "(default: the embedded venue's)",
    )
    group.add_argument(
        "--ca-file",
        default="",
        env_var="LOADGEN_CA_FILE",
        help="PEM file of the CA(s) that verify the target's TLS certificates, e.g. a staging "
        "gateway's own (default: the system's CAs)",
    )
    group.add_argument(
        "--insecure",
        action="store_true",
        default=False,
        env_var="LOADGEN_INSECURE",
        help="do not verify TLS certificates (the report says so)",
    )
    group.add_argument(
        "--venue-tls",
        action="store_true",
        default=False,
        env_var="LOADGEN_VENUE_TLS",
        help="the embedded venue serves TLS only (https, wss, FIX tls://), with a CA of its own",
    )
    # Locust's web UI serves every interface by default, with no login: ours stays on this
    # machine unless asked (--web-host 0.0.0.0, or LOCUST_WEB_HOST), as a test rig should
    parser.set_defaults(web_host="127.0.0.1")
    group.add_argument(
        "--request-timeout",
        type=float,
        default=10.0,
        env_var="LOADGEN_REQUEST_TIMEOUT",
        help="seconds before a request counts as a timeout (default 10)",
    )
    group.add_argument(
        "--md-depth",
        type=int,
        choices=DEPTHS,
        default=DEFAULT_DEPTH,
        env_var="LOADGEN_MD_DEPTH",
        help="levels a side a MarketDataUser's book subscriptions ask for (default 10)",
    )
    group.add_argument(
        "--md-channels",
        default="book",
        env_var="LOADGEN_MD_CHANNELS",
        help=f"public channels a MarketDataUser follows, comma-separated: "
        f"{', '.join(MD_CHANNELS)} (default book)",
    )


def md_channels(opts: Any) -> tuple[str, ...]:
    """The --md-channels list, checked: ValueError naming the option and what is wrong."""
    return parse_md_channels(str(getattr(opts, "md_channels", "book")))


# ---- the embedded venue ------------------------------------------------------------------------


_venue: VenueProcess | None = None


@events.init.add_listener
def start_embedded_venue(environment: Environment, **_: Any) -> None:
    global _venue
    if isinstance(environment.runner, WorkerRunner):
        return  # workers get the endpoints from the master
    opts = environment.parsed_options
    if opts is not None and opts.ca_file and not Path(opts.ca_file).is_file():
        raise SystemExit(f"loadgen: --ca-file {opts.ca_file}: no such file")
    try:
        md_channels(opts)
    except ValueError as exc:
        raise SystemExit(f"loadgen: {exc}") from None
    if environment.host:  # a venue exists: only loopback, or a host allowed by name
        allowed = opts.allow_host if opts else []
        for name, url in (("--host", environment.host), ("--ws-url", opts.ws_url if opts else ""),
                          ("--fix-url", opts.fix_url if opts else ""),
                          ("--md-url", opts.md_url if opts else "")):  # fmt: skip
            problem = host_problem(url, allowed, "--allow-host")
            if problem:
                raise SystemExit(f"loadgen: {name} {url}: {problem}")
        return
    tls = ["--tls"] if opts is not None and opts.venue_tls else []
    _venue = VenueProcess(
        "--keys",
        str(RUN_KEYS),
        "--tier",
        opts.tier if opts else "pro",
        "--seed",
        opts.key_seed if opts else DEFAULT_SEED,
        *tls,
    )
    atexit.register(_venue.stop)
    environment.host = _venue.endpoints["rest"]
    if opts is not None:
        opts.ws_url = opts.ws_url or _venue.endpoints["ws"]
        opts.md_url = opts.md_url or _venue.endpoints.get("ws_public", "")
        opts.fix_url = opts.fix_url or _venue.endpoints["fix"]
        opts.ca_file = opts.ca_file or _venue.ca_file
    log.info("embedded venue: %s", _venue.endpoints)


@events.quit.add_listener  # after runner.quit() stopped the users (quitting fires before)
def stop_embedded_venue(**_: Any) -> None:
    if _venue is not None:
        for line in _venue.stop():
            log.info("%s", line)  # e.g. "stopped after N orders ...; 0 orders were still open"


# ---- per process: markets, keys, and the last cancel-all -----------------------------------------

_markets: dict[str, tuple[list[Market], list[float]]] = {}
# The venue's AssetPairs (720 pairs in Kraken's full shape) and Ticker, fetched once a
# process: without the lock every user spawned in the same moment missed the cache (the
# fetch yields to the others under gevent) and fetched them again.
_markets_lock = gevent.lock.RLock()
_user_numbers = itertools.count()
used_keys: dict[str, str] = {}  # api key -> secret, for the cancel-all at test stop


def tls_context(environment: Environment) -> ssl.SSLContext | None:
    """The context the traders verify TLS targets with: --ca-file's CAs or the system's, none
    with --insecure (clients use it for https, wss and tls:// URLs only)."""
    from loadgen.clients.tls import context

    opts = environment.parsed_options
    if opts is None:
        return None
    return context(opts.ca_file or "", bool(opts.insecure))


def markets(
    host: str, spec: str, tls: ssl.SSLContext | None = None
) -> tuple[list[Market], list[float]]:
    """The configured markets with their weights, from the venue's AssetPairs (once)."""
    from loadgen.clients.rest import fetch_markets

    cached = _markets.get(spec)
    if cached is not None:
        return cached
    with _markets_lock:  # users spawned together wait for one fetch, not one each
        cached = _markets.get(spec)
        if cached is None:
            names, weights = [], []
            for item in spec.split(","):
                name, _, weight = item.strip().partition(":")
                names.append(name)
                weights.append(float(weight) if weight else 1.0)
            cached = _markets[spec] = (fetch_markets(host, names, tls), weights)
    return cached


def key_stride(environment: Environment) -> int:
    """How many processes interleave their users' keys: key index = user number * stride +
    worker index. A local runner has them all (1). The master decides for its workers at test
    start and tells them with the options it sends in each spawn (--key-stride): the N workers
    it forks with --processes N, else the workers it has then (at least --expect-workers; each
    process a machine forks is a worker of its own). Two users sharing a key over two
    connections race each other's nonces (Kraken's nonce must rise per key), so keys are never
    shared until a run has more users than keys (a worker joining later than that shares)."""
    opts = environment.parsed_options
    runner = environment.runner
    if not isinstance(runner, WorkerRunner | MasterRunner):
        return 1
    told = getattr(opts, "key_stride", 0) or 0
    if told > 0:
        return int(told)
    if isinstance(runner, WorkerRunner):
        return MAX_PROCESSES  # a master that did not say (not loadgen's): the widest room
    processes = getattr(opts, "processes", None) or 0
    if 0 < processes <= MAX_PROCESSES:
        return processes
    expected = int(getattr(opts, "expect_workers", 1) or 1)
    return max(1, expected, runner.worker_count)


@events.test_start.add_listener
def share_key_stride(environment: Environment, **_: Any) -> None:
    """The master fixes the stride as the load starts (its workers known), before Locust
    builds the spawn messages that carry the custom options to every worker."""
    opts = environment.parsed_options
    if isinstance(environment.runner, MasterRunner) and opts is not None:
        opts.key_stride = 0
        opts.key_stride = key_stride(environment)


def next_key(environment: Environment) -> tuple[int, str, str, str]:
    """(key index, api key, secret, FIX SenderCompID) for a new user: unique across this run's
    processes. The n-th user on one key takes the key's n-th SenderCompID ('' past the last)."""
    number = next(_user_numbers)
    runner = environment.runner
    worker = runner.worker_index if isinstance(runner, WorkerRunner) else 0
    index = number * key_stride(environment) + worker
    opts = environment.parsed_options
    if opts is not None and opts.keys_file:
        keys = _file_keys(opts.keys_file)
        key = keys[index % len(keys)]
        api_key, secret = key["api_key"], key["secret"]
        comp_id = comp_id_for(key.get(COMP_IDS_FIELD, []), index // len(keys))
    else:
        api_key, secret = derive_key(opts.key_seed if opts else DEFAULT_SEED, index % RUN_KEYS)
        comp_id = comp_id_for(derive_comp_ids(api_key), index // RUN_KEYS)
    used_keys[api_key] = secret
    return index, api_key, secret, comp_id


_quiet: dict[str, tuple[float, float]] = {}  # api key -> (monotonic then, seconds to quiet)


def note_quiet(api_key: str, seconds: float) -> None:
    """A user of `api_key` stopped; its trading counter is quiet `seconds` from now."""
    now = time.monotonic()
    at, before = _quiet.get(api_key, (now, 0.0))
    _quiet[api_key] = (now, max(seconds, before - (now - at)))


def key_quiet(environment: Environment) -> dict[str, float]:
    """At test stop: seconds until each key this process traded with is quiet again (api key
    -> seconds). A key no stopping user spoke for counts as full (the worst)."""
    opts = environment.parsed_options
    now = time.monotonic()
    full = keyuse.quiet_after(opts.tier if opts else "pro", INF)
    quiet = {}
    for api_key in used_keys:
        at, seconds = _quiet.get(api_key, (now, full))
        quiet[api_key] = seconds - (now - at)
    return quiet


def record_key_use(environment: Environment, quiet: dict[str, float], source: str = "") -> None:
    """Keep `quiet` (key_quiet's) in the results folder (loadgen.keyuse), by the process that
    owns the results: a local runner, or the master for each worker (source names it)."""
    opts = environment.parsed_options
    if opts is None or not getattr(opts, "results_dir", "") or not environment.host:
        return
    try:
        keyuse.write(Path(opts.results_dir), environment.host, quiet, source=source)
    except OSError as exc:
        log.warning("could not record which keys traded (%s): a run right after may see "
                    "their counters warm", exc)  # fmt: skip


_keys_cache: dict[str, list[dict[str, Any]]] = {}


def _file_keys(path: str) -> list[dict[str, Any]]:
    if path not in _keys_cache:
        _keys_cache[path] = read_keys_file(path)
    return _keys_cache[path]


def cancel_everything(environment: Environment) -> list[Outcome]:
    """Whatever a killed user left: one CancelAll per key this process traded with (called at
    test stop by users/recording, which counts these as cleanup, not load)."""
    if not environment.host:
        return []
    tls = tls_context(environment)
    return [_cancel_all(environment.host, k, s, tls) for k, s in list(used_keys.items())]


def cancel_worker_keys(environment: Environment, worker: int) -> tuple[int, int]:
    """A CancelAll for every key a lost worker may have traded with: (keys, failures).

    Worker `worker` takes key index number * stride + worker (next_key), so its keys are those
    whose index is `worker` modulo the stride."""
    host, opts = environment.host, environment.parsed_options
    if not host:
        return 0, 0
    if opts is not None and opts.keys_file:
        keys = [(k["api_key"], k["secret"]) for k in _file_keys(opts.keys_file)]
    else:
        seed = opts.key_seed if opts else DEFAULT_SEED
        keys = [derive_key(seed, i) for i in range(RUN_KEYS)]
    # Indices past the keys wrap (index % len(keys)): every key whose index agrees with the
    # worker's modulo gcd(stride, keys) may be one of its (a superset at worst: at stop nobody
    # else trades on them)
    step = math.gcd(key_stride(environment), len(keys))
    mine = keys[worker % step :: step]
    tls = tls_context(environment)
    failed = sum(not _cancel_all(host, k, s, tls).ok for k, s in mine)
    return len(mine), failed


def _cancel_all(host: str, api_key: str, secret: str, tls: ssl.SSLContext | None) -> Outcome:
    from loadgen.clients.rest import RestClient

    client = RestClient(host, api_key, secret, timeout=5.0, tls=tls)
    outcome = client.cancel_all()
    client.close()
    assert outcome is not None  # (None only while the client queues: after begin())
    if not outcome.ok:
        log.warning("cancel-all for %s... at test stop: %s", api_key[:8], outcome.error)
    return outcome
