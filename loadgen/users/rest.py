"""The REST trader."""

from __future__ import annotations

from loadgen.clients.rest import RestClient
from loadgen.users import options
from loadgen.users.base import TraderUser


class RestTrader(TraderUser):
    abstract = True
    protocol = "rest"

    def connect(self) -> RestClient:
        timeout = self.environment.parsed_options.request_timeout
        tls = options.tls_context(self.environment)
        return RestClient(self.environment.host, self.api_key, self.secret, timeout, tls)
