"""The WebSocket v2 trader: a token from REST, orders over WS, fills from executions."""

from __future__ import annotations

from typing import Any

from loadgen.clients.rest import RestClient
from loadgen.clients.ws import WsClient
from loadgen.users.base import TraderUser

GONE = frozenset(("filled", "canceled", "expired"))  # exec_types that end an order


class WsTrader(TraderUser):
    abstract = True
    protocol = "ws"

    def connect(self) -> WsClient:
        opts = self.environment.parsed_options
        rest = RestClient(
            self.environment.host, self.api_key, self.secret, timeout=opts.request_timeout
        )
        _, errors, result, failure = rest.call("GetWebSocketsToken", "")
        rest.close()
        if failure or errors:
            raise ConnectionError(f"GetWebSocketsToken: {failure or errors[0]}")
        return WsClient(
            opts.ws_url,
            result["token"],
            timeout=opts.request_timeout,
            on_execution=self.on_execution,
        )

    def on_execution(self, update: dict[str, Any]) -> None:
        if update.get("exec_type") in GONE:
            self.flow.gone_txid(update.get("order_id", ""))
