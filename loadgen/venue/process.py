"""`loadgen venue` as a child process: start it, read its endpoints and keys, stop it.

The one way every gevent-side user (the locustfile's embedded venue, the trader tests, the
benchmarks) runs a venue: a separate process, so gevent and asyncio never share one (DESIGN).
This module imports neither.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from loadgen.procs import die_with_parent


def core_split() -> tuple[list[int], int] | None:
    """(the load's cores, the venue's core) when the two can be pinned apart: this process may
    run on two or more cores and taskset exists. None otherwise (then nothing is pinned)."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cores) < 2 or shutil.which("taskset") is None:
        return None
    return cores[:-1], cores[-1]


START_S = 60.0  # the venue has this long to say "ready" (it builds its keys and books first)
KEYS_NAME = ".venue-keys.json"  # written by the venue (mode 0600), removed once read
LAST_WORDS = "loadgen venue:"  # the venue's own summary lines start so (cli.cmd_venue)


class VenueProcess:
    """A venue on free loopback ports. `args` are `loadgen venue` flags; `cpu` pins it.

    Its output goes to a file, `venue.log` in `log_dir` (the run's results folder) or in a
    temporary folder of its own: never to a pipe, which a parent reads only now and then, so
    a venue logging a lot (a traceback per bad request) could fill the pipe and block on its
    next write with every connection waiting behind it."""

    def __init__(self, *args: str, cpu: int | None = None, log_dir: Path | None = None) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="loadgen-venue-")
        # The keys file (every secret) lives in the run's folder and only until it is read:
        # a run killed at any later moment leaves no secret on disk (issue 13).
        keys_file = Path(log_dir or self._dir.name) / KEYS_NAME
        self.log_path = Path(log_dir or self._dir.name) / "venue.log"
        cmd = [sys.executable, "-m", "loadgen.cli", "venue", "--keys-file", str(keys_file), *args]
        if cpu is not None:
            cmd = ["taskset", "-c", str(cpu), *cmd]
        self.owner = os.getpid()
        self._stopped = False
        # Its own session: a Ctrl-C at the terminal reaches Locust, whose users then cancel
        # what they left open on a venue still there to answer; the owner stops it last. And
        # it dies with its owner (a SIGKILLed run leaves no venue behind).
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        try:
            if not self._await_ready():
                self.proc.kill()
                self.proc.wait()
                output = self.log_path.read_text(errors="replace")[-2000:]
                self._dir.cleanup()
                raise RuntimeError(f"the venue did not start: {output}")
            data: dict[str, Any] = json.loads(keys_file.read_text())
        finally:
            keys_file.unlink(missing_ok=True)
        self.endpoints: dict[str, str] = data["endpoints"]
        self.keys: list[dict[str, Any]] = data["keys"]
        self.ca_file: str = data.get("ca_file", "")  # with --tls: the CA that verifies it
        self.pid = self.proc.pid  # taskset execs: this is the venue's own pid

    def _await_ready(self) -> bool:
        """Poll the log for the venue's "ready" line, while it lives, for up to START_S."""
        deadline = time.monotonic() + START_S
        while time.monotonic() < deadline:
            if any(line.startswith("ready") for line in self._lines()):
                return True
            if self.proc.poll() is not None:
                return False
            time.sleep(0.02)  # the interval of the poll
        return False

    def _lines(self) -> list[str]:
        return self.log_path.read_text(errors="replace").splitlines()

    def stop(self) -> list[str]:
        """SIGTERM, wait, return the venue's summary lines ("stopped after N orders...", "served
        ..."), and how many other lines it logged, naming the log."""
        if os.getpid() != self.owner or self._stopped:
            return []  # a forked child never stops its parent's venue; a stopped one is gone
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        lines = self._lines()
        after = lines[next((i + 1 for i, x in enumerate(lines) if x.startswith("ready")), 0) :]
        words = [x for x in after if x.startswith(LAST_WORDS)]
        others = len(after) - len(words)
        if others and self.log_path.parent != Path(self._dir.name):
            words.append(f"{LAST_WORDS} {others} other log lines in {self.log_path}")
        elif others:
            words.append(f"{LAST_WORDS} {others} other log lines (not kept: no log_dir)")
        self._dir.cleanup()
        # Only now: a stop that failed half-way (Locust's SIGTERM handler runs its shutdown in
        # the event loop, where a wait cannot block) is tried again by the next caller.
        self._stopped = True
        return words
