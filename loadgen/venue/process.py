"""`loadgen venue` as a child process: start it, read its endpoints and keys, stop it.

The one way every gevent-side user (the locustfile's embedded venue, the trader tests, the
benchmarks) runs a venue: a separate process, so gevent and asyncio never share one (DESIGN).
This module imports neither.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any


def core_split() -> tuple[list[int], int] | None:
    """(the load's cores, the venue's core) when the two can be pinned apart: this process may
    run on two or more cores and taskset exists. None otherwise (then nothing is pinned)."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cores) < 2 or shutil.which("taskset") is None:
        return None
    return cores[:-1], cores[-1]


def die_with_parent() -> None:
    """In the child before exec: SIGTERM when the parent dies (Linux; elsewhere a no-op)."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class VenueProcess:
    """A venue on free loopback ports. `args` are `loadgen venue` flags; `cpu` pins it."""

    def __init__(self, *args: str, cpu: int | None = None) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="loadgen-venue-")
        keys_file = Path(self._dir.name) / "keys.json"
        cmd = [sys.executable, "-m", "loadgen.cli", "venue", "--keys-file", str(keys_file), *args]
        if cpu is not None:
            cmd = ["taskset", "-c", str(cpu), *cmd]
        self.owner = os.getpid()
        # Its own session: a Ctrl-C at the terminal reaches Locust, whose users then cancel
        # what they left open on a venue still there to answer; the owner stops it last. And
        # it dies with its owner (a SIGKILLed run leaves no venue behind).
        self.proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        output = []
        for line in self.proc.stdout:  # type: ignore[union-attr]
            output.append(line)
            if line.startswith("ready"):
                break
        else:
            self._dir.cleanup()
            raise RuntimeError(f"the venue did not start: {''.join(output)[-2000:]}")
        data: dict[str, Any] = json.loads(keys_file.read_text())
        self.endpoints: dict[str, str] = data["endpoints"]
        self.keys: list[dict[str, Any]] = data["keys"]
        self.pid = self.proc.pid  # taskset execs: this is the venue's own pid

    def stop(self) -> list[str]:
        """SIGTERM, wait, return what the venue printed on its way out (its summary line)."""
        if os.getpid() != self.owner:
            return []  # a forked child never stops its parent's venue
        lines: list[str] = []
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                rest, _ = self.proc.communicate(timeout=10)
                lines = (rest or "").splitlines()
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._dir.cleanup()
        return lines
