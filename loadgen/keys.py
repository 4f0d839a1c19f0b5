"""Test API keys derived from a seed: the venue creates them, the traders recreate them.

A run's processes (Locust master, workers, the embedded venue) agree on the keys without
passing secrets around: key i of seed s is the same everywhere. Secrets stay out of logs.
"""

from __future__ import annotations

import base64
import hashlib

DEFAULT_SEED = "loadgen"
RUN_KEYS = 2000  # keys a run's embedded venue makes: room for 2000 traders, one key each
MAX_PROCESSES = 64  # key index = user number * MAX_PROCESSES + worker index: no two collide


def derive_key(seed: str, index: int) -> tuple[str, str]:
    """(api_key, base64 secret) for test key `index`; deterministic for a seed."""
    digest = hashlib.sha512(f"{seed}:{index}".encode()).digest()
    api_key = base64.b64encode(hashlib.sha256(digest).digest()).decode().rstrip("=")
    api_key = api_key.replace("+", "A").replace("/", "B")
    return f"LG{index:05d}{api_key[:49]}", base64.b64encode(digest).decode()
