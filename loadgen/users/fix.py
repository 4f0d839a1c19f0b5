"""The FIX 4.4 trader: one session per user, fills from ExecutionReports."""

from __future__ import annotations

from loadgen.clients.fix import FixClient
from loadgen.keys import COMP_IDS_FIELD
from loadgen.users import options
from loadgen.users.base import TraderUser

ENDED = frozenset(("2", "4", "C"))  # OrdStatus filled, canceled, expired


class FixTrader(TraderUser):
    abstract = True
    protocol = "fix"

    def connect(self) -> FixClient:
        opts = self.environment.parsed_options
        if not self.fix_sender:
            raise ValueError(
                f"FIX trader {self.number}: its key ({self.api_key[:8]}...) has no SenderCompID "
                f"left for it (keys file field {COMP_IDS_FIELD}: Kraken assigns one per FIX "
                "session; give each FIX trader its own)"
            )
        return FixClient(
            opts.fix_url,
            self.api_key,
            self.secret,
            self.fix_sender,
            self.flow.next_cl_ord_id,
            timeout=opts.request_timeout,
            on_execution=self.on_execution,
            on_reconnect=self.flow.all_gone,
            tls=options.tls_context(self.environment),
        )

    def on_execution(self, fields: dict[int, str]) -> None:
        if fields.get(39) in ENDED:
            self.flow.gone_txid(fields.get(37, ""))
