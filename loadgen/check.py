"""`loadgen check PROFILE`: the preflight a careful operator runs before loading a venue.

For the profile's target, in order, each step one line (ok, warn or FAIL):
1. connect to every endpoint the profile needs (REST always: markets, tokens and the last
   CancelAll go over it), with the TLS handshake and the certificate shown;
2. the server's time (REST Time) and the clock skew to it;
3. the profile's pairs in the venue's AssetPairs;
4. the keys: their tier in the keys file against target.tier, each distinct key the run will
   use authenticated once (REST OpenOrders, which trades nothing), keys with orders open, keys
   whose trading counters are still warm from a recent loadgen run or check (loadgen.keyuse);
5. (full check only) one minimal order per protocol the profile uses, on the first key (its
   counter waited out first when a recent run left it warm): a post-only buy far below the
   market, seen in OpenOrders, cancelled; then a CancelAll and OpenOrders again to show
   nothing is left.
Bounded: a few requests a key and a dozen more, every request under REQUEST_TIMEOUT_S, the whole
under --max-time. Exit 0 only when every step the profile needs passed.

`loadgen run` runs steps 1-4 (quick: against its own embedded venue only the first key, whose
siblings are derived the same way) before any user starts, refuses with the failing line, and
waits out warm counters. Choices where the issue is silent:
- A step that later steps need (a connection, the server's answer, the pairs) stops the check.
- A key that had orders open before the check does not get the CancelAll (it would cancel
  what is not ours): the check's own order is cancelled by id, and the line says so.
- Clock skew is shown; above MAX_SKEW_S it is a warning (loadgen's nonces and FIX SendingTime
  come from this clock), never a failure: Kraken's limits on it are not published.
"""

from __future__ import annotations

import difflib
import json
import ssl
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loadgen import keyuse, profiles
from loadgen.keys import (
    COMP_IDS_FIELD,
    DEFAULT_SEED,
    KeysFileError,
    derive_comp_ids,
    derive_key,
    read_keys_file,
)
from loadgen.ratelimit import ADD_COST, CANCEL_PENALTY

if TYPE_CHECKING:  # the clients import gevent: loaded only where a check runs (see run.py)
    from loadgen.flow.market import Market
    from loadgen.flow.orders import LiveOrder

OK, WARN, FAIL = "ok", "warn", "FAIL"
REQUEST_TIMEOUT_S = 5.0
MAX_TIME_S = 90.0  # the whole check, by default: a warm Starter key's 60 s wait fits
ORDERS_BUDGET_S = 10.0  # what the orders and the cleanup may take, at most, after a wait
QUICK_KEYS_S = 10.0  # loadgen run: authenticating keys stops after this long (a warning then)
MAX_SKEW_S = 5.0
PROFILE_ADVICE = "give its CA as target.ca_file, or target.insecure = true to skip verification"
MAX_KEY_LINES = 3  # failing keys named one a line; the rest counted
SCHEMES = {"rest": ("http", "https"), "ws": ("ws", "wss"), "fix": ("tcp", "tls")}
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
# What the check's order adds to its key's trading counter: the add, then a cancel within 5 s
ORDER_COST = ADD_COST + CANCEL_PENALTY[0][1]


class CheckError(Exception):
    """The check cannot start (a profile or keys file that cannot be used)."""


class _Stop(Exception):
    """A step failed that the steps after it need."""


@dataclass(frozen=True)
class Line:
    step: str
    status: str  # OK, WARN, FAIL
    text: str

    def __str__(self) -> str:
        return f"  {self.status:<4}  {self.step:<11} {self.text}"


@dataclass
class Key:
    api_key: str
    secret: str
    tier: str = ""  # as the keys file says; "" when it does not
    fix_sender: str = ""  # its first SenderCompID ("" when the keys file names none)

    @property
    def short(self) -> str:
        return f"{self.api_key[:8]}..."


@dataclass
class Preflight:
    """The checks of one profile against its target; run() gives the lines."""

    prof: profiles.Profile
    endpoints: dict[str, str]
    keys: list[Key]  # the distinct keys the run will use, in the order it uses them
    tls: ssl.SSLContext | None
    results: Path  # where recent runs' key records are (the profile's output dir)
    embedded: bool = False
    quick: bool = False
    max_time: float = MAX_TIME_S
    lines: list[Line] = field(default_factory=list)
    warm_s: float = 0.0  # seconds until the keys' counters are quiet (warm_keys)
    traded: dict[str, float] = field(default_factory=dict)  # api key -> seconds until quiet
    _markets: list[Market] = field(default_factory=list)
    _open_before: dict[str, int] = field(default_factory=dict)
    _started: float = field(default_factory=time.monotonic)

    @property
    def protocols(self) -> list[str]:
        """The protocols with users, REST first and always (markets, tokens, the cleanup)."""
        return ["rest"] + [p for p in ("ws", "fix") if self.prof.users.get(p, 0) > 0]

    @property
    def failed(self) -> list[Line]:
        return [line for line in self.lines if line.status == FAIL]

    def run(self) -> list[Line]:
        steps: list[Callable[[], None]] = [
            self.connections, self.server_time, self.pairs, self.key_tiers, self.authenticate,
            self.warm_keys,
        ]  # fmt: skip
        if not self.quick:
            steps += [self.order_key_quiet, self.orders, self.cleanup]
        for step in steps:
            try:
                step()
            except _Stop:
                break
        return self.lines

    def _add(self, step: str, status: str, text: str) -> None:
        self.lines.append(Line(step, status, text))

    def _fail(self, step: str, text: str) -> None:
        self._add(step, FAIL, text)
        raise _Stop

    def _left(self) -> float:
        return self.max_time - (time.monotonic() - self._started)

    # ---- 1. connections ------------------------------------------------------------------------

    def connections(self) -> None:
        broken = False
        for proto in self.protocols:
            try:
                self._add(proto, OK, self._connect(proto, self.endpoints.get(proto, "")))
            except ConnectionError as exc:
                self._add(proto, FAIL, str(exc))
                broken = True
        if broken:
            raise _Stop

    def _connect(self, proto: str, url: str) -> str:
        from loadgen.clients import net
        from loadgen.clients.backoff import Backoff
        from loadgen.clients.tls import TlsError, TlsStream, for_scheme

        parts = urllib.parse.urlsplit(url)
        schemes = SCHEMES[proto]
        if parts.scheme not in schemes or not parts.hostname:
            shape = "HOST:PORT" if proto == "fix" else "HOST[:PORT]"
            raise ConnectionError(f"target.{proto} {url!r}: expected "
                                  f"{' or '.join(f'{s}://{shape}' for s in schemes)}")  # fmt: skip
        port = parts.port or DEFAULT_PORTS.get(parts.scheme, 0)
        t0 = time.perf_counter()
        try:
            conn = net.connect((parts.hostname, port), REQUEST_TIMEOUT_S, Backoff(),
                               for_scheme(parts.scheme, self.tls))  # fmt: skip
        except TlsError as exc:
            advice = f" ({PROFILE_ADVICE})" if exc.unverified else ""
            raise ConnectionError(f"{url}: {exc.reason}{advice}") from None
        except OSError as exc:
            raise ConnectionError(f"{url}: cannot connect: {_reason(exc)}") from None
        took = _ms(time.perf_counter() - t0)
        try:
            how = conn.describe() if isinstance(conn, TlsStream) else "plain TCP, no TLS"
            if proto == "ws":
                how += self._upgrade(conn, url, parts)
        finally:
            conn.close()
        return f"{url}: connected in {took}; {how}"

    @staticmethod
    def _upgrade(conn: Any, url: str, parts: urllib.parse.SplitResult) -> str:
        from loadgen.clients.ws import upgrade

        try:
            upgrade(conn, parts.path or "/", parts.netloc)
        except OSError as exc:  # ConnectionError is one
            hint = "" if "404" not in str(exc) else (
                " (is target.ws's path right? Kraken's is wss://ws-auth.kraken.com/v2)")  # fmt: skip
            raise ConnectionError(f"{url}: {exc}{hint}") from None
        return "; WebSocket upgrade accepted"

    # ---- 2, 3: the venue's public answers ------------------------------------------------------

    def server_time(self) -> None:
        from loadgen.clients.rest import public

        before = time.time()
        try:
            result = public(self.endpoints["rest"], "Time", self.tls, REQUEST_TIMEOUT_S)
            server = float(result["unixtime"])
        except ConnectionError as exc:
            self._fail("time", f"{exc}{_path_hint(str(exc), self.endpoints['rest'])}")
        except (TypeError, KeyError, ValueError):
            self._fail("time", f"{self.endpoints['rest']}/0/public/Time: no unixtime in the reply")
        after = time.time()
        skew = server - (before + after) / 2
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(server))
        text = (f"server time {stamp}, clock skew {skew:+.0f} s (to the second, as the venue "
                f"answers), round trip {_ms(after - before)}")  # fmt: skip
        if abs(skew) > MAX_SKEW_S:
            self._add("time", WARN, f"{text}: above {MAX_SKEW_S:g} s; loadgen's nonces and FIX "
                      "SendingTime come from this machine's clock (is NTP running?)")  # fmt: skip
        else:
            self._add("time", OK, text)

    def pairs(self) -> None:
        from loadgen.clients.rest import asset_pairs, priced_markets

        try:
            listed = asset_pairs(self.endpoints["rest"], self.tls)
        except ConnectionError as exc:
            self._fail("pairs", str(exc))
        names = list(self.prof.pairs)
        unknown = [n for n in names if n not in listed]
        if unknown:
            near = difflib.get_close_matches(unknown[0], listed, 3)
            like = f"; near {unknown[0]!r}: {', '.join(near)}" if near else ""
            count = len({info["pair_id"] for info in listed.values()})
            self._fail("pairs", f"flow.pairs: the venue has no market "
                       f"{', '.join(map(repr, unknown))} (of the {count} it lists"
                       f"{like})")  # fmt: skip
        try:
            self._markets = priced_markets(self.endpoints["rest"], listed, names, self.tls)
        except ConnectionError as exc:
            self._fail("pairs", str(exc))
        except (KeyError, ValueError) as exc:
            self._fail("pairs", f"the venue's AssetPairs or Ticker entry lacks what loadgen "
                       f"prices orders from: {exc}")  # fmt: skip
        self._add("pairs", OK, f"{', '.join(names)}: listed")

    # ---- 4. keys -------------------------------------------------------------------------------

    def key_tiers(self) -> None:
        tier = self.prof.target.tier
        wrong = [k for k in self.keys if k.tier and k.tier != tier]
        for k in wrong[:MAX_KEY_LINES]:
            self._add("keys", FAIL, f"key {k.short} is tier {k.tier!r} in the keys file, "
                      f"target.tier is {tier!r}: its rate limits would be judged by the wrong "
                      "tier's (set target.tier, or use keys of that tier)")  # fmt: skip
        if len(wrong) > MAX_KEY_LINES:
            self._add("keys", FAIL, f"and {len(wrong) - MAX_KEY_LINES} more keys not {tier!r}")

    def authenticate(self) -> None:
        keys = self.keys[:1] if self.quick and self.embedded else self.keys
        budget = min(self._left(), QUICK_KEYS_S) if self.quick else self._left()
        t0 = time.monotonic()
        bad: list[str] = []
        done = 0
        for k in keys:
            if time.monotonic() - t0 > budget:
                break
            problem, open_orders = self._open_orders(k)
            done += 1
            if problem:
                bad.append(f"key {k.short}: {problem}")
            else:
                self._open_before[k.api_key] = open_orders
        for text in bad[:MAX_KEY_LINES]:
            self._add("keys", FAIL, text)
        if len(bad) > MAX_KEY_LINES:
            self._add("keys", FAIL, f"and {len(bad) - MAX_KEY_LINES} more keys refused")
        if bad and len(bad) == done:
            raise _Stop
        took = _ms(time.monotonic() - t0)
        which = "the first key (the others are derived the same way)" if len(keys) < len(
            self.keys) and self.embedded else f"{done - len(bad)} of {len(self.keys)} keys"  # fmt: skip
        self._add("keys", OK, f"{which} authenticated (REST OpenOrders, one call each, {took})")
        if done < len(keys):
            self._add("keys", WARN, f"{len(keys) - done} keys not checked within {budget:.0f} s")
        busy = {k: n for k, n in self._open_before.items() if n}
        if busy:
            self._add("keys", WARN, f"{len(busy)} keys already have {sum(busy.values())} orders "
                      "open: they count against the open-order limit, and the run's last "
                      "CancelAll cancels them")  # fmt: skip

    def _open_orders(self, k: Key) -> tuple[str, int]:
        """(what refused the key, or "", its open orders) from one REST OpenOrders."""
        from loadgen.clients.rest import RestClient

        try:
            client = RestClient(self.endpoints["rest"], k.api_key, k.secret,
                                timeout=REQUEST_TIMEOUT_S, tls=self.tls)  # fmt: skip
        except ValueError as exc:
            return str(exc), 0
        try:
            _, errors, result, failure = client.call("OpenOrders", "")
        finally:
            client.close()
        if failure or errors:
            return failure or errors[0], 0
        opened = result.get("open") if isinstance(result, dict) else None
        return "", len(opened) if isinstance(opened, dict) else 0

    def warm_keys(self) -> None:
        if self.embedded:
            return  # a run's embedded venue is new: no counter of it is warm
        seconds, warm, where = keyuse.warm(
            self.results, self.endpoints["rest"], [k.api_key for k in self.keys]
        )
        if not warm:
            return
        self.warm_s = seconds
        self._add("keys", WARN, f"{warm} keys traded lately ({where}): their trading counters "
                  f"stay warm for up to {seconds:.0f} s more, and orders sent meanwhile may be "
                  "refused where the run's shadow counters expect none; loadgen run waits it "
                  "out")  # fmt: skip

    # ---- 5. one order per protocol, and the cleanup --------------------------------------------

    def order_key_quiet(self) -> None:
        """The orders go on the first key: warm from a recent run, its counter would refuse
        them (a false 'cannot run', as a new user found). Wait it out within --max-time, as
        `loadgen run` does; past that, say so and stop."""
        seconds, warm, _ = keyuse.warm(self.results, self.endpoints["rest"],
                                       [self.keys[0].api_key])  # fmt: skip
        if not warm:
            return
        if seconds > self._left() - ORDERS_BUDGET_S:
            self._fail("orders", f"the first key's trading counter is warm for {seconds:.0f} s "
                       "more, past --max-time: check again then, or give a longer --max-time")  # fmt: skip
            raise _Stop
        self._add("orders", OK, f"waited {seconds:.0f} s for the first key's trading counter "
                  "to be quiet before its orders")  # fmt: skip
        time.sleep(seconds)

    def orders(self) -> None:
        """Place one order per protocol, read them back in one OpenOrders (REST calls count
        against the key's REST counter: Starter's holds 15), cancel each by id."""
        key, market = self.keys[0], self._markets[0]
        placed = []
        for proto in self.protocols:
            if proto == "rest" and self.prof.users.get("rest", 0) <= 0:
                continue  # REST serves the others; it places no order of the profile's
            try:
                placed.append((proto, *self._place(proto, key, market)))
            except ConnectionError as exc:
                self._add(f"{proto} order", FAIL, str(exc))
        try:
            listed = self._listed(key) if placed else set()
        except ConnectionError as exc:
            self._add("orders", FAIL, f"OpenOrders after placing: {exc}")
            listed = None
        for proto, client, order, what, added in placed:
            try:
                seen = listed is None or order.txid in listed
                cancelled = client.cancel(order)
            finally:
                client.close()
            self.traded[key.api_key] = self.traded.get(key.api_key, 0.0) + ORDER_COST
            text = f"{what}: placed as {order.txid} in {_ms(added.latency_us / 1e6)}"
            if not cancelled.ok:
                self._add(f"{proto} order", FAIL, f"{text}, but the cancel failed: "
                          f"{cancelled.error or cancelled.outcome}")  # fmt: skip
            elif not seen:
                self._add(f"{proto} order", FAIL, f"{text}, but OpenOrders does not list it")
            else:
                self._add(f"{proto} order", OK, f"{text}, listed by OpenOrders, cancelled in "
                          f"{_ms(cancelled.latency_us / 1e6)}")  # fmt: skip

    def _place(self, proto: str, key: Key, m: Market) -> tuple[Any, LiveOrder, str, Any]:
        """(client, order, what it is, the add's outcome); ConnectionError naming the cause."""
        from loadgen.flow.orders import LiveOrder

        client = self._client(proto, key)
        price = max(1, int(m.mid * 0.5 * 10**m.price_decimals))  # far below: it rests
        order = LiveOrder(_cl_ord_id(), m, "buy", price, m.min_lots, time.monotonic(),
                          post_only=True)  # fmt: skip
        what = f"post-only buy {m.qty_text(order.qty)} {m.name} @ {m.price_text(order.price)}"
        added = client.add(order)
        if not added.ok:
            client.close()
            raise ConnectionError(f"{what}: {added.error or added.outcome}")
        order.txid = str(added.detail or "")
        return client, order, what, added

    def _client(self, proto: str, key: Key) -> Any:
        e = self.endpoints
        if proto == "rest":
            from loadgen.clients.rest import RestClient

            return RestClient(e["rest"], key.api_key, key.secret, REQUEST_TIMEOUT_S, self.tls)
        if proto == "ws":
            from loadgen.clients.ws import connect_with_token

            return connect_with_token(e["rest"], e["ws"], key.api_key, key.secret,
                                      REQUEST_TIMEOUT_S, tls=self.tls)  # fmt: skip
        from loadgen.clients.fix import FixClient

        return FixClient(e["fix"], key.api_key, key.secret, key.fix_sender, _cl_ord_id,
                         REQUEST_TIMEOUT_S, tls=self.tls)  # fmt: skip

    def _listed(self, key: Key) -> set[str]:
        from loadgen.clients.rest import RestClient

        client = RestClient(self.endpoints["rest"], key.api_key, key.secret, REQUEST_TIMEOUT_S,
                            self.tls)  # fmt: skip
        try:
            _, errors, result, failure = client.call("OpenOrders", "")
        finally:
            client.close()
        if failure or errors:
            raise ConnectionError(failure or errors[0])
        return set((result or {}).get("open") or {}) if isinstance(result, dict) else set()

    def cleanup(self) -> None:
        from loadgen.clients.rest import RestClient

        key = self.keys[0]
        before = self._open_before.get(key.api_key, 0)
        if before:
            self._add("cleanup", OK, f"CancelAll not sent: key {key.short} had {before} orders "
                      "open before the check (the check's own were cancelled by id)")  # fmt: skip
            return
        client = RestClient(self.endpoints["rest"], key.api_key, key.secret, REQUEST_TIMEOUT_S,
                            self.tls)  # fmt: skip
        try:
            done = client.cancel_all()
            problem, left = self._open_orders(key)
        finally:
            client.close()
        if not done.ok:
            self._add("cleanup", FAIL, f"CancelAll: {done.error or done.outcome}")
        elif problem or left:
            self._add("cleanup", FAIL, f"after CancelAll: {problem or f'{left} orders still open'}")
        else:
            self._add("cleanup", OK, f"CancelAll in {_ms(done.latency_us / 1e6)}; OpenOrders: "
                      "none open")  # fmt: skip

    def quiet_after(self) -> dict[str, float]:
        """Seconds until each key this check traded with is quiet (for keyuse.write)."""
        tier = self.prof.target.tier
        return {k: keyuse.quiet_after(tier, level) for k, level in self.traded.items()}


# ---- building one from a profile -----------------------------------------------------------------


def keys_for(prof: profiles.Profile, workers: int = 0, users: int | None = None) -> list[Key]:
    """The distinct keys a run of the profile uses, in the order it gives them to users: the
    first peak users (plus one per worker: each worker starts its own count) of the keys file,
    or of the keys the embedded venue derives."""
    from loadgen.keys import RUN_KEYS

    wanted = max(1, prof.peak_users if users is None else users) + max(0, workers)
    t = prof.target
    if t.venue == "embedded":
        derived = [derive_key(DEFAULT_SEED, i) for i in range(min(wanted, RUN_KEYS))]
        return [Key(k, s, t.tier, derive_comp_ids(k)[0]) for k, s in derived]
    try:
        entries = read_keys_file(t.keys_file)
    except KeysFileError as exc:
        raise CheckError(str(exc)) from None
    seen: dict[str, Key] = {}
    for entry in entries[:wanted]:
        comp_ids = entry.get(COMP_IDS_FIELD) or [""]
        seen.setdefault(entry["api_key"], Key(entry["api_key"], entry["secret"],
                                              str(entry.get("tier") or ""), comp_ids[0]))  # fmt: skip
    return list(seen.values())


def tls_for(prof: profiles.Profile, ca_file: str = "") -> ssl.SSLContext:
    """The context the run's traders verify with (run.locust_command passes the same)."""
    from loadgen.clients.tls import context

    return context(ca_file or prof.target.ca_file, prof.target.insecure)


def save(results: Path, prof: profiles.Profile, pre: Preflight) -> Path:
    """check-<time>/check.json with every line, and the record of the keys it traded with."""
    out = results / f"check-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    data = {
        "profile": prof.name,
        "profile_path": prof.path,
        "target": {p: pre.endpoints.get(p, "") for p in ("rest", "ws", "fix")},
        "ok": not pre.failed,
        "lines": [{"step": x.step, "status": x.status, "text": x.text} for x in pre.lines],
    }
    tmp = out / "check.json.tmp"
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(out / "check.json")
    keyuse.write(out, pre.endpoints["rest"], pre.quiet_after())
    return out


# ---- the command ---------------------------------------------------------------------------------


def add_args(p: Any) -> None:
    p.add_argument("profile", help="the profile to check, e.g. profiles/my-venue.toml")
    p.add_argument("--max-time", type=float, default=MAX_TIME_S,
                   help=f"seconds at most for the whole check (default {MAX_TIME_S:g})")  # fmt: skip
    p.add_argument("--results", help="where check-<time>/ goes (default: the profile's output.dir)")


def main(args: Any) -> int:
    import sys

    from loadgen.run import start_target

    try:
        prof = profiles.load(args.profile)
        keys = keys_for(prof)
    except (profiles.ProfileError, CheckError) as exc:
        print(f"loadgen check: {exc}", file=sys.stderr)
        return 2
    if not 0 < args.max_time <= 3600:
        print(f"loadgen check: --max-time {args.max_time:g}: give 0 < seconds <= 3600",
              file=sys.stderr)  # fmt: skip
        return 2
    results = Path(args.results or prof.output_dir)
    venue, endpoints, _ = start_target(prof, pin=False)
    embedded = venue is not None
    where = "the embedded venue" if embedded else endpoints["rest"]
    print(f"loadgen check: {prof.name} against {where}", flush=True)
    try:
        pre = Preflight(prof, endpoints, keys, tls_for(prof, endpoints.get("ca_file") or ""),
                        results, embedded=embedded, max_time=args.max_time)  # fmt: skip
        for line in pre.run():
            print(line, flush=True)
    finally:
        if venue is not None:
            venue.stop()
    out = save(results, prof, pre)
    if pre.failed:
        print(f"loadgen check: {prof.name} cannot run: {pre.failed[0].text}", file=sys.stderr)
        print(f"loadgen check: {out / 'check.json'}")
        return 1
    print(f"loadgen check: {out / 'check.json'}")
    print(f"loadgen check: {prof.name} can run"
          + (" (warnings above)" if any(x.status == WARN for x in pre.lines) else ""))  # fmt: skip
    return 0


# ---- loadgen run's preflight, in a process of its own ---------------------------------------------


def quick_main(spec_json: str) -> int:
    """`python -m loadgen.check SPEC`: the quick steps for `loadgen run`, which passes the run's
    profile, peak users, workers, endpoints and folders as JSON. In a process of its own: the
    clients load gevent, and `loadgen run`'s process waits on Locust with subprocess, which a
    gevent hub's child watcher must never race. Prints what is not ok, writes every line to
    spec["out"], waits out warm counters; exit 0 go, 1 refused, 2 unusable input."""
    import sys

    spec = json.loads(spec_json)
    try:
        prof = profiles.load(spec["profile"])
        keys = keys_for(prof, spec["workers"], spec["users"])
    except (profiles.ProfileError, CheckError) as exc:
        print(f"loadgen run: refused before load: {exc}", file=sys.stderr)
        return 2
    endpoints = spec["endpoints"]
    pre = Preflight(prof, endpoints, keys, tls_for(prof, endpoints.get("ca_file") or ""),
                    Path(spec["results"]), embedded=spec["embedded"], quick=True)  # fmt: skip
    started = time.monotonic()
    for line in pre.run():
        if line.status != OK:
            print(line, flush=True)
    out = Path(spec["out"])
    out.write_text(json.dumps({"lines": [vars(x) for x in pre.lines], "warm_s": pre.warm_s}))
    for line in pre.failed:
        print(f"loadgen run: refused before load: {line.text}", file=sys.stderr)
    if pre.failed:
        print("loadgen run: `loadgen check` on the profile shows every step", file=sys.stderr)
        return 1
    took = (time.monotonic() - started) * 1000
    print(f"loadgen run: preflight passed ({len(pre.lines)} checks, {took:.0f} ms)", flush=True)
    if pre.warm_s > 0:
        print(f"loadgen run: waiting {pre.warm_s:.0f} s for the keys' trading counters to decay "
              "(warm from a recent run; give other keys to start at once)", flush=True)  # fmt: skip
        time.sleep(pre.warm_s)
    return 0


# ---- helpers -------------------------------------------------------------------------------------


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def _reason(exc: OSError) -> str:
    if isinstance(exc, TimeoutError) or "timed out" in str(exc):
        return f"no answer within {REQUEST_TIMEOUT_S:g} s"
    return exc.strerror or str(exc) or exc.__class__.__name__


def _path_hint(message: str, rest_url: str) -> str:
    """After an HTTP 404 on /0/public/Time: where the path came from."""
    path = urllib.parse.urlsplit(rest_url).path.rstrip("/")
    if "HTTP 404" not in message:
        return ""
    if path:
        return (f" (target.rest's path {path!r} goes before Kraken's /0/public/...; Kraken's "
                "REST URL is https://api.kraken.com, with no path)")  # fmt: skip
    return " (is target.rest the venue's REST address?)"


_last_id = 0


def _cl_ord_id() -> str:
    """An ever-increasing number of up to 18 digits (Kraken's FIX ClOrdID; fine for REST, WS)."""
    global _last_id
    _last_id = max(_last_id + 1, time.time_ns() // 1000)
    return str(_last_id)


if __name__ == "__main__":
    import sys

    sys.exit(quick_main(sys.argv[1]))
