"""API keys, secrets, nonces, WebSocket tokens and per-key rate-limit state.

Test keys are deterministic (derived from a seed and an index), so a test or a trader can
recreate them, and they are also written to a keys file (mode 0600) for tools that prefer to
read them. Secrets never go to stdout or logs: `Account.__repr__` leaves them out.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from collections import OrderedDict, deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from loadgen import ratelimit
from loadgen.keys import COMP_IDS_FIELD, DEFAULT_SEED, derive_comp_ids, derive_key
from loadgen.protocol import rest
from loadgen.ratelimit import Counter, Tier
from loadgen.venue.pairs import BALANCE_DECIMALS

if TYPE_CHECKING:
    from loadgen.venue.book import Order

DEFAULT_KEY_COUNT: Final = 100
TOKEN_TTL_S: Final = 900.0  # GetWebSocketsToken: "use within 15 minutes" (facts 4.1)
# an order worth more (in quote units) is "Insufficient funds"
DEFAULT_MAX_NOTIONAL: Final = 10_000_000.0
# Every test key starts with this much of every asset (balances at BALANCE_DECIMALS): enough
# that an hour of mixed flow never runs a key dry, small enough that a deliberately large
# order can (Insufficient funds).
FILLS_KEPT: Final = 50  # the executions snapshot's snap_trades: "last 50 fills" (facts 10.3)
DEFAULT_BALANCE: Final = 1_000_000_000 * 10**BALANCE_DECIMALS


class Account:
    """One API key: its secret, tier, nonces, counters, open orders and event listeners."""

    def __init__(self, api_key: str, secret_b64: str, tier: Tier, index: int) -> None:
        self.api_key = api_key
        self.secret = base64.b64decode(secret_b64)
        self.secret_b64 = secret_b64
        self.signer = rest.keyed(self.secret)  # API-Sign checks copy this, skipping key set-up
        self.tier = tier
        self.index = index
        self.fix_comp_ids = derive_comp_ids(api_key)  # its FIX SenderCompIDs (keys.py)
        self.last_nonce = 0
        self.last_fix_nonce = 0
        self.rest_counter: Counter = ratelimit.rest_counter(tier)
        self.trade_counters: dict[str, Counter] = {}
        self.orders: dict[str, Order] = {}  # open orders by txid
        self.by_cl_ord_id: dict[str, Order] = {}
        self.open_per_pair: dict[str, int] = {}
        self.listeners: list[Any] = []  # WS connections subscribed to executions
        self.max_notional = DEFAULT_MAX_NOTIONAL
        self.dead_man: Any = None  # CancelAllOrdersAfter timer handle
        self.dead_man_at = 0.0
        self.start_balance = DEFAULT_BALANCE
        self.balances: dict[str, int] = {}  # asset ID -> units; untouched assets start full
        # closed orders by txid, oldest first (bounded): an OrderedDict, whose popitem(last=False)
        # is O(1) where a dict's del d[next(iter(d))] walks the holes its deletions left
        # (0.75 us against 0.22 us a closed order at 1,000 kept, measured)
        self.closed: OrderedDict[str, Order] = OrderedDict()
        self.fills: deque[Any] = deque(maxlen=FILLS_KEPT)  # the last trade events, both sides

    def __repr__(self) -> str:  # never the secret
        return f"Account({self.api_key[:10]}..., tier={self.tier.name})"

    def balance(self, asset_id: str) -> int:
        return self.balances.get(asset_id, self.start_balance)

    def trade_counter(self, pair: str) -> Counter:
        counter = self.trade_counters.get(pair)
        if counter is None:
            counter = self.trade_counters[pair] = ratelimit.trading_counter(self.tier)
        return counter


@dataclass(slots=True)
class Token:
    account: Account
    expires: float  # wall-clock: to be first used by then (15 min after it was issued)
    holders: int = 0  # live connections that used it: while any lives it stays valid (facts 4.1)


TOKEN_SWEEP_AT: Final = 4096  # issued tokens past this: expired, unheld ones are dropped


class Accounts:
    def __init__(self, accounts: list[Account], seed: str) -> None:
        self.seed = seed
        self.by_key = {a.api_key: a for a in accounts}
        self.all = accounts
        self._sweep_at = TOKEN_SWEEP_AT
        self.tokens: dict[str, Token] = {}

    @classmethod
    def generate(cls, count: int, tiers: list[str] | str, seed: str = DEFAULT_SEED) -> Accounts:
        """`count` test keys; `tiers` is one tier name for all or a list cycled over the keys."""
        names = [tiers] if isinstance(tiers, str) else tiers
        accounts = []
        for i in range(count):
            tier = ratelimit.TIERS[names[i % len(names)]]
            api_key, secret_b64 = derive_key(seed, i)
            accounts.append(Account(api_key, secret_b64, tier, i))
        return cls(accounts, seed)

    def get(self, api_key: str) -> Account | None:
        return self.by_key.get(api_key)

    def issue_token(self, account: Account, now: float) -> str:
        if len(self.tokens) >= self._sweep_at:  # memory bounded by live tokens, not history
            for stale in [t for t, e in self.tokens.items() if e.expires < now and not e.holders]:
                del self.tokens[stale]
            # the next sweep when the table has doubled: amortized O(1) per token issued
            self._sweep_at = max(TOKEN_SWEEP_AT, 2 * len(self.tokens))
        token = secrets.token_urlsafe(32)
        self.tokens[token] = Token(account, now + TOKEN_TTL_S)
        return token

    def by_token(self, token: str, now: float) -> Account | None:
        """The account of a token still valid: within its 15 minutes, or held by a connection."""
        entry = self.tokens.get(token)
        if entry is None:
            return None
        if entry.expires < now and not entry.holders:
            del self.tokens[token]
            return None
        return entry.account

    def hold_token(self, token: str) -> None:
        """A live connection used the token: it stays valid until `release_token`."""
        entry = self.tokens.get(token)
        if entry is not None:
            entry.holders += 1

    def release_token(self, token: str, now: float) -> None:
        """The connection is gone; the token has its 15 minutes again, then expires."""
        entry = self.tokens.get(token)
        if entry is not None:
            entry.holders -= 1
            entry.expires = max(entry.expires, now + TOKEN_TTL_S)

    def write_keys_file(
        self, path: Path, endpoints: dict[str, Any], ca_file: Path | None = None
    ) -> None:
        """Keys, secrets and tiers for clients: written atomically, readable by the owner only.
        With TLS, `ca_file` is the CA that verifies the endpoints."""
        data = {
            "seed": self.seed,
            "endpoints": endpoints,
            **({"ca_file": str(ca_file)} if ca_file else {}),
            "keys": [
                {
                    "api_key": a.api_key,
                    "secret": a.secret_b64,
                    "tier": a.tier.name,
                    "index": a.index,
                    COMP_IDS_FIELD: a.fix_comp_ids,
                }
                for a in self.all
            ],
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # a stale .tmp from an earlier run keeps its own mode otherwise
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=1)
        os.replace(tmp, path)
