"""Process hygiene shared by every layer that starts processes: a child dies with its parent,
and a wait for a process that is not ours to end."""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable
from typing import Any

import psutil


def die_with_parent() -> None:
    """In the child before exec: SIGTERM when the parent dies (Linux; elsewhere a no-op)."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def wait_for_end(pid: int, seconds: float, sleep: Callable[[float], Any] = time.sleep) -> None:
    """Until the process has exited: gone, or a zombie (the simulator waits so for the master).
    The master is the bench's child, reaped only once the simulator has exited: waiting for its
    pid to vanish (psutil's wait on a process not ours) waited out the whole bound after every
    master, 63 s a count."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.NoSuchProcess:
            return
        sleep(0.1)
