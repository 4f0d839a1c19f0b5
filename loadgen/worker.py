"""`loadgen worker --master-host HOST[:PORT]`: this machine's share of a distributed run.

A thin name for Locust's own worker (`locust -f locustfiles/exchange.py --worker --master-host
HOST --master-port PORT`, which works as well): the process becomes that Locust worker (exec,
so signals, exit codes and a container's PID 1 are Locust's). Everything a run is travels from
the master (`loadgen run PROFILE --master`): the user mix and the shape (Locust's spawn
messages), the venue's URLs, the flow, the loop and the keys to use (the custom options Locust
sends with each spawn), the pace (loadgen's message). The worker writes nothing of its own:
its windows, its keys' quiet times and its last seconds go to the master, which alone writes
results. A keys file the profile names must be at the same path on every worker's machine.

Locust's worker waits for its master, and gives up when the master has been silent for 60 s
(its MASTER_HEARTBEAT_TIMEOUT): no worker outlives the run it joined by long.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from loadgen.keys import MAX_PROCESSES

ROOT = Path(__file__).resolve().parents[1]
LOCUSTFILE = ROOT / "locustfiles" / "exchange.py"
MASTER_PORT = 5557  # Locust's own default, as its users' firewalls already have it


def master_address(text: str) -> tuple[str, int]:
    """'HOST' or 'HOST:PORT' ('[::1]:5557' for IPv6) -> (host, port); argparse type."""
    host, port = text, str(MASTER_PORT)
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":") or port
    elif text.count(":") == 1:
        host, port = text.split(":")
    if not host:
        raise argparse.ArgumentTypeError(f"expected HOST[:PORT], got {text!r}")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r}: the port must be 1-65535")
    return host, int(port)


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--master-host",
        type=master_address,
        required=True,
        metavar="HOST[:PORT]",
        help=f"the machine running `loadgen run PROFILE --master` (port default {MASTER_PORT})",
    )
    p.add_argument(
        "--processes",
        type=int,
        default=1,
        help=f"worker processes on this machine, one per core (1 to {MAX_PROCESSES}; default 1)",
    )


def command(args: argparse.Namespace) -> list[str]:
    host, port = args.master_host
    cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--worker"]
    cmd += ["--master-host", host, "--master-port", str(port)]
    if args.processes > 1:
        cmd += ["--processes", str(args.processes)]
    return cmd


def main(args: argparse.Namespace) -> int:
    if not 1 <= args.processes <= MAX_PROCESSES:
        print(f"loadgen worker: --processes {args.processes}: give 1 to {MAX_PROCESSES}",
              file=sys.stderr)  # fmt: skip
        return 2
    cmd = command(args)
    host, port = args.master_host
    print(f"loadgen worker: joining the master at {host}:{port} ({args.processes} process"
          f"{'es' if args.processes > 1 else ''})", flush=True)  # fmt: skip
    os.execv(cmd[0], cmd)
    return 0  # not reached: the process is Locust's now
