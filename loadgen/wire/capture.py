"""tcpdump on the loopback device, as a context: what crossed the wire while it ran.

Debian's tcpdump (`apt-get install tcpdump`; .ci/run installs it), run as root or with
CAP_NET_RAW. Nanosecond timestamps (`--time-stamp-precision nano`), full packets, written as
they come (-U) to a pcap file in a folder the caller owns. The capture is only good if the
kernel dropped nothing: `stop()` reads tcpdump's own count and raises CaptureFailed otherwise.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

READY_S = 10.0  # tcpdump says "listening on lo" within this
STOP_S = 10.0
BUFFER_KIB = 65536  # -B: the kernel's capture buffer, so a burst is not dropped
# At stop, the file unchanged for QUIET_S: longer than libpcap's block timeout (tcpdump's 1 s),
# after which a partly filled block of packets is handed over all the same.
SETTLE_S, QUIET_S, POLL_S = 15.0, 1.5, 0.05


class CaptureFailed(RuntimeError):
    """No capture, or one that lost packets: the wire figures would not be the wire's."""


def available() -> str:
    """Why a capture cannot run here ('' when it can)."""
    if shutil.which("tcpdump") is None:
        return "tcpdump is not installed (Debian: apt-get install tcpdump)"
    return ""


class Capture:
    """tcpdump -i lo on `ports`, into `folder`/wire.pcap."""

    def __init__(self, folder: Path, ports: list[int], interface: str = "lo") -> None:
        self.path = folder / "wire.pcap"
        self.interface = interface
        self._log = folder / "tcpdump.log"
        expression = "tcp and (" + " or ".join(f"port {p}" for p in ports) + ")"
        # Not --immediate-mode: a wake-up per packet costs the cores being measured (P99 up
        # 30x at 200 requests/s, measured); blocks of packets come at most TIMEOUT_S apart.
        cmd = ["tcpdump", "-i", interface, "-n", "-s", "0", "-U", "-B", str(BUFFER_KIB),
               "--time-stamp-precision", "nano", "-w", str(self.path), expression]  # fmt: skip
        with open(self._log, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + READY_S
        while "listening on" not in self._text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                self.proc.wait()
                raise CaptureFailed(f"tcpdump did not start: {self._text().strip()[-300:]}")
            time.sleep(0.02)  # the poll's interval

    def _text(self) -> str:
        return self._log.read_text(errors="replace")

    def stop(self) -> bytes:
        """End the capture once tcpdump has written what it was given; the pcap file's bytes
        (CaptureFailed if the kernel dropped packets or tcpdump did not write them all)."""
        self._settle()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=STOP_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise CaptureFailed("tcpdump did not stop on SIGINT") from None
        text = self._text()
        dropped = re.search(r"(\d+) packets? dropped by kernel", text)
        if dropped is None:
            raise CaptureFailed(f"tcpdump gave no packet counts: {text.strip()[-300:]}")
        if int(dropped.group(1)):
            raise CaptureFailed(f"the kernel dropped {dropped.group(1)} packets of the capture")
        captured = re.search(r"(\d+) packets? captured", text)
        matched = re.search(r"(\d+) packets? received by filter", text)
        # On the loopback device the filter sees each packet twice (going out and coming in)
        # and libpcap keeps one: so many written is all of them.
        copies = 2 if self.interface == "lo" else 1
        if captured and matched and int(captured.group(1)) * copies < int(matched.group(1)):
            raise CaptureFailed(f"tcpdump wrote {captured.group(1)} of the "
                                f"{int(matched.group(1)) // copies} packets it matched")  # fmt: skip
        return self.path.read_bytes()

    def _settle(self) -> None:
        """Wait (up to SETTLE_S) until the file has stopped growing: tcpdump may still be
        writing what it read, and what is left unread at SIGINT is lost."""
        deadline = time.monotonic() + SETTLE_S
        size, still = -1, 0.0
        while time.monotonic() < deadline and still < QUIET_S:
            now = self.path.stat().st_size if self.path.exists() else 0
            still = still + POLL_S if now == size else 0.0
            size = now
            time.sleep(POLL_S)  # the poll's interval

    def __enter__(self) -> Capture:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
