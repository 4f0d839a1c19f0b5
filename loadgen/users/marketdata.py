"""The market-data user: one public WS v2 connection following the books of the run's pairs.

Each MarketDataUser connects to the public endpoint (`--md-url`; the authenticated `--ws-url`
where the target names none) and subscribes to the `--md-channels` (book by default; ticker,
trade) of every pair the traders trade (`--pairs`), the book at `--md-depth` levels, keeps each
book from the messages and checks every checksum (clients/marketdata). What it hears goes to the run's windows
beside the requests, not among them: book messages by kind, checksum failures, resubscriptions,
reconnects, the updates' fan-out latency (the venue's `timestamp` to the kernel's receive time),
trades and the gaps in their sequence, ticker updates. A connection that drops is made again
after a backoff, and counted.
"""

from __future__ import annotations

import gevent
from locust import User, task

from loadgen.clients.marketdata import BookSubscriber
from loadgen.users import options, recording

RECONNECTS = "reconnects"
REFUSED = "refused"  # subscribe answered with an error (named in the log once)


class MarketDataUser(User):
    abstract = True
    market_data = True  # sends no orders: the open loop's rate is the traders' (recording)

    def on_start(self) -> None:
        opts = self.environment.parsed_options
        markets, _ = options.markets(self.environment.host, opts.pairs,
                                     options.tls_context(self.environment))  # fmt: skip
        url = opts.md_url or opts.ws_url  # the public endpoint, where the target names one
        self.subscriber = BookSubscriber(url, markets, int(opts.md_depth),
                                         timeout=opts.request_timeout,
                                         tls=options.tls_context(self.environment),
                                         channels=options.md_channels(opts))  # fmt: skip
        self.subscriber.connect()
        self._refusals: set[str] = set()

    @task
    def follow(self) -> None:
        """Read until the user is stopped (Locust kills the greenlet), reconnecting on a drop."""
        while True:
            try:
                heard = self.subscriber.read(self._refused)
            except (OSError, ConnectionError) as exc:
                recording.market_data(RECONNECTS)
                self.subscriber.close()
                self.subscriber.backoff.failed()
                options.log.warning("market data: %s; connecting again", exc)
                gevent.sleep(0)
                self._reconnect()
                continue
            for kind, latency in heard.events:
                recording.market_data(kind, latency)
            for kind, n in heard.counts.items():
                recording.market_data(kind, None, n)

    def _reconnect(self) -> None:
        while True:
            try:
                self.subscriber.connect()
                self.subscriber.backoff.succeeded()
                return
            except (OSError, ConnectionError):
                self.subscriber.backoff.failed()

    def _refused(self, text: str) -> None:
        recording.market_data(REFUSED)
        if text not in self._refusals:
            self._refusals.add(text)
            options.log.warning("market data: the venue refused a subscription: %s", text)

    def on_stop(self) -> None:
        subscriber = getattr(self, "subscriber", None)
        if subscriber is not None:
            subscriber.close()
