"""One `loadgen run` from a benchmark, as a user would start it: a child process, then the
run folder it made, found by its name."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

START_S = 300  # what a run may take beyond its stages: start-up, the report, the venue's stop


def loadgen_run(profile: Path, results: Path, name: str, seconds: float, *args: str,
                prefix: tuple[str, ...] = ()) -> tuple[Path, subprocess.CompletedProcess[str]]:  # fmt: skip
    """`loadgen run PROFILE --results RESULTS ARGS` (after `prefix`, e.g. a taskset): the
    folder it made (`*-NAME`, with its summary) and the finished process. RuntimeError with the
    run's last words when it wrote no summary."""
    cmd = [*prefix, sys.executable, "-m", "loadgen.cli", "run", str(profile), "--results",
           str(results), *args]  # fmt: skip
    before = set(results.glob(f"*-{name}"))
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + START_S,
                          check=False)  # fmt: skip
    made = sorted(set(results.glob(f"*-{name}")) - before)
    if not made or not (made[-1] / "summary.json").exists():
        tail = " / ".join((done.stdout + done.stderr).strip().splitlines()[-3:])
        raise RuntimeError(f"loadgen run {name} wrote no summary (exit {done.returncode}): {tail}")
    return made[-1], done
