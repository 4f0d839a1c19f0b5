"""`loadgen` command line: run | check | report | compare | venue | fuzz | probe | bench."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from loadgen.protocol.fixsession import ROLLOVER_ENV, ROLLOVER_S, ROLLOVER_UTC
from loadgen.ratelimit import TIERS
from loadgen.venue.knobs import PROTOCOLS, KnobError, Knobs


def _latency(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        proto, sep, spec = item.partition("=")
        if not sep or proto not in PROTOCOLS:
            raise KnobError(
                f"--latency {item!r}: expected PROTOCOL=SPEC with PROTOCOL one of "
                f"{', '.join(PROTOCOLS)}, e.g. rest=uniform:1:5"
            )
        out[proto] = spec
    return out


def add_venue_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind: loopback (default 127.0.0.1), or one named in --allow-host",
    )
    p.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="ADDRESS",
        help="a non-loopback address --host may be (repeat for several; 0.0.0.0 for every "
        "interface, as in a container): the venue then serves other machines",
    )
    p.add_argument(
        "--rest-port", type=int, default=0, help="REST port (0 = any free port, reported)"
    )
    p.add_argument("--ws-port", type=int, default=0,
                   help="authenticated WebSocket v2 port (0 = any free port)")  # fmt: skip
    p.add_argument("--ws-public-port", type=int, default=0,
                   help="public WebSocket v2 port: market data (0 = any free port)")  # fmt: skip
    p.add_argument("--fix-port", type=int, default=0, help="FIX 4.4 port (0 = any free port)")
    p.add_argument("--keys", type=int, default=100, help="number of test API keys (default 100)")
    p.add_argument(
        "--tier",
        default="pro",
        help=f"rate-limit tier of the keys, or a comma list cycled over them "
        f"({', '.join(TIERS)}; default pro)",
    )
    p.add_argument("--seed", default="loadgen", help="seed the test keys derive from")
    p.add_argument("--pairs", type=int, default=720, help="number of markets (default 720)")
    p.add_argument(
        "--keys-file",
        type=Path,
        default=Path("results/venue-keys.json"),
        help="where the keys and secrets are written, mode 0600 (default results/venue-keys.json)",
    )
    p.add_argument(
        "--tls",
        action="store_true",
        help="serve TLS only on all three ports (https, wss, FIX tls://) with a certificate "
        "from a CA of its own, written as venue-ca.pem beside the keys file",
    )
    p.add_argument(
        "--fix-rollover",
        default=None,
        metavar="HH:MM[:SS]|off",
        help="the FIX day's end, UTC, as Kraken's 22:00: every session is logged out and "
        "numbered from 1 again, and no Logon is accepted for --fix-rollover-s "
        f"(default ${ROLLOVER_ENV} or {ROLLOVER_UTC}; off: never)",
    )
    p.add_argument(
        "--fix-rollover-s",
        type=float,
        default=ROLLOVER_S,
        help=f"seconds a FIX rollover lasts (default {ROLLOVER_S:g}, as Kraken's ~30 s)",
    )
    p.add_argument(
        "--slow-subscriber-bytes",
        type=int,
        default=4 * 1024 * 1024,
        help="a book subscriber with more than this many bytes unread gets no more updates "
        "and a named close (1008); default 4 MiB",
    )
    p.add_argument(
        "--max-notional",
        type=float,
        default=10_000_000.0,
        help="largest order value in quote units; above it: EOrder:Insufficient funds",
    )
    p.add_argument(
        "--latency",
        action="append",
        default=[],
        metavar="PROTO=SPEC",
        help="added reply latency in ms per protocol: rest=fixed:2, ws=uniform:1:5, "
        "fix=normal:3:0.5, rest=lognormal:2:0.6, ws=exp:1 (default none)",
    )
    p.add_argument(
        "--unavailable",
        type=float,
        default=0.0,
        help="share of requests answered EService:Unavailable, 0..1 (default 0)",
    )
    p.add_argument(
        "--stall-every",
        type=float,
        default=0.0,
        help="seconds between engine stalls (0 = no stalls)",
    )
    p.add_argument("--stall-for", type=float, default=0.0, help="seconds each stall lasts")
    p.add_argument(
        "--latency-per-krps",
        type=float,
        default=0.0,
        help="added reply latency, ms per 1,000 requests/s served the second before "
        "(a venue that slows with load; 0 = off)",
    )
    p.add_argument(
        "--drop",
        type=float,
        default=0.0,
        help="chance per request, 0..1, that the venue drops the connection instead "
        "of handling it: the request has no effect, on every protocol (default 0)",
    )
    p.add_argument("--fault-seed", type=int, default=0, help="seed of the fault knobs' RNG")
    p.add_argument(
        "--limit-threshold",
        type=float,
        default=None,
        help="mis-set on purpose: hold the keys to this trading-counter threshold instead of "
        "their tier's published one (for proving the conformance check)",
    )
    p.add_argument(
        "--limit-decay",
        type=float,
        default=None,
        help="mis-set on purpose: the trading counter's decay per second instead of the tier's",
    )
    p.add_argument(
        "--no-cancel-penalty",
        dest="cancel_penalty",
        action="store_false",
        help="mis-set on purpose: cancels add nothing to the trading counter",
    )


def venue_config(args: argparse.Namespace):  # -> VenueConfig
    from loadgen.venue.app import VenueConfig

    knobs = Knobs(
        latency=_latency(args.latency),
        unavailable_ratio=args.unavailable,
        stall_every_s=args.stall_every,
        stall_for_s=args.stall_for,
        latency_per_krps=args.latency_per_krps,
        drop_ratio=args.drop,
        limit_threshold=args.limit_threshold,
        limit_decay=args.limit_decay,
        cancel_penalty=args.cancel_penalty,
        seed=args.fault_seed,
    )
    return VenueConfig(
        host=args.host,
        allow_hosts=tuple(args.allow_host),
        rest_port=args.rest_port,
        ws_port=args.ws_port,
        ws_public_port=args.ws_public_port,
        fix_port=args.fix_port,
        keys=args.keys,
        tiers=args.tier.split(","),
        seed=args.seed,
        pairs=args.pairs,
        keys_file=args.keys_file,
        tls=args.tls,
        max_notional=args.max_notional,
        knobs=knobs,
        fix_rollover_s=args.fix_rollover_s,
        slow_subscriber_bytes=args.slow_subscriber_bytes,
        **({"fix_rollover": args.fix_rollover} if args.fix_rollover is not None else {}),
    )


def cmd_worker(args: argparse.Namespace) -> int:
    from loadgen.worker import main as worker_main

    return worker_main(args)


def cmd_venue(args: argparse.Namespace) -> int:
    from loadgen.venue.app import serve

    config = venue_config(args)

    def ready(venue) -> None:
        e = venue.endpoints
        print(
            f"loadgen venue: {len(venue.pairs)} pairs, {len(venue.accounts.all)} keys "
            f"(tier {args.tier})",
            flush=True,
        )
        print(f"  REST      {e['rest']}/0/public/Time", flush=True)
        print(f"  WebSocket {e['ws']}  (authenticated: trading, executions)", flush=True)
        print(f"  WS public {e['ws_public']}  (market data: book, ticker, trade, ohlc, "
              "instrument)", flush=True)  # fmt: skip
        print(f"  FIX 4.4   {e['fix']}  (TargetCompID KRAKEN-TRD)", flush=True)
        if config.keys_file is not None:
            print(f"  keys      {config.keys_file} (secrets are in that file only)", flush=True)
        if venue.ca_file is not None:
            print(f"  CA        {venue.ca_file} (give it to the traders: --ca-file)", flush=True)
        print("ready; Ctrl-C or SIGTERM to stop", flush=True)

    venue = serve(config, ready)
    ex = venue.exchange
    print(
        f"loadgen venue: stopped after {ex.orders_placed} orders, {ex.trades} trades, "
        f"{ex.cancels} cancels; {venue.open_order_count()} orders were still open",
        flush=True,
    )
    served = ", ".join(f"{p} {n}" for p, n in venue.served.items())
    print(f"loadgen venue: served {served} trading requests", flush=True)
    if venue.problems.total:
        print(f"loadgen venue: {venue.problems.total} requests hit a handler failure", flush=True)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    if args.target in (None, "all"):  # no part named: the whole benchmark
        from loadgen.bench.suite import main as bench_suite

        return bench_suite(args)
    if args.target == "traders":
        from loadgen.bench.traders import main as bench_traders

        return bench_traders(args)
    if args.target == "master":
        from loadgen.bench.master import main as bench_master

        return bench_master(args)
    if args.target == "openloop":
        from loadgen.bench.openloop import main as bench_openloop

        return bench_openloop(args)
    if args.target == "marketdata":
        from loadgen.bench.marketdata import main as bench_marketdata

        return bench_marketdata(args)
    if args.target == "wire":
        from loadgen.bench.wire import main as bench_wire

        return bench_wire(args)
    from loadgen.bench.venue import main as bench_venue

    return bench_venue(args)


def cmd_run(args: argparse.Namespace) -> int:
    from loadgen.run import main as run_main

    return run_main(args)


def cmd_report(args: argparse.Namespace) -> int:
    from loadgen.run import report

    if not (Path(args.run_dir) / "windows.jsonl").exists():
        print(
            f"loadgen report: {args.run_dir}: no windows.jsonl, not a run folder", file=sys.stderr
        )
        return 2
    from loadgen.metrics.store import ResultsWriteError

    try:
        return report(Path(args.run_dir))
    except ResultsWriteError as exc:
        print(f"loadgen report: {exc}", file=sys.stderr)
        return 2


def cmd_check(args: argparse.Namespace) -> int:
    from loadgen.check import main as check_main

    return check_main(args)


def cmd_probe(args: argparse.Namespace) -> int:
    from loadgen.probe import main as probe_main

    return probe_main(args)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value <= 86_400:
        raise argparse.ArgumentTypeError(f"{text!r}: give 0 < seconds <= 86400")
    return value


def cmd_fuzz(args: argparse.Namespace) -> int:
    from loadgen.fuzz import main as fuzz_main

    return fuzz_main(args)


def cmd_compare(args: argparse.Namespace) -> int:
    from loadgen.report.compare import main as compare_main

    return compare_main(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="loadgen", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    from loadgen.run import add_args as add_run_args

    run = sub.add_parser("run", help="run a profile: venue, Locust, live line, report, SLO verdict")
    add_run_args(run)
    run.set_defaults(func=cmd_run)
    from loadgen.worker import add_args as add_worker_args

    worker = sub.add_parser(
        "worker", help="join a `loadgen run PROFILE --master` on another machine as its worker"
    )
    add_worker_args(worker)
    worker.set_defaults(func=cmd_worker)
    check = sub.add_parser(
        "check",
        help="preflight a profile's target: connect, TLS, time, pairs, keys, one order "
        "per protocol; exit 0 only when the profile can run",
    )
    from loadgen.check import add_args as add_check_args

    add_check_args(check)
    check.set_defaults(func=cmd_check)
    rep = sub.add_parser("report", help="(re)write summary.json, report.html, junit.xml of a run")
    rep.add_argument("run_dir", help="a results/<run>/ folder")
    rep.set_defaults(func=cmd_report)
    cmp_ = sub.add_parser(
        "compare", help="a run against a baseline (one run or several), regressions beyond noise"
    )
    cmp_.add_argument(
        "runs", nargs="+", metavar="RUN",
        help="baseline run folder(s), then the run to judge against them",
    )  # fmt: skip
    cmp_.add_argument(
        "--threshold", type=float, default=0.10,
        help="flag a change worse than this fraction (default 0.10 = 10%%)",
    )  # fmt: skip
    cmp_.set_defaults(func=cmd_compare)
    venue = sub.add_parser("venue", help="run the embedded Kraken-compatible venue on loopback")
    add_venue_args(venue)
    venue.set_defaults(func=cmd_venue)
    fuzz = sub.add_parser(
        "fuzz", help="fuzz an embedded venue's three ports with broken requests (bounded)"
    )
    fuzz.add_argument("--seconds", type=_seconds, default=30.0, help="per port (default 30)")
    fuzz.add_argument("--seed", type=int, default=1, help="seed of the mutations (default 1)")
    fuzz.add_argument("--ports", default="rest,ws,fix", help="which ports (default rest,ws,fix)")
    fuzz.add_argument("--log-dir", default="", help="keep the venue's log here (default: none)")
    fuzz.set_defaults(func=cmd_fuzz)
    probe = sub.add_parser("probe", help="measure an undocumented rate limiter from outside")
    from loadgen.probe import add_args as add_probe_args

    add_probe_args(probe)
    probe.set_defaults(func=cmd_probe)
    bench = sub.add_parser(
        "bench",
        help="the benchmark: venue and generator cost, scaling, end to end, capacity "
        "(results/bench-<timestamp>/); or one part of it",
    )
    from loadgen.bench.suite import add_args as add_suite_args

    add_suite_args(bench)
    bench.set_defaults(func=cmd_bench, target="all")
    bench_sub = bench.add_subparsers(dest="target", required=False)
    bv = bench_sub.add_parser(
        "venue", help="venue CPU microseconds per order request, per protocol"
    )
    from loadgen.bench.venue import add_args

    add_args(bv)
    bv.set_defaults(func=cmd_bench)
    bt = bench_sub.add_parser("traders", help="generator CPU microseconds per request, per trader")
    from loadgen.bench.traders import add_args as add_trader_args

    add_trader_args(bt)
    bt.set_defaults(func=cmd_bench)
    bw = bench_sub.add_parser(
        "wire", help="latency figures held against a tcpdump capture of the same run"
    )
    from loadgen.bench.wire import add_args as add_wire_args

    add_wire_args(bw)
    bw.set_defaults(func=cmd_bench)
    bm = bench_sub.add_parser(
        "master", help="one Locust master with 10 to 500 simulated workers: its CPU, write lag"
    )
    from loadgen.bench.master import add_args as add_master_args

    add_master_args(bm)
    bm.set_defaults(func=cmd_bench)
    bo = bench_sub.add_parser(
        "openloop", help="the open loop on one worker: P99 at 1,000 req/s, the ceiling"
    )
    from loadgen.bench.openloop import add_args as add_openloop_args

    add_openloop_args(bo)
    bo.set_defaults(func=cmd_bench)
    bd = bench_sub.add_parser(
        "marketdata", help="the book feed: venue CPU per update per subscriber, subscribers held"
    )
    from loadgen.bench.marketdata import add_args as add_marketdata_args

    add_marketdata_args(bd)
    bd.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    from loadgen.venue.app import VenueConfigError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (KnobError, VenueConfigError) as exc:
        print(f"loadgen: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"loadgen: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
