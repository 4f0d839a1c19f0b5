"""`loadgen venue` as a user runs it: a real process, its stdout, its signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest


def start(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen, list[str]]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "loadgen.cli",
            "venue",
            "--keys",
            "3",
            "--pairs",
            "10",
            "--keys-file",
            str(tmp_path / "keys.json"),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = []
    for line in proc.stdout:  # type: ignore[union-attr]
        lines.append(line)
        if line.startswith("ready"):
            break
    return proc, lines


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_venue_prints_endpoints_never_secrets_and_stops_cleanly(tmp_path, sig):
    proc, lines = start(tmp_path)
    out = "".join(lines)
    keys = json.loads((tmp_path / "keys.json").read_text())
    assert oct(os.stat(tmp_path / "keys.json").st_mode & 0o777) == "0o600"
    for key in keys["keys"]:
        assert key["secret"] not in out
    rest = keys["endpoints"]["rest"]
    assert rest in out and keys["endpoints"]["ws"] in out and keys["endpoints"]["fix"] in out
    with urllib.request.urlopen(f"{rest}/0/public/Time", timeout=5) as resp:
        assert json.load(resp)["error"] == []
    proc.send_signal(sig)
    rest_of_output, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0 and "stopped" in rest_of_output
    for key in keys["keys"]:
        assert key["secret"] not in rest_of_output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--host", "10.1.2.3"], "not loopback"),
        (["--latency", "rest=gauss:1"], "unknown distribution"),
        (["--latency", "smtp=fixed:1"], "PROTOCOL=SPEC"),
        (["--tier", "platinum"], "tier 'platinum' is unknown"),
        (["--unavailable", "2"], "unavailable_ratio must be between 0 and 1"),
        (["--rest-port", "70000"], "rest_port 70000 is not a port"),
    ],
)
def test_bad_flags_exit_2_naming_the_problem(tmp_path, args, message):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "loadgen.cli",
            "venue",
            "--keys-file",
            str(tmp_path / "k.json"),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and message in result.stderr
    assert "Traceback" not in result.stderr


def test_port_in_use_is_a_clear_error(tmp_path):
    proc, _ = start(tmp_path)
    try:
        port = json.loads((tmp_path / "keys.json").read_text())["endpoints"]["rest"].rsplit(":", 1)[
            1
        ]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "loadgen.cli",
                "venue",
                "--rest-port",
                port,
                "--keys-file",
                str(tmp_path / "k2.json"),
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 1 and "address already in use" in result.stderr.lower()
        assert "Traceback" not in result.stderr
    finally:
        proc.terminate()
        proc.wait(10)


def test_the_cli_never_loads_gevent_or_locust():
    """The venue is asyncio: a gevent monkey-patch in its process breaks its signal handling
    (DESIGN: gevent and asyncio never share a process). Locust patches on import."""
    code = (
        "import sys, loadgen.cli; loadgen.cli.build_parser(); "
        "print(sorted(m for m in ('gevent', 'locust') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip() == "[]", result.stdout + result.stderr
