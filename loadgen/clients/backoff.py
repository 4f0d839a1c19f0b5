"""Reconnect backoff shared by the three clients: after a failure, wait before connecting
again, doubling the wait per consecutive failure; a success resets it."""

from __future__ import annotations

import time

import gevent

BACKOFF_START_S = 0.05  # first wait before reconnecting after a failure
BACKOFF_MAX_S = 2.0  # the wait doubles per failure up to this


class Backoff:
    __slots__ = ("_retry_at", "wait_s")

    def __init__(self) -> None:
        self.wait_s = 0.0
        self._retry_at = 0.0

    def failed(self) -> None:
        self.wait_s = min(BACKOFF_MAX_S, self.wait_s * 2 or BACKOFF_START_S)
        self._retry_at = time.monotonic() + self.wait_s

    def succeeded(self) -> None:
        self.wait_s = 0.0

    def before_connect(self) -> None:
        """Wait out the backoff (cooperatively: other users run meanwhile)."""
        wait = self._retry_at - time.monotonic()
        if wait > 0:
            gevent.sleep(wait)
