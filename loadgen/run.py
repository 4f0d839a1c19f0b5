"""`loadgen run PROFILE`: venue (when embedded), Locust, a live line, the report, the verdict.

The parent of everything and the owner of results/<timestamp>-<profile>/: it writes run.json
(the profile as run, overrides applied) before Locust starts and completes it after (generator
CPU, the venue's last words), then writes summary.json, report.html and junit.xml. Locust runs
as a child (`locustfiles/profile.py`), headless unless --ui, with --processes N for --workers N,
or as the master of workers on other machines (--master; `loadgen worker` on each of them);
this module imports neither gevent nor Locust.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from loadgen import profiles
from loadgen.keys import MAX_PROCESSES, RUN_KEYS
from loadgen.metrics.recorder import Window, merge
from loadgen.metrics.store import (
    EXIT_RESULTS_UNWRITABLE,
    MIN_FREE_BYTES,
    RUN_META,
    WINDOWS,
    ResultsWriteError,
    check_writable,
    complete_lines,
    free_bytes,
    write_json,
)
from loadgen.procs import die_with_parent
from loadgen.report import analysis
from loadgen.report.verdict import BAD_INPUT, EXIT_CODES, INVALID
from loadgen.venue.knobs import misset_flags
from loadgen.venue.process import VenueProcess, core_split
from loadgen.worker import MASTER_PORT, master_address

ROOT = Path(__file__).resolve().parents[1]
LOCUSTFILE = ROOT / "locustfiles" / "profile.py"
LIVE_EVERY_S = 5.0  # a live line this often
WATCH_EVERY_S = 0.5  # the embedded venue is checked this often: a dead one stops the run
UI_LINGER_S = 30  # --ui: seconds the web UI stays up after the run, to look at it
STOP_GRACE_S = 60  # after an interrupt: Locust's users cancel what they left, then it is killed
PREFLIGHT_TIMEOUT_S = 180  # connects, keys (10 s at most) and a wait for warm counters (60 s)
WAIT_WORKERS_S = 120  # --master: workers have this long to join before the run gives up
GAVE_UP = "Gave up waiting for workers to connect"  # Locust's line when they did not
REAP_S = 5  # after Locust exits: its worker processes get this long to go before a SIGKILL
# Every run ends by itself: Locust is stopped once the profile's duration has passed twice over
# plus two minutes (start-up, spawning, the last cancels and, with --ui, the linger fit easily)
DEADLINE_FACTOR = 2.0
DEADLINE_GRACE_S = 120.0


class Interrupted(Exception):
    """SIGINT or SIGTERM reached `loadgen run`: the run is stopped, and is no measurement."""


def _positive(kind: type) -> Any:
    """An argparse type: a finite number above 0 (nan, inf and negatives are bad input)."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value) or value <= 0:
            raise argparse.ArgumentTypeError(f"must be a finite number above 0, got {text!r}")
        return value

    return parse


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("profile", help="a profile, e.g. profiles/smoke.toml")
    p.add_argument("--duration", help="total run time, e.g. 10m (stages scaled to fit)")
    p.add_argument("--users", type=_positive(int), help="peak users (stages scaled to fit)")
    p.add_argument(
        "--rate",
        type=_positive(float),
        help="peak open-loop requests/s, above 0 (never above max_rate)",
    )
    p.add_argument("--loop", choices=["closed", "open"], help="override the profile's loop model")
    p.add_argument(
        "--workers",
        type=int,
        default=0,
        help=f"Locust worker processes, 0 to {MAX_PROCESSES} (0 = one local process)",
    )
    dist = p.add_argument_group(
        "across machines",
        "Locust's distributed mode: this process is the master; workers on "
        "other machines join it with `loadgen worker --master-host THIS_HOST`",
    )
    dist.add_argument(
        "--master",
        action="store_true",
        help="run as the master of workers on other machines; results are written here only",
    )
    dist.add_argument(
        "--expect-workers",
        type=_positive(int),
        default=1,
        metavar="N",
        help="--master: start the load once N workers have joined (default 1)",
    )
    dist.add_argument(
        "--master-bind",
        type=master_address,
        default=("0.0.0.0", MASTER_PORT),
        metavar="HOST:PORT",
        help=f"--master: the address workers connect to (default 0.0.0.0:{MASTER_PORT}, "
        "Locust's port on every interface)",
    )
    dist.add_argument(
        "--wait-workers",
        type=_positive(int),  # Locust's --expect-workers-max-wait takes whole seconds
        default=WAIT_WORKERS_S,
        metavar="SECONDS",
        help=f"--master: give up, an invalid run, when fewer than N workers joined by then "
        f"(default {WAIT_WORKERS_S:g})",
    )
    p.add_argument(
        "--ui",
        action="store_true",
        help=f"Locust's web UI on :8089, running the profile's shape at once; it stays up "
        f"{UI_LINGER_S} s after the run ends",
    )
    p.add_argument("--results", help="results folder (default: the profile's output.dir)")
    p.add_argument(
        "--no-pin",
        action="store_true",
        help="let the OS place the embedded venue and Locust on all cores (default: the venue "
        "gets the last core, Locust the others, when there are two or more)",
    )


def main(args: argparse.Namespace) -> int:
    try:
        prof = profiles.load(args.profile)
        duration = _duration(args.duration) if args.duration else None
        prof = prof.overridden(duration, args.users, args.rate, args.loop)
    except (profiles.ProfileError, ValueError) as exc:
        print(f"loadgen run: {exc}", file=sys.stderr)
        return EXIT_CODES[BAD_INPUT]
    if not 0 <= args.workers <= MAX_PROCESSES:
        print(
            f"loadgen run: --workers {args.workers}: give 0 (one local process) to "
            f"{MAX_PROCESSES} worker processes",
            file=sys.stderr,
        )
        return EXIT_CODES[BAD_INPUT]
    if args.master and (args.workers or args.ui):
        print("loadgen run: --master runs workers on other machines; it takes neither "
              "--workers (local ones) nor --ui", file=sys.stderr)  # fmt: skip
        return EXIT_CODES[BAD_INPUT]
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_dir = Path(args.results or prof.output_dir) / f"{stamp}-{prof.name}"
    meta = run_meta(prof, args)
    try:
        check_writable(run_dir)
        write_json(run_dir / RUN_META, meta)
    except ResultsWriteError as exc:
        print(f"loadgen run: {exc}", file=sys.stderr)
        return EXIT_CODES[BAD_INPUT]
    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGTERM, signal.SIGHUP)}
    venue = None
    try:
        venue, endpoints, keys_file = start_target(
            prof, pin=not getattr(args, "no_pin", False), log_dir=run_dir
        )
        refused = preflight(prof, endpoints, venue is not None, processes(args), run_dir)
        if refused:
            meta.update(finished=time.time(), refused=refused)
            write_json(run_dir / RUN_META, meta)
            return EXIT_CODES[BAD_INPUT]
        print(
            f"loadgen run: {prof.name}, {prof.loop} loop, {prof.duration:.0f} s -> {run_dir}",
            flush=True,
        )
        if args.master:
            host, port = args.master_bind
            print(f"loadgen run: master on {host}:{port}: waiting up to {args.wait_workers:g} s "
                  f"for {args.expect_workers} worker(s); on each worker machine: loadgen worker "
                  f"--master-host THIS_HOST:{port}", flush=True)  # fmt: skip
        outcome = run_locust(prof, args, run_dir, endpoints, keys_file, venue)
    except (KeyboardInterrupt, Interrupted) as exc:  # before Locust ran: nothing to report
        print(f"loadgen run: interrupted ({exc or 'SIGINT'}) while starting", file=sys.stderr)
        return EXIT_CODES[INVALID]
    finally:
        last_words = _stop_venue(venue, meta)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    meta.update(finished=time.time(), venue=last_words, **outcome)
    for line in last_words:
        print(f"  {line}")
    try:
        if outcome.get("locust_exit") == EXIT_RESULTS_UNWRITABLE:
            raise ResultsWriteError(run_dir, OSError(_disk_problem(run_dir)))
        write_json(run_dir / RUN_META, meta)
        return report(run_dir, prof)
    except ResultsWriteError as exc:
        print(f"loadgen run: invalid measurement: {exc}; the run was stopped and its orders "
              "cancelled, and what it measured is incomplete", file=sys.stderr)  # fmt: skip
        return EXIT_CODES[INVALID]


def _master(args: argparse.Namespace) -> bool:
    """--master (callers that build their own Namespace may leave it out)."""
    return bool(getattr(args, "master", False))


def processes(args: argparse.Namespace) -> int:
    """Worker processes the run asks for: local ones (--workers), or --master's expected."""
    return args.expect_workers if _master(args) else args.workers


def preflight(prof: profiles.Profile, endpoints: dict[str, str], embedded: bool,
              workers: int, run_dir: Path) -> list[str]:  # fmt: skip
    """loadgen check's quick steps before any user starts, in a child (loadgen.check.quick_main:
    this process never loads gevent); what refuses the run, one line each (empty: go on).
    Warm trading counters are waited out there; preflight.json in run_dir has every line."""
    out = run_dir / "preflight.json"
    spec = {"profile": prof.path, "users": prof.peak_users, "workers": workers,
            "endpoints": endpoints, "embedded": embedded, "results": str(run_dir.parent),
            "out": str(out)}  # fmt: skip
    cmd = [sys.executable, "-m", "loadgen.check", json.dumps(spec)]
    try:
        code = subprocess.run(cmd, timeout=PREFLIGHT_TIMEOUT_S, check=False).returncode
    except subprocess.TimeoutExpired:
        return [f"the preflight took over {PREFLIGHT_TIMEOUT_S} s"]
    if code == 0:
        return []
    try:
        lines = json.loads(out.read_text())["lines"]
    except (OSError, ValueError, KeyError):
        return [f"the preflight exited {code} (see above)"]
    return [x["text"] for x in lines if x["status"] == "FAIL"] or [f"the preflight exited {code}"]


def _disk_problem(run_dir: Path) -> str:
    """Why Locust could not write run_dir, as the OS would say it now."""
    try:
        free = free_bytes(run_dir)
    except OSError as exc:
        return exc.strerror or str(exc)
    if free < MIN_FREE_BYTES:
        return f"No space left on device ({free // 1024} KiB free)"
    return "Locust could not write there (see locust.log)"


def _duration(text: str) -> float:
    try:
        return profiles.parse_duration(text)
    except ValueError as exc:
        raise ValueError(f"--duration: {exc}") from None


def _stop_venue(venue: VenueProcess | None, meta: dict[str, Any]) -> list[str]:
    """Stop the embedded venue (a signal meanwhile does not cut this short); its last words.
    A venue that had died on its own is named in meta."""
    if venue is None:
        return []
    if venue.proc.poll() is not None:
        meta.setdefault("venue_lost", _venue_died(venue, "during the run"))
    masked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        return venue.stop()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, masked)


def _venue_died(venue: VenueProcess, when: str) -> str:
    return f"the embedded venue exited (code {venue.proc.returncode}) {when}"


def _on_signal(signum: int, frame: Any) -> None:
    raise Interrupted(signal.Signals(signum).name)


def run_meta(prof: profiles.Profile, args: argparse.Namespace) -> dict[str, Any]:
    slo = dataclasses.asdict(prof.slo)
    return {
        "profile": prof.name,
        "profile_path": prof.path,
        "description": prof.description,
        "loop": prof.loop,
        "max_rate": prof.max_rate,
        "target": prof.target.venue,
        "workers": processes(args),
        "master": _master_meta(args),
        "pinned": not getattr(args, "no_pin", False),
        "stages": [dataclasses.asdict(s) for s in prof.stages],
        "slo": slo,
        "command": " ".join(sys.argv),
        "metadata": metadata(prof, args),
    }


def _master_meta(args: argparse.Namespace) -> dict[str, Any] | None:
    if not _master(args):
        return None
    host, port = args.master_bind
    return {"bind": f"{host}:{port}", "expect_workers": args.expect_workers,
            "wait_workers_s": args.wait_workers}  # fmt: skip


def metadata(prof: profiles.Profile, args: argparse.Namespace) -> dict[str, Any]:
    """What a reader needs to compare this run with another: versions, machine, knobs."""
    from importlib.metadata import PackageNotFoundError, version

    def ver(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "?"

    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, check=False, timeout=10,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):  # no git here: an installed copy
        commit = ""
    knobs = {k: v for k, v in dataclasses.asdict(prof.target).items() if k not in ("keys_file",)}
    return {
        "loadgen": ver("loadgen"),
        "commit": commit or "?",
        "python": platform.python_version(),
        "locust": ver("locust"),
        "host": platform.node(),
        "cores": os.cpu_count() or 0,
        "workers": processes(args),
        "target": knobs,
        "profile_sha256": hashlib.sha256(Path(prof.path).read_bytes()).hexdigest()[:16],
    }


def start_target(
    prof: profiles.Profile, pin: bool = True, log_dir: Path | None = None
) -> tuple[Any, dict[str, str], str]:
    """(venue process or None, endpoints, keys file) for the profile's target; an embedded
    venue logs to venue.log in log_dir (the run's folder)."""
    t = prof.target
    if t.venue == "url":
        urls = {"rest": t.rest, "ws": t.ws, "fix": t.fix, "ws_public": t.ws_public}
        return None, {**urls, "ca_file": t.ca_file}, t.keys_file
    flags = ["--keys", str(RUN_KEYS), "--tier", t.tier, "--pairs", str(t.pairs)]
    for spec in t.latency:
        flags += ["--latency", spec]
    flags += ["--stall-every", str(t.stall_every), "--stall-for", str(t.stall_for)]
    flags += ["--unavailable", str(t.unavailable), "--drop", str(t.drop)]
    flags += ["--latency-per-krps", str(t.latency_per_krps)]
    flags += misset_flags(t.limit_threshold, t.limit_decay, t.cancel_penalty)
    flags += ["--tls"] if t.tls else []
    flags += ["--host", t.bind] + (["--allow-host", t.bind] if t.bind in t.allow_hosts else [])
    split = core_split() if pin else None
    venue = VenueProcess(*flags, cpu=split[1] if split else None, log_dir=log_dir)
    return venue, {**venue.endpoints, "ca_file": t.ca_file or venue.ca_file}, ""


def locust_command(
    prof: profiles.Profile, args: argparse.Namespace, run_dir: Path, e: dict[str, str], keys: str
) -> list[str]:
    cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--host", e["rest"]]
    cmd += ["--ws-url", e.get("ws", ""), "--fix-url", e.get("fix", "")]
    cmd += ["--pairs", prof.pairs_spec(), "--cross-share", str(prof.cross_share)]
    cmd += ["--tier", prof.target.tier, "--flow-seed", str(prof.seed)]
    if prof.stay_under:
        cmd += ["--stay-under"]
    if prof.pipeline > 1:
        cmd += ["--pipeline", str(prof.pipeline)]
    if prof.mix:
        cmd += ["--order-mix", ",".join(f"{k}:{v:g}" for k, v in prof.mix.items())]
    if prof.order_types:
        cmd += ["--order-types", ",".join(f"{k}:{v:g}" for k, v in prof.order_types.items())]
    if prof.users.get("md"):
        cmd += ["--md-channels", ",".join(prof.md_channels), "--md-depth", str(prof.md_depth)]
        cmd += ["--md-url", e.get("ws_public", "")]
    if keys:
        cmd += ["--keys-file", keys]
    if e.get("ca_file"):
        cmd += ["--ca-file", e["ca_file"]]
    if prof.target.insecure:
        cmd += ["--insecure"]
    for host in prof.target.allow_hosts:  # the traders hold every URL to the same rule
        cmd += ["--allow-host", host]
    cmd += ["--loop", prof.loop, "--max-rate", str(prof.max_rate), "--results-dir", str(run_dir)]
    cmd += ["--csv", str(run_dir / "locust"), "--html", str(run_dir / "locust.html")]
    if _master(args):
        host, port = args.master_bind
        cmd += ["--master", "--master-bind-host", host, "--master-bind-port", str(port)]
        cmd += ["--expect-workers", str(args.expect_workers)]
        cmd += ["--expect-workers-max-wait", str(args.wait_workers)]
    elif args.workers:
        # The master on loopback and a free port, not Locust's fixed 5557 on every interface:
        # two runs at once, or anything else on 5557, no longer collide (issue 13).
        port = str(free_port())
        cmd += ["--processes", str(args.workers), "--master-bind-host", "127.0.0.1"]
        cmd += ["--master-bind-port", port, "--master-host", "127.0.0.1", "--master-port", port]
    # --ui: the web UI starts the shape at once and stays up UI_LINGER_S after it ends
    cmd += (
        ["--autostart", "--autoquit", str(UI_LINGER_S)]
        if args.ui
        else ["--headless", "--only-summary"]
    )
    cmd += [cls for cls, p in USER_CLASSES if prof.users.get(p, 0.0) > 0]
    return cmd


# the locustfile's user classes and the profile's [users] weight each takes
USER_CLASSES = (("RestTrader", "rest"), ("WsTrader", "ws"), ("FixTrader", "fix"),
                ("MarketDataUser", "md"))  # fmt: skip


def _locust_child() -> None:
    """In Locust's process before exec: it dies with this one (a SIGKILLed `loadgen run` leaves
    no Locust behind), and it hears SIGINT, the stop `_stop` sends, even when this process was
    started with SIGINT ignored, as every background job of a script is (POSIX): a Python
    started so never installs its KeyboardInterrupt handler, and a soak stopped that way ran on
    for its whole grace and left 746 orders open (issue 13)."""
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def free_port() -> int:
    """A TCP port free on loopback now (the OS picks it; Locust binds it a moment later)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_locust(
    prof: profiles.Profile,
    args: argparse.Namespace,
    run_dir: Path,
    e: dict[str, str],
    keys: str,
    venue: VenueProcess | None = None,
) -> dict[str, Any]:
    """Run Locust to the end, printing a live line; what run.json records of it: its exit code,
    its CPU seconds, and what stopped it early (an interrupt, the venue's death).

    Locust runs in a session of its own, so a Ctrl-C at the terminal reaches only this process,
    which passes it on to the Locust master (its workers are told by the master); when Locust
    exits, whatever is left of its process group (workers) is ended, so nothing outlives a run.
    """
    env = dict(os.environ, LOADGEN_PROFILE=prof.path, LOADGEN_PROFILE_RUN=str(run_dir / RUN_META))
    cmd = locust_command(prof, args, run_dir, e, keys)
    split = None if getattr(args, "no_pin", False) else core_split()
    if split and prof.target.venue == "embedded":
        cmd = ["taskset", "-c", ",".join(map(str, split[0])), *cmd]  # the venue has the last
    before = os.times()
    started = time.monotonic()
    out: dict[str, Any] = {}
    log = open(run_dir / "locust.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        preexec_fn=_locust_child,
    )  # fmt: skip
    live = LiveLine(run_dir / WINDOWS, prof.duration)
    next_line = started + LIVE_EVERY_S
    deadline = started + prof.duration * DEADLINE_FACTOR + DEADLINE_GRACE_S
    if _master(args):  # the workers may take that long to join first
        deadline += args.wait_workers
    try:
        while proc.poll() is None:
            if time.monotonic() > deadline:
                raise Interrupted(f"the run's deadline ({deadline - started:.0f} s)")
            try:
                proc.wait(timeout=WATCH_EVERY_S)
            except subprocess.TimeoutExpired:
                if time.monotonic() >= next_line:
                    next_line += LIVE_EVERY_S
                    live.print()
            if venue is not None and venue.proc.poll() is not None and "venue_lost" not in out:
                out["venue_lost"] = _venue_died(
                    venue, f"{time.monotonic() - started:.0f} s into the run"
                )
                print(f"loadgen run: {out['venue_lost']}; stopping Locust", flush=True)
                _stop(proc)
    except (KeyboardInterrupt, Interrupted) as exc:
        how = str(exc) or "SIGINT"
        out["interrupted"] = f"{how} {time.monotonic() - started:.1f} s into the run"
        print(
            f"loadgen run: interrupted ({how}); stopping Locust (its users cancel what they left)"
        )
        _stop(proc)
    finally:
        _reap(proc)
        log.close()
    live.print()
    if _master(args) and GAVE_UP in _tail(run_dir / "locust.log"):
        out["workers_unready"] = (
            f"fewer than the {args.expect_workers} workers expected joined the master within "
            f"{args.wait_workers:g} s (--wait-workers); no load was run"
        )
    after = os.times()
    cpu = (
        after.children_user - before.children_user + after.children_system - before.children_system
    )
    return {**out, "locust_exit": proc.returncode, "generator_cpu_s": cpu}


def _tail(path: Path, size: int = 65536) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(max(0, path.stat().st_size - size))
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _stop(proc: subprocess.Popen) -> None:
    """Ask Locust to stop as a Ctrl-C would (its users cancel what they left), and wait up to
    STOP_GRACE_S; a second interrupt meanwhile stops the waiting (_reap then ends it)."""
    try:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=STOP_GRACE_S)
    except (subprocess.TimeoutExpired, KeyboardInterrupt, Interrupted):
        pass


def _reap(proc: subprocess.Popen) -> None:
    """Locust and every process of its group (the workers it forked) are gone on return."""
    for sig, wait in ((None, 0.0), (signal.SIGTERM, REAP_S), (signal.SIGKILL, REAP_S)):
        if sig is not None:
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and _group_alive(proc.pid):
            time.sleep(0.05)
        if proc.poll() is not None and not _group_alive(proc.pid):
            break
    if proc.poll() is None:
        proc.wait()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LiveLine:
    """Every few seconds: offered and achieved rate, rejections, P50/P99 of what arrived."""

    def __init__(self, path: Path, duration: float) -> None:
        self.path, self.duration = path, duration
        self.offset = 0
        self.started = time.monotonic()

    def print(self) -> None:
        windows = self._new()
        if not windows:
            return
        merged = merge(windows)
        seconds = len(merged)
        t = analysis.tally(merged, open_loop=any(w.offered for w in merged))
        offered = sum(w.offered for w in merged) / seconds or t.total / seconds
        lat = t.latency
        print(
            f"  {time.monotonic() - self.started:5.0f}/{self.duration:.0f} s  offered "
            f"{offered:,.0f}/s  achieved {t.total / seconds:,.0f}/s  rate-limited "
            f"{t.share('rate_limited'):.1%}  rejected {t.share('rejected'):.1%}  errors "
            f"{t.share('error', 'timeout'):.1%}  P50 {lat.percentile(50) / 1000:.2f} ms  "
            f"P99 {lat.percentile(99) / 1000:.2f} ms",
            flush=True,
        )

    def _new(self) -> list[Window]:
        if not self.path.exists():
            return []
        lines, self.offset = complete_lines(self.path, self.offset)
        return [Window.decode(json.loads(line)) for line in lines if line]


def report(run_dir: Path, prof: profiles.Profile | None = None) -> int:
    """Analyse run_dir, write summary.json, report.html, junit.xml; the verdict's exit code
    (0 passed, 1 SLO breached, 3 invalid measurement: report/verdict)."""
    from loadgen.report import junit, render

    summary = analysis.analyse(run_dir)
    write_json(run_dir / "summary.json", summary)
    try:
        (run_dir / "report.html").write_text(render.html(summary), encoding="utf-8")
        (run_dir / "junit.xml").write_text(junit.xml(summary), encoding="utf-8")
    except OSError as exc:
        raise ResultsWriteError(run_dir, exc) from exc
    for line in summary["findings"][1:]:
        print(f"  {line}")
    print(f"loadgen run: report {run_dir / 'report.html'}")
    verdict = summary["verdict"]
    if verdict["status"] == "breached":
        breached = [
            f"{v['name']} (measured {v['measured']}, limit {v['limit']})"
            for v in summary["slo"]
            if not v["ok"]
        ]
        print(f"loadgen run: SLOs breached: {', '.join(breached)}", file=sys.stderr)
    elif verdict["status"] == "invalid":
        for reason in verdict["reasons"]:
            print(f"loadgen run: invalid measurement: {reason['text']}", file=sys.stderr)
    print(f"loadgen run: {verdict['headline']}", flush=True)
    return int(verdict["exit_code"])
