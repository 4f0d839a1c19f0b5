"""The REST trader."""

from __future__ import annotations

from loadgen.clients.rest import RestClient
from loadgen.users.base import TraderUser


class RestTrader(TraderUser):
    abstract = True
    protocol = "rest"

    def connect(self) -> RestClient:
        timeout = self.environment.parsed_options.request_timeout
        return RestClient(self.environment.host, self.api_key, self.secret, timeout=timeout)
