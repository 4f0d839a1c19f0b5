"""The WebSocket v2 trader: a token from REST, orders over WS, fills from executions."""

from __future__ import annotations

from typing import Any

from loadgen.clients.ws import WsClient, connect_with_token
from loadgen.protocol.messages import ENDING_EXEC_TYPES, EXEC_ORDER_ID, EXEC_TYPE
from loadgen.users import options
from loadgen.users.base import TraderUser

GONE = frozenset(ENDING_EXEC_TYPES)


class WsTrader(TraderUser):
    abstract = True
    protocol = "ws"

    def connect(self) -> WsClient:
        opts = self.environment.parsed_options
        return connect_with_token(
            self.environment.host, opts.ws_url, self.api_key, self.secret,
            opts.request_timeout, self.on_execution, options.tls_context(self.environment),
        )  # fmt: skip

    def on_execution(self, update: dict[str, Any]) -> None:
        if update.get(EXEC_TYPE) in GONE:
            self.flow.gone_txid(update.get(EXEC_ORDER_ID, ""))
