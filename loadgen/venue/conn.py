"""What the three servers share: ordered, optionally delayed writes and the drop knob.

Every write on a connection goes through `send`, so a reply held back by the latency or stall
knobs also holds back whatever follows it on that connection (events, the next reply): a
client never sees replies out of order, as with a real gateway's single TCP stream.

Replies produced while one read is handled are written together when it is done: a client that
pipelines 30 requests into one segment gets its 30 replies in one write, not 30 system calls.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from loadgen.venue.context import ServerContext

log = logging.getLogger("loadgen.venue")

# After a refusal the venue sends its last words (Logout, close frame, HTTP error), half-closes,
# and keeps reading and dropping what the peer still sends for this long before closing: a
# socket closed with unread input sends a TCP reset, and the reset would destroy those words.
LINGER_S: Final = 2.0


class Connection(asyncio.Protocol):
    protocol_name = ""

    def __init__(self, venue: ServerContext) -> None:
        self.venue = venue
        self.faults = venue.faults
        # Connections exist only while the loop serves them (app.serve sets it first).
        assert venue.loop is not None
        self.loop: asyncio.AbstractEventLoop = venue.loop
        self.transport: asyncio.Transport | None = None
        self._release_at = 0.0  # loop time before which nothing more may be written
        self._batch: list[bytes] | None = None  # replies of the read being handled
        self._held: list[bytes] | None = None  # input that arrived during an engine stall
        self.closed = False
        self.ended = False  # our side is half-closed (write_eof): nothing more may be written

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.venue.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.venue.connections.discard(self)

    def pause_writing(self) -> None:
        """The peer reads slower than it asks (the write buffer passed asyncio's high-water
        mark): it is not read until the buffer drains, so a peer that never reads cannot grow
        the venue's memory by asking (issue 13: a FIX ResendRequest replays 2,000 messages)."""
        if self.transport is not None and not self.closed:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None and not self.closed and not self.transport.is_closing():
            self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        if self.faults.stalls:
            if self._held is not None:
                self._held.append(data)
                return
            left = self.faults.stall_left(time.monotonic())
            if left > 0:
                self._held = [data]
                self.loop.call_later(left, self._release_held)
                return
        self._handle(data)

    def _release_held(self) -> None:
        held, self._held = self._held or [], None
        for data in held:
            if self.closed:
                return
            self._handle(data)

    def _handle(self, data: bytes) -> None:
        self._batch = []
        try:
            self.on_data(data)
        finally:
            self._flush_batch()

    def on_data(self, data: bytes) -> None:
        raise NotImplementedError

    def _flush_batch(self) -> None:
        batch, self._batch = self._batch, None
        if (
            batch
            and not self.ended
            and self.transport is not None
            and not self.transport.is_closing()
        ):
            self.transport.write(batch[0] if len(batch) == 1 else b"".join(batch))

    def send(self, data: bytes, delay: float = 0.0) -> None:
        """Write now, or after `delay` seconds and after anything already held back."""
        if self.closed or self.ended:
            return
        if delay <= 0.0 and self._release_at == 0.0:
            if self._batch is not None:
                self._batch.append(data)
            else:
                self.transport.write(data)  # type: ignore[union-attr]
            return
        now = self.loop.time()
        at = max(now + delay, self._release_at)
        self._release_at = at
        self.loop.call_at(at, self._release, data, at)

    def _release(self, data: bytes, at: float) -> None:
        if self._release_at == at:
            self._release_at = 0.0
        if not (self.closed or self.ended):
            self.transport.write(data)  # type: ignore[union-attr]

    def reply_delay(self) -> float:
        faults = self.faults
        return faults.delay(self.protocol_name) if faults.any_delay else 0.0

    def abort(self) -> None:
        """Drop the connection without a word (the drop knob, or a peer beyond help)."""
        if not self.closed and self.transport is not None:
            self.closed = True
            self.transport.abort()

    def close_after_write(self) -> None:
        """Close once everything queued (including held-back replies) has been written."""
        self._flush_batch()
        if self._release_at:
            self.loop.call_at(self._release_at + 1e-6, self._close_now)
        else:
            self._close_now()

    def _close_now(self) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        self.ended = True
        if transport.can_write_eof():
            transport.write_eof()  # the peer reads everything we wrote, then EOF
            self.loop.call_later(LINGER_S, transport.close)
        else:
            transport.close()
