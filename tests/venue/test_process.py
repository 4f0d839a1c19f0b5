"""The venue as a child process (venue/process): its output can never block it."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

from loadgen.venue.process import VenueProcess

DEEP = 1100  # levels of a[x][x]...: each such body made the venue log a ~200 KB traceback


def _post(url: str, api_key: str, body: bytes) -> int:
    req = urllib.request.Request(url, data=body, method="POST", headers={
        "API-Key": api_key, "API-Sign": "bm90IGEgc2lnbmF0dXJl",
        "Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_a_venue_logging_far_more_than_a_pipe_holds_keeps_answering(tmp_path: Path) -> None:
    """The freeze of issue 13: three deeply nested bodies on a known key, a junk signature.
    The venue's log used to be a pipe read only until "ready"; ~64 KB of tracebacks filled it
    and the venue blocked on its next write, answering nothing more. Its log is a file now."""
    venue = VenueProcess("--keys", "2", "--pairs", "5", log_dir=tmp_path)
    try:
        rest = venue.endpoints["rest"]
        body = b"nonce=1&a" + b"[x]" * DEEP + b"=1"
        for _ in range(3):
            _post(f"{rest}/0/private/AddOrder", venue.keys[0]["api_key"], body)
        for _ in range(20):  # and it still answers, every time, within the timeout
            with urllib.request.urlopen(f"{rest}/0/public/Time", timeout=10) as resp:
                assert json.load(resp)["error"] == []
    finally:
        words = venue.stop()
    assert any(w.startswith("loadgen venue: stopped after") for w in words), words
    assert (tmp_path / "venue.log").exists()  # what it logged is kept beside the run


def test_the_keys_file_is_the_owners_alone_even_over_a_stale_tmp(tmp_path: Path) -> None:
    """Issue 13: a keys.json.tmp left 0644 by an earlier run made the new keys file 0644."""
    from loadgen.venue.accounts import Accounts

    path = tmp_path / "keys.json"
    stale = tmp_path / "keys.json.tmp"
    stale.write_text("{}")
    stale.chmod(0o644)
    Accounts.generate(2, ["pro"], "seed").write_keys_file(path, {})
    assert path.stat().st_mode & 0o777 == 0o600
    assert len(json.loads(path.read_text())["keys"]) == 2
