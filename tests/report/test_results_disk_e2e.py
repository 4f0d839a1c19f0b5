"""A results folder that is too small or fills up mid-run (issue 13: the run hung silently).

Each test mounts a tmpfs of its own in a private mount namespace (`unshare -m`): the mount
exists only for the processes of the test's run and goes with them.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.report.test_run_e2e import profile, stage

BAD_INPUT, INVALID = 2, 3


def _can_mount() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
        capture_output=True, check=False,
    )  # fmt: skip
    return probe.returncode == 0


pytestmark = pytest.mark.skipif(
    not _can_mount(), reason="needs `unshare -m` and mount (root or a user namespace)"
)

# Inside the namespace: mount the tmpfs, run, and (for the mid-run case) fill the disk once the
# run's first windows are written. $1 results folder, $2 tmpfs size, $3 fill (1/0), $4 profile.
SCRIPT = """
set -u
mount -t tmpfs -o size="$2" tmpfs "$1"
python -m loadgen.cli run "$4" --results "$1" &
RUN=$!
if [ "$3" = 1 ]; then
  for i in $(seq 1 600); do ls "$1"/*/windows.jsonl >/dev/null 2>&1 && break; sleep 0.1; done
  dd if=/dev/zero of="$1/filler" bs=64k 2>/dev/null
  echo "FILLED $(date +%s.%N)"
fi
wait $RUN
echo "EXIT $?"
echo "DONE $(date +%s.%N)"
"""


def run_on_tmpfs(tmp_path: Path, size: str, fill: bool) -> tuple[int, float, str]:
    """(loadgen run's exit code, seconds from the start or the fill to its exit, output)."""
    results = tmp_path / "results"
    results.mkdir()
    path = profile(tmp_path, "disk", loop="open", stages=stage("40s", 6, rate=60))
    started = time.time()
    proc = subprocess.run(
        ["unshare", "-m", "bash", "-c", SCRIPT, "sh", str(results), size, str(int(fill)),
         str(path)],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    marks = dict(line.split(" ", 1) for line in proc.stdout.splitlines() if line[:5] in
                 ("EXIT ", "DONE ", "FILLE"))  # fmt: skip
    assert "EXIT" in marks and "DONE" in marks, out[-3000:]
    since = float(marks["FILLED"]) if fill else started
    return int(marks["EXIT"]), float(marks["DONE"]) - since, out


def test_a_results_disk_too_small_to_start_is_a_named_error_before_anything_runs(tmp_path):
    code, took, out = run_on_tmpfs(tmp_path, "512k", fill=False)
    assert code == BAD_INPUT, out[-3000:]
    assert "cannot write the results to" in out and "KiB free; a run needs 1024 KiB" in out, out
    assert "loadgen venue:" not in out  # refused before a venue or Locust was started
    assert took < 60


def test_a_results_disk_filling_mid_run_stops_the_run_named_and_cancels_its_orders(tmp_path):
    code, took, out = run_on_tmpfs(tmp_path, "8m", fill=True)
    assert code == INVALID, out[-3000:]
    assert "No space left on device" in out and "invalid measurement" in out, out[-3000:]
    assert "0 orders were still open" in out, out[-3000:]  # the users cancelled at the stop
    assert "Passed" not in out
    assert took < 60, took  # 40 s of load were planned: the run stopped at the fill
