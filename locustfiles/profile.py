"""Run a profile's shape in Locust: `LOADGEN_PROFILE=profiles/smoke.toml locust -f locustfiles/profile.py`.

`loadgen run PROFILE` points Locust here (with every option the profile implies); used by hand,
the profile gives the user mix by protocol and the stages (web UI included), and Locust's own
options give the rest (see locustfiles/exchange.py).
"""

import os

from loadgen import profiles
from loadgen.users import options  # noqa: F401 - registers the options and the venue hooks
from loadgen.users.fix import FixTrader as _FixTrader
from loadgen.users.marketdata import MarketDataUser as _MarketDataUser
from loadgen.users.rest import RestTrader as _RestTrader
from loadgen.users.shape import ProfileShape
from loadgen.users.ws import WsTrader as _WsTrader

_path = os.environ.get("LOADGEN_PROFILE", "")
if not _path:
    raise SystemExit(
        "locustfiles/profile.py: set LOADGEN_PROFILE to a profile, e.g. profiles/smoke.toml"
    )
_profile = profiles.load_as_run(_path, os.environ.get("LOADGEN_PROFILE_RUN"))


class RestTrader(_RestTrader):
    weight = _profile.users["rest"]


class WsTrader(_WsTrader):
    weight = _profile.users["ws"]


class FixTrader(_FixTrader):
    weight = _profile.users["fix"]


class MarketDataUser(_MarketDataUser):
    weight = _profile.users.get("md", 0.0)


class Stages(ProfileShape):
    profile = _profile
