"""Trade against a Kraken-style venue: `locust -f locustfiles/exchange.py`.

With no --host, the embedded venue starts on loopback and stops when Locust quits. Options
(also as LOADGEN_* environment variables and in the web UI): --pairs, --order-mix,
--cross-share, --tier, --flow-seed, --request-timeout.

Also the worker of a run across machines: `locust -f locustfiles/exchange.py --worker
--master-host HOST` (what `loadgen worker` runs) joins `loadgen run PROFILE --master`, whose
user classes have these names; everything else comes from the master.
"""

from loadgen.users import options  # noqa: F401 - registers the options and the venue hooks
from loadgen.users.fix import FixTrader as _FixTrader
from loadgen.users.marketdata import MarketDataUser as _MarketDataUser
from loadgen.users.rest import RestTrader as _RestTrader
from loadgen.users.ws import WsTrader as _WsTrader


class RestTrader(_RestTrader):
    weight = 1


class WsTrader(_WsTrader):
    weight = 1


class FixTrader(_FixTrader):
    weight = 1


class MarketDataUser(_MarketDataUser):
    weight = 1
