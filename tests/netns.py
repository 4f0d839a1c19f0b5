"""Hosts for a test: Linux network namespaces on one bridge, made by the test and deleted by it.

Each host is a namespace with its own loopback and one interface, `eth0`, on a bridge that
lives in a namespace of its own; the addresses (10.213.N.x/24) exist only inside them, so
nothing reaches or leaves the machine's own network. Processes started on a host run inside
its namespace (`ip netns exec`); at exit every process still there is killed and every
namespace deleted, whatever the test did.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import uuid
from collections.abc import Sequence
from typing import Any


class NetnsUnavailable(RuntimeError):
    """Namespaces cannot be made here (not root, no `ip`, a kernel or container that refuses)."""


def _ip(*args: str) -> None:
    """`ip ARGS`; refused for want of privilege: NetnsUnavailable (a skip), else RuntimeError."""
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)
    if proc.returncode:
        error = f"ip {' '.join(args)}: {proc.stderr.strip()}"
        denied = ("Operation not permitted", "Permission denied", "not supported")
        raise (NetnsUnavailable if any(d in error for d in denied) else RuntimeError)(error)


class Lan:
    """`hosts` on one subnet: `lan.address(name)`, `lan.popen(name, cmd)`; a context manager."""

    def __init__(self, hosts: Sequence[str]) -> None:
        tag = f"lg{uuid.uuid4().hex[:8]}"  # never another run's, live or left by a kill
        self.subnet = f"10.213.{os.getpid() % 250}"
        self.names = {h: f"{tag}-{h}" for h in hosts}
        self.hub = f"{tag}-hub"
        self.addresses = {h: f"{self.subnet}.{i + 1}" for i, h in enumerate(hosts)}
        self.procs: list[subprocess.Popen] = []
        self.made: list[str] = []  # only these are deleted: the namespaces this Lan added

    def __enter__(self) -> Lan:
        if shutil.which("ip") is None:
            raise NetnsUnavailable("iproute2's `ip` is not installed")
        if os.geteuid() != 0:
            raise NetnsUnavailable("network namespaces need root (CAP_SYS_ADMIN)")
        try:
            self._make()
        except BaseException:
            self._delete()
            raise
        return self

    def _add(self, ns: str) -> None:
        _ip("netns", "add", ns)
        self.made.append(ns)

    def _make(self) -> None:
        self._add(self.hub)
        _ip("-n", self.hub, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.hub, "link", "set", "br0", "up")
        for i, (host, ns) in enumerate(self.names.items()):
            self._add(ns)
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", self.hub, "link", "add", f"v{i}", "type", "veth", "peer", "name", "eth0",
                "netns", ns)  # fmt: skip
            _ip("-n", self.hub, "link", "set", f"v{i}", "master", "br0", "up")
            _ip("-n", ns, "addr", "add", f"{self.addresses[host]}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")

    def address(self, host: str) -> str:
        return self.addresses[host]

    def popen(self, host: str, cmd: Sequence[str], **kwargs: Any) -> subprocess.Popen:
        """`cmd` on `host` (`ip netns exec` execs it: the pid is the command's own)."""
        proc = subprocess.Popen(["ip", "netns", "exec", self.names[host], *cmd], **kwargs)
        self.procs.append(proc)
        return proc

    def pids(self, host: str) -> list[int]:
        """Every process in `host`'s namespace now."""
        return self._pids_of(self.names[host])

    def __exit__(self, *exc: object) -> None:
        self._delete()

    def kill_all(self) -> None:
        """Every process on every host, and every process started here, gone."""
        for ns in self.made:
            for pid in self._pids_of(ns):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=30)
        self.procs.clear()

    def _delete(self) -> None:
        self.kill_all()
        for ns in self.made:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30,
                           check=False)  # fmt: skip
        self.made.clear()

    def _pids_of(self, ns: str) -> list[int]:
        out = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True,
                             timeout=30, check=False).stdout  # fmt: skip
        return [int(p) for p in out.split()]
