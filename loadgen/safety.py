"""Where load may go: loopback, or a host named on purpose. One rule for every way a request
can leave (profiles, `locust -f locustfiles/...`, `loadgen probe`): a load test aimed at the
wrong host is an outage, so a non-loopback target runs only when it is named explicitly
(`target.allow_hosts` in a profile, `--allow-host HOST` on the command line)."""

from __future__ import annotations

import ipaddress
import urllib.parse
from collections.abc import Iterable


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_problem(url: str, allowed: Iterable[str], where: str) -> str:
    """What is wrong with aiming load at `url` ('' when nothing): its host must be loopback
    or in `allowed`, which the user sets as `where` says."""
    host = urllib.parse.urlsplit(url).hostname if url else None
    if host and not is_loopback(host) and host not in set(allowed):
        return (
            f"host {host!r} is not loopback and not in {where}; a load test aimed at the wrong "
            "host is an outage, so name it there explicitly"
        )
    return ""
