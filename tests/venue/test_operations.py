"""protocol/operations.py is the one table of the traders' operations: every method it names
is one the venue serves, on REST and WS v2, and the venue charges exactly those REST calls to
the trading counter."""

from __future__ import annotations

from typing import Any

from loadgen.protocol.operations import OPERATIONS, REST_TRADING
from loadgen.venue import fix_server
from loadgen.venue.rest_api import TRADING_METHODS


def test_every_operation_is_served_under_its_name_on_each_api(venue: Any) -> None:
    rest, ws = venue.venue.rest_api, venue.venue.ws_api
    for op in OPERATIONS.values():
        assert op.rest in rest.private_methods, op
        assert op.ws in ws.methods, op
        assert op.fix in fix_server._APP_HANDLERS, op
    assert TRADING_METHODS == REST_TRADING
