"""Which keys loadgen traded with lately, and when their trading counters will be quiet again.

A venue's trading counter outlives the run that filled it: Kraken's decays by a fixed amount a
second (Pro: 3.75/s from a threshold of 180, so up to 48 s; Starter: 60 s). A second run on the
same keys within that time starts with its shadow counters at zero and the venue's warm: it
sees rejections it did not earn (56 in the run issue 15 describes) and judges the venue too
strict. So every process that trades on a URL target leaves a record, in the folder of what it
ran (a run's results folder, a check's), of when each key's counter will have decayed; the
next `loadgen check` names those keys and the next `loadgen run` waits them out.

Choices:
- A key is named by a fingerprint (sha256 of the API key, 16 hex digits), never by the key.
- A record is per target (the REST URL): the embedded venue is new each run, its keys are
  never warm, and nothing is recorded for it.
- A counter's level at the end is the shadow's upper bound (conformance.KeyShadow) plus what the
  user's last CancelAll added (each order it cancelled, by its age), at most the tier's
  threshold; a key whose last CancelAll failed, or whose users never stopped, counts as full.
  The levels are per pair and the wait takes the highest: it is never too short.
- Records older than RECORD_TTL_S are not read: no tier's counter lasts that long.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable
from pathlib import Path

from loadgen.ratelimit import TIERS

RECORD = "keys-used"  # a folder's records: keys-used-<pid>[-<source>].json, one per process
RECORD_TTL_S = 300.0


def fingerprint(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()[:16]


def quiet_after(tier: str, level: float) -> float:
    """Seconds until a trading counter of `tier` at `level` (at most its threshold) is at 0."""
    t = TIERS.get(tier)
    if t is None or not t.trade_decay:
        return 0.0
    return min(t.trade_threshold, level) / t.trade_decay


def write(folder: Path, target: str, quiet: dict[str, float], now: float | None = None,
          source: str = "") -> None:  # fmt: skip
    """Record, for `target`, each key's seconds-until-quiet (by API key) as of now; `source`
    tells apart the records one process writes for others (a master's, for its workers)."""
    now = time.time() if now is None else now
    keys = {fingerprint(k): now + s for k, s in quiet.items() if s > 0}
    if not keys:
        return
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{RECORD}-{os.getpid()}{'-' + source if source else ''}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"target": target.rstrip("/"), "quiet_at": keys}))
    tmp.replace(path)


def warm(
    results: Path, target: str, api_keys: Iterable[str], now: float | None = None
) -> tuple[float, int, str]:
    """(seconds until the last of `api_keys` is quiet, how many are warm, the folder that says
    so) from the records under `results` for `target`; (0, 0, "") when none is warm."""
    now = time.time() if now is None else now
    wanted = {fingerprint(k) for k in api_keys}
    target = target.rstrip("/")
    latest: dict[str, float] = {}
    where = ""
    for path in _recent(results, now):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # a record being written, or not ours: it proves nothing
        if not isinstance(data, dict) or data.get("target") != target:
            continue
        for fp, at in (data.get("quiet_at") or {}).items():
            if fp in wanted and isinstance(at, (int, float)) and at > max(now, latest.get(fp, 0)):
                latest[fp] = at
                where = str(path.parent)
    if not latest:
        return 0.0, 0, ""
    return max(latest.values()) - now, len(latest), where


def _recent(results: Path, now: float) -> list[Path]:
    """The records in the folders of `results` changed within RECORD_TTL_S."""
    try:
        folders = [f for f in results.iterdir() if f.is_dir()]
    except OSError:
        return []
    out: list[Path] = []
    for folder in folders:
        try:
            if now - folder.stat().st_mtime > RECORD_TTL_S:
                continue
        except OSError:
            continue
        out += folder.glob(f"{RECORD}-*.json")
    return out
