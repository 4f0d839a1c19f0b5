"""Test API keys derived from a seed: the venue creates them, the traders recreate them.

A run's processes (Locust master, workers, the embedded venue) agree on the keys without
passing secrets around: key i of seed s is the same everywhere. Secrets stay out of logs.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

DEFAULT_SEED = "loadgen"
RUN_KEYS = 2000  # keys a run's embedded venue makes: room for 2000 traders, one key each
MAX_PROCESSES = 64  # key index = user number * MAX_PROCESSES + worker index: no two collide


def derive_key(seed: str, index: int) -> tuple[str, str]:
    """(api_key, base64 secret) for test key `index`; deterministic for a seed."""
    digest = hashlib.sha512(f"{seed}:{index}".encode()).digest()
    api_key = base64.b64encode(hashlib.sha256(digest).digest()).decode().rstrip("=")
    api_key = api_key.replace("+", "A").replace("/", "B")
    return f"LG{index:05d}{api_key[:49]}", base64.b64encode(digest).decode()


class KeysFileError(ValueError):
    """A keys file that cannot be used; the message names the file, the entry and the field."""


def read_keys_file(path: str | Path) -> list[dict[str, Any]]:
    """The keys of a keys file: the object `loadgen venue` writes ({"keys": [...]}) or a plain
    list, each entry {"api_key": ..., "secret": <base64>, "tier": optional}.

    Everything is checked here, once, so a bad file is one named error before any user starts
    (a missing secret used to surface as a KeyError in every user). No secret is ever quoted.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise KeysFileError(f"keys file {path}: no such file") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise KeysFileError(f"keys file {path}: not readable JSON ({exc})") from None
    keys = data.get("keys") if isinstance(data, dict) else data
    if not isinstance(keys, list) or not keys:
        raise KeysFileError(f'keys file {path}: expected {{"keys": [...]}} or a list of keys, '
                            'each {"api_key": ..., "secret": ...}, with at least one')  # fmt: skip
    for i, entry in enumerate(keys):
        _check_entry(path, i, entry)
    return keys


def _check_entry(path: str | Path, i: int, entry: Any) -> None:
    where = f"keys file {path}: key {i}"
    if not isinstance(entry, dict):
        raise KeysFileError(f'{where}: expected an object {{"api_key": ..., "secret": ...}}')
    for field in ("api_key", "secret"):
        if not isinstance(entry.get(field), str) or not entry[field]:
            raise KeysFileError(f"{where}: {field} is missing or not a string")
    try:
        base64.b64decode(entry["secret"], validate=True)
    except ValueError:
        raise KeysFileError(f"{where} ({entry['api_key'][:8]}...): secret is not base64") from None
