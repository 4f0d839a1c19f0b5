"""The traders' order operations and what each is called on Kraken's three APIs.

One row an operation: its name in loadgen (an Outcome's `op`, a report's row, a profile's mix),
REST's private method, WS v2's method, and the FIX message type that carries it (facts 1.3,
4.2, 5). The traders' clients send by this table and the venue counts its trading requests by
it. FIX has no batches and no legacy edit: a batch goes as single messages of its type, an
edit as a cancel-replace (35=G) that keeps the order id. (The wire matcher, loadgen/wire,
keeps its own lists on purpose: it checks loadgen from the outside.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class Operation:
    name: str
    rest: str  # REST private method
    ws: str  # WS v2 method
    fix: str  # FIX MsgType (35)


# In the order the op mix draws them (flow/mix.py: the order is part of a seed's draws)
OPERATIONS: Final[dict[str, Operation]] = {
    op.name: op
    for op in (
        Operation("add", "AddOrder", "add_order", "D"),
        Operation("amend", "AmendOrder", "amend_order", "G"),
        Operation("edit", "EditOrder", "edit_order", "G"),
        Operation("cancel", "CancelOrder", "cancel_order", "F"),
        Operation("cancel_all", "CancelAll", "cancel_all", "q"),
        Operation("batch_add", "AddOrderBatch", "batch_add", "D"),
        Operation("batch_cancel", "CancelOrderBatch", "batch_cancel", "F"),
    )
}
OPS: Final = tuple(OPERATIONS)
REST_METHOD: Final = {op.name: op.rest for op in OPERATIONS.values()}
WS_METHOD: Final = {op.name: op.ws for op in OPERATIONS.values()}
REST_TRADING: Final = frozenset(
    REST_METHOD.values()
)  # what the venue charges to the trading counter
