"""What the venue's servers and APIs see of the venue: its state and services, not the Venue.

app.Venue owns the engine, the accounts and the three listening servers, and starts and stops
them. The connections (rest_server, ws_server, fix_server, conn) and the APIs (rest_api,
ws_api) need far less: the exchange, the keys, the fault knobs, the counters a run's totals
are held against, and each other's registries. They get this context, so no module below
app.py imports app.py (six of them did, for their type hints: a circle through app.py).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loadgen.venue.accounts import Accounts
from loadgen.venue.engine import Exchange
from loadgen.venue.knobs import Faults
from loadgen.venue.problems import Problems

if TYPE_CHECKING:
    from loadgen.venue.rest_api import RestApi
    from loadgen.venue.ws_api import WsApi


@dataclass(eq=False)
class ServerContext:
    exchange: Exchange
    accounts: Accounts
    faults: Faults
    problems: Problems  # handler bugs, logged rate-bounded
    # Trading requests received per protocol (REST trading calls, WS order methods, FIX order
    # messages), whatever the answer: a run's totals are held against these.
    served: dict[str, int] = field(default_factory=lambda: {"rest": 0, "ws": 0, "fix": 0})
    connections: set[Any] = field(default_factory=set)  # every open connection (heartbeats)
    fix_hosts: dict[str, Any] = field(default_factory=dict)  # SenderCompID -> its FixHost
    market_data: Any = None  # marketdata.MarketData: the public book feeds
    fix_rollover: Any = None  # fix_server.Rollover: the FIX day's end (None: never)
    loop: asyncio.AbstractEventLoop | None = None  # the serving loop, once started
    rest_api: RestApi | None = None  # the APIs the servers dispatch to (made with the context)
    ws_api: WsApi | None = None
