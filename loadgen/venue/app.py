"""The venue process: one asyncio (uvloop) loop serving REST, WebSocket v2 and FIX 4.4.

`Venue` owns the engine, the accounts and the three servers; `serve()` is what `loadgen venue`
runs (signals, endpoints on stdout); `VenueThread` runs a venue on a thread of its own for
tests (the tests' clients are plain blocking sockets, never gevent).
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import logging
import os
import signal
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadgen.protocol.fixsession import ROLLOVER_ENV, ROLLOVER_S, ROLLOVER_UTC, rollover_second
from loadgen.venue.accounts import DEFAULT_KEY_COUNT, DEFAULT_MAX_NOTIONAL, DEFAULT_SEED, Accounts
from loadgen.venue.context import ServerContext
from loadgen.venue.engine import Exchange
from loadgen.venue.knobs import Faults, Knobs
from loadgen.venue.marketdata import SLOW_BYTES
from loadgen.venue.pairs import DEFAULT_PAIR_COUNT, PairIndex, catalog
from loadgen.venue.problems import Problems

DEFAULT_KEYS_FILE = Path("results/venue-keys.json")
log = logging.getLogger("loadgen.venue")
TICK_S = 1.0  # FIX heartbeats/TestRequests and WS heartbeats are checked this often


class VenueConfigError(ValueError):
    """A venue setting that cannot be used; the message names it."""


@dataclass
class VenueConfig:
    host: str = "127.0.0.1"
    # A non-loopback address the venue may bind, named on purpose (`--allow-host`): so it can
    # serve as a separate host of a distributed run (a namespace, a container, a lab machine).
    allow_hosts: tuple[str, ...] = ()
    rest_port: int = 0  # 0 = any free port (reported at start)
    ws_port: int = 0
    fix_port: int = 0
    ws_public_port: int = 0  # the public WS v2 endpoint (Kraken's ws.kraken.com/v2)
    keys: int = DEFAULT_KEY_COUNT
    tiers: list[str] = field(default_factory=lambda: ["pro"])  # cycled over the keys
    seed: str = DEFAULT_SEED
    pairs: int = DEFAULT_PAIR_COUNT
    keys_file: Path | None = DEFAULT_KEYS_FILE
    tls: bool = False  # every port TLS only, with a CA of its own written beside the keys file
    ca_dir: Path | None = None  # where venue-ca.pem goes (default: the keys file's folder)
    max_notional: float = DEFAULT_MAX_NOTIONAL
    knobs: Knobs = field(default_factory=Knobs)
    # the FIX day's end, "HH:MM[:SS]" UTC (Kraken's 22:00), or "off"
    fix_rollover: str = field(default_factory=lambda: os.environ.get(ROLLOVER_ENV, ROLLOVER_UTC))
    fix_rollover_s: float = ROLLOVER_S  # how long no FIX Logon is accepted after it
    slow_subscriber_bytes: int = SLOW_BYTES  # unread book bytes past which one is dropped

    def validate(self) -> None:
        from loadgen.ratelimit import TIERS

        self._check_host()
        for name in ("rest_port", "ws_port", "fix_port", "ws_public_port"):
            port = getattr(self, name)
            if not 0 <= port <= 65535:
                raise VenueConfigError(f"{name} {port} is not a port (0-65535; 0 = any free port)")
        if self.keys < 1:
            raise VenueConfigError("keys must be at least 1")
        if self.pairs < 1:
            raise VenueConfigError("pairs must be at least 1")
        for tier in self.tiers:
            if tier not in TIERS:
                raise VenueConfigError(f"tier {tier!r} is unknown (use {', '.join(TIERS)})")
        if self.fix_rollover != "off":
            try:
                rollover_second(self.fix_rollover)
            except ValueError as exc:
                raise VenueConfigError(f"FIX {exc}") from None
        if not 0 <= self.fix_rollover_s <= 3600:
            raise VenueConfigError(f"fix_rollover_s {self.fix_rollover_s:g}: 0 to 3600 seconds")
        if self.slow_subscriber_bytes < 1024:
            raise VenueConfigError("slow_subscriber_bytes: at least 1024")
        if self.tls and self.ca_dir is None and self.keys_file is None:
            raise VenueConfigError("tls needs a folder for its CA file (ca_dir or keys_file)")
        self.knobs.validate()

    def _check_host(self) -> None:
        """Loopback, or an address given in allow_hosts too (names are not resolved here:
        a name's address could change under the venue)."""
        try:
            address = ipaddress.ip_address(self.host)
        except ValueError:
            if self.host != "localhost":
                raise VenueConfigError(
                    f"host {self.host!r}: give an IP address (loopback, or one named in "
                    "--allow-host)"
                ) from None
            return
        if not address.is_loopback and self.host not in self.allow_hosts:
            raise VenueConfigError(
                f"host {self.host!r} is not loopback: the venue serves 127.0.0.0/8 or ::1 "
                f"unless the address is named on purpose (--allow-host {self.host})"
            )


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


class Venue:
    def __init__(self, config: VenueConfig) -> None:
        config.validate()
        self.config = config
        self.pairs = PairIndex(catalog(config.pairs))
        self.exchange = Exchange(self.pairs)
        self.accounts = Accounts.generate(config.keys, config.tiers, config.seed)
        knobs = config.knobs
        for account in self.accounts.all:
            account.max_notional = config.max_notional
            if knobs.limit_threshold is not None or knobs.limit_decay is not None:
                # The keys keep their tier's name (what the venue publishes) but are held to
                # other figures: a mis-set venue for the conformance check to find.
                tier = account.tier
                account.tier = dataclasses.replace(
                    tier,
                    trade_threshold=_or(knobs.limit_threshold, tier.trade_threshold),
                    trade_decay=_or(knobs.limit_decay, tier.trade_decay),
                )
        if not knobs.cancel_penalty:
            self.exchange.cancel_cost = lambda age: 0.0
        self.faults = Faults(config.knobs, time.monotonic())
        self.context = ServerContext(
            self.exchange, self.accounts, self.faults, Problems(logging.getLogger("loadgen.venue"))
        )
        from loadgen.venue.fix_server import Rollover
        from loadgen.venue.marketdata import MarketData

        self.context.market_data = MarketData(self.exchange, config.slow_subscriber_bytes)

        second = rollover_second(config.fix_rollover) if config.fix_rollover != "off" else None
        self.context.fix_rollover = Rollover(second, config.fix_rollover_s, self.exchange.wall())
        # The context's registries, under the names the venue's users know them by
        self.served = self.context.served
        self.connections = self.context.connections
        self.fix_hosts = self.context.fix_hosts
        self.problems = self.context.problems
        self.loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]
        self.servers: list[asyncio.base_events.Server] = []
        self.endpoints: dict[str, str] = {}
        self.ca_file: Path | None = None  # with tls: the CA that verifies this venue
        self._ticker: asyncio.TimerHandle | None = None
        from loadgen.venue.rest_api import RestApi
        from loadgen.venue.ws_api import WsApi

        self.rest_api = self.context.rest_api = RestApi(self.context)
        self.ws_api = self.context.ws_api = WsApi(self.context)

    async def start(self) -> dict[str, str]:
        from loadgen.venue.fix_server import FixConnection
        from loadgen.venue.rest_server import RestConnection
        from loadgen.venue.ws_server import PublicWsConnection, WsConnection

        self.loop = self.context.loop = asyncio.get_running_loop()
        self.exchange.call_later = self.loop.call_later
        self.faults.origin = time.monotonic()
        cfg = self.config
        ports = {}
        tls = self._tls_context()
        for name, factory, port in (
            ("rest", RestConnection, cfg.rest_port),
            ("ws", WsConnection, cfg.ws_port),
            ("fix", FixConnection, cfg.fix_port),
            ("ws_public", PublicWsConnection, cfg.ws_public_port),
        ):
            server = await self.loop.create_server(
                lambda f=factory: f(self.context), cfg.host, port, reuse_address=True, ssl=tls
            )
            self.servers.append(server)
            ports[name] = server.sockets[0].getsockname()[1]
        host = f"[{cfg.host}]" if ":" in cfg.host else cfg.host
        s = "s" if tls else ""
        self.endpoints = {
            "rest": f"http{s}://{host}:{ports['rest']}",
            "ws": f"ws{s}://{host}:{ports['ws']}/v2",
            "fix": f"{'tls' if tls else 'tcp'}://{host}:{ports['fix']}",
            "ws_public": f"ws{s}://{host}:{ports['ws_public']}/v2",
        }
        if cfg.keys_file is not None:
            self.accounts.write_keys_file(cfg.keys_file, self.endpoints, self.ca_file)
        self._ticker = self.loop.call_later(TICK_S, self._tick)
        return self.endpoints

    def _tls_context(self) -> ssl.SSLContext | None:
        cfg = self.config
        if not cfg.tls:
            return None
        from loadgen.venue.tls import server_context

        if cfg.ca_dir is not None:
            folder = cfg.ca_dir
        else:
            assert cfg.keys_file is not None  # validate() refuses tls with neither
            folder = cfg.keys_file.parent
        ctx, self.ca_file = server_context(cfg.host, folder)
        return ctx

    def _tick(self) -> None:
        now_wall = self.exchange.wall()
        now_loop = self.loop.time()
        rollover = self.context.fix_rollover
        if rollover.due(now_wall):
            rolled = rollover.roll(self.fix_hosts, now_wall)
            log.info("FIX session rollover: %d sessions logged out, numbered from 1 again", rolled)
        for host in list(self.fix_hosts.values()):
            conn = host.conn
            if conn is None:
                continue
            host.session.tick(now_wall)
            conn.write_outbox()
            if host.session.closed:
                conn.close_after_write()
                conn.closed = True
        for conn in list(self.connections):
            heartbeat = getattr(conn, "heartbeat", None)
            if heartbeat is not None:
                heartbeat(now_loop)
        self._ticker = self.loop.call_later(TICK_S, self._tick)

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
        for server in self.servers:
            server.close()
        for conn in list(self.connections):
            if conn.transport is not None:
                conn.transport.close()
        for server in self.servers:
            await server.wait_closed()

    def open_order_count(self) -> int:
        return sum(len(a.orders) for a in self.accounts.all)


def new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on every POSIX platform
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def serve(config: VenueConfig, on_ready: Callable[[Venue], None]) -> Venue:
    """Run until SIGINT or SIGTERM, then close every connection and return the venue."""
    loop = new_loop()
    asyncio.set_event_loop(loop)
    venue = Venue(config)
    stop = asyncio.Event()

    async def main() -> None:
        await venue.start()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        on_ready(venue)
        await stop.wait()
        await venue.stop()

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
    return venue


class VenueThread:
    """A venue on a background thread with its own loop; `call(fn)` runs fn on that loop."""

    def __init__(self, config: VenueConfig) -> None:
        self.venue = Venue(config)
        self.loop = new_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="venue", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self.venue.start())
        except BaseException as exc:  # report to the starting thread
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self.venue.stop())
        self.loop.close()

    def start(self, timeout: float = 10.0) -> VenueThread:
        self.thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("venue did not start")
        if self._error is not None:
            raise self._error
        return self

    def call(self, fn: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Run fn on the venue's loop and return its result (thread-safe inspection)."""

        async def run() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    @property
    def endpoints(self) -> dict[str, str]:
        return self.venue.endpoints
