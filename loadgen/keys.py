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
# Kraken assigns each client its FIX SenderCompIDs at onboarding (facts 5: "SenderCompID is
# assigned by Kraken"); the embedded venue assigns each key this many, so one key can hold
# several FIX sessions at once (the probe's connections, traders that share a key).
FIX_SESSIONS_PER_KEY = 8
COMP_IDS_FIELD = "fix_sender_comp_ids"  # a keys-file entry's SenderCompIDs (a list of strings)


def derive_key(seed: str, index: int) -> tuple[str, str]:
    """(api_key, base64 secret) for test key `index`; deterministic for a seed."""
    digest = hashlib.sha512(f"{seed}:{index}".encode()).digest()
    api_key = base64.b64encode(hashlib.sha256(digest).digest()).decode().rstrip("=")
    api_key = api_key.replace("+", "A").replace("/", "B")
    return f"LG{index:05d}{api_key[:49]}", base64.b64encode(digest).decode()


def derive_comp_ids(api_key: str) -> list[str]:
    """The SenderCompIDs the embedded venue assigns key `api_key` (LG00042... -> LG00042S0..S7):
    printable, short, and told from the key alone, so every process agrees without a file."""
    return [f"{api_key[:7]}S{n}" for n in range(FIX_SESSIONS_PER_KEY)]


def comp_id_for(comp_ids: list[str], slot: int) -> str:
    """The SenderCompID of the `slot`-th FIX session on a key ('' when it has that few)."""
    return comp_ids[slot] if 0 <= slot < len(comp_ids) else ""


class KeysFileError(ValueError):
    """A keys file that cannot be used; the message names the file, the entry and the field."""


def read_keys_file(path: str | Path) -> list[dict[str, Any]]:
    """The keys of a keys file: the object `loadgen venue` writes ({"keys": [...]}) or a plain
    list, each entry {"api_key": ..., "secret": <base64>, "tier": optional,
    "fix_sender_comp_ids": [the SenderCompIDs Kraken assigned the key; FIX traders need one]}.

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
    comp_ids = entry.get(COMP_IDS_FIELD, [])
    if not isinstance(comp_ids, list) or not all(_comp_id_ok(c) for c in comp_ids):
        raise KeysFileError(f"{where} ({entry['api_key'][:8]}...): {COMP_IDS_FIELD} must be a "
                            "list of SenderCompIDs (printable text, no spaces), as Kraken "
                            "assigned them to the key")  # fmt: skip


def _comp_id_ok(comp_id: Any) -> bool:
    return (
        isinstance(comp_id, str)
        and 0 < len(comp_id) <= 64
        and comp_id.isprintable()
        and (" " not in comp_id)
    )
