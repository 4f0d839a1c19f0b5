"""Rate-limit conformance end to end: the shipped ratelimit profile against the embedded venue,
as published and with its limits mis-set through its knobs; each must come out as its class."""

from __future__ import annotations

import json
import re
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from tests.report.test_run_e2e import run

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = (ROOT / "profiles" / "ratelimit.toml").read_text()


def variant(tmp: Path, name: str, knob: str, expect: str, load: str = "") -> Path:
    """The shipped profile with a venue knob, an expected verdict and load options added."""
    text = SHIPPED.replace('tier = "starter"\n', f'tier = "starter"\n{knob}\n', 1)
    text, n = re.subn(r'rate_limit_verdict = "\w+"', f'rate_limit_verdict = "{expect}"', text)
    assert n == 1, "the shipped ratelimit profile names its expected verdict"
    if load:
        text = text.replace("[load]\n", f"[load]\n{load}\n", 1)
    path = tmp / f"{name}.toml"
    path.write_text(text)
    return path


def summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def test_the_venue_as_published_conforms(tmp_path: Path) -> None:
    proc, run_dir = run(
        variant(tmp_path, "published", "", "conforms"), tmp_path / "r", "--duration", "6s"
    )
    assert proc.returncode == 0, proc.stderr
    rl = summary(run_dir)["rate_limits"]
    assert rl["verdict"] == "conforms" and rl["tier"] == "starter" and rl["threshold"] == 60
    c = rl["classes"]
    assert c["false_reject"] == 0 and c["missed_reject"] == 0
    assert c["agreed"] > 1000 and rl["first_divergence"] is None
    # the venue refused only above the threshold and accepted only at or under it
    assert rl["refused_min"] > 59.99 and rl["accepted_max"] <= 60.0
    report = (run_dir / "report.html").read_text()
    assert "Rate limits: conformance to the published limits" in report


def test_a_threshold_set_too_low_is_reported_as_false_rejects_and_fails_ci(tmp_path: Path) -> None:
    path = variant(tmp_path, "low", "limit_threshold = 40", "conforms")
    proc, run_dir = run(path, tmp_path / "r", "--duration", "6s")
    assert proc.returncode == 1, proc.stderr  # the profile expected a conforming venue
    rl = summary(run_dir)["rate_limits"]
    assert rl["verdict"] == "too_strict"
    assert rl["classes"]["false_reject"] > 100 and rl["classes"]["missed_reject"] == 0
    first = rl["first_divergence"]
    assert first["class"] == "false_reject" and first["recent"]
    assert first["reach"][1] <= 60  # the published counter would have had room
    assert 39.9 < rl["refused_min"] <= 40.1  # where the venue really refuses
    failures = ET.parse(run_dir / "junit.xml").getroot().iter("failure")
    assert any("rate-limit verdict" in f.get("message", "") for f in failures)
    assert "too_strict" in proc.stderr or "too strict" in proc.stderr


@pytest.mark.parametrize(
    ("name", "knob"),
    [("fast-decay", "limit_decay = 3.0"), ("no-cancel-penalty", "cancel_penalty = false")],
)
def test_a_lenient_venue_is_reported_as_missed_rejects(
    tmp_path: Path, name: str, knob: str
) -> None:
    proc, run_dir = run(
        variant(tmp_path, name, knob, "too_lenient"), tmp_path / "r", "--duration", "6s"
    )
    assert proc.returncode == 0, proc.stderr
    rl = summary(run_dir)["rate_limits"]
    assert rl["classes"]["missed_reject"] > 0 and rl["classes"]["false_reject"] == 0
    assert rl["first_divergence"]["class"] == "missed_reject"
    assert rl["accepted_max"] > 60


def test_stay_under_gets_no_rate_limit_rejections_from_a_conforming_venue(tmp_path: Path) -> None:
    path = variant(tmp_path, "under", "", "conforms", load="stay_under = true")
    path.write_text(
        path.read_text().replace("rate_limited = [0.2, 1.0]", "rate_limited = [0.0, 0.0]")
    )
    proc, run_dir = run(path, tmp_path / "r", "--duration", "6s")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    s = summary(run_dir)
    assert s["totals"]["outcomes"]["rate_limited"] == 0
    assert s["totals"]["outcomes"]["ok"] > 200  # it still trades: the burst, then the decay rate
