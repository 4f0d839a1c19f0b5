"""One verdict per run: passed, SLO breached, invalid measurement, or bad input.

A load test sells numbers people act on, so a run that could not measure what it claims must
never look like a pass. The rules, in the order they are checked (the first that applies wins):

| verdict  | exit | when                                                                      |
|----------|------|---------------------------------------------------------------------------|
| bad input|  2   | a profile, flag or option that cannot run (refused before anything starts) |
| invalid  |  3   | any reason below: nothing sent, interrupted, cut short, users failed at     |
|          |      | spawn, a worker or the venue lost, workers missing, the generator was the   |
|          |      | bottleneck; SLO results are still shown, but not trusted                    |
| breached |  1   | the run measured what it claims and an SLO failed                         |
| passed   |  0   | the run measured what it claims and every SLO held                        |

Bad input never reaches a report (`loadgen run` refuses it with exit 2); the other three come
from the run's results folder, so `loadgen report` on any run folder gives the same verdict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PASSED, BREACHED, INVALID, BAD_INPUT = "passed", "breached", "invalid", "bad_input"
EXIT_CODES = {PASSED: 0, BREACHED: 1, BAD_INPUT: 2, INVALID: 3}

# Why a run is invalid: code -> what it means, for the README and the report.
INVALID_REASONS = {
    "nothing_sent": "no request was sent or answered",
    "interrupted": "the run was interrupted (Ctrl-C, SIGTERM) before its end",
    "cut_short": "the load ran for less than the profile's duration",
    "users_failed": "users failed at spawn (their on_start raised)",
    "worker_lost": "a Locust worker was lost, or its last seconds never arrived",
    "workers_missing": "fewer workers recorded than were asked for",
    "venue_lost": "the embedded venue died during the run",
    "locust_failed": "Locust itself exited with an error",
    "generator_bound": "the generator, not the venue, was the bottleneck",
}


@dataclass
class Verdict:
    status: str
    reasons: list[dict[str, str]] = field(default_factory=list)  # {code, text}
    breached: list[str] = field(default_factory=list)  # the SLOs that failed

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]

    def headline(self) -> str:
        if self.status == INVALID:
            why = "; ".join(r["text"] for r in self.reasons)
            return f"INVALID MEASUREMENT: {why}. No SLO verdict can be trusted from this run."
        if self.status == BREACHED:
            return f"SLOs breached: {', '.join(self.breached)}."
        if self.status == BAD_INPUT:
            return "BAD INPUT: the run could not start."
        return "Passed: the run measured what it claims, and every SLO held."

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "exit_code": self.exit_code,
            "reasons": self.reasons,
            "breached": self.breached,
            "headline": self.headline(),
        }


def decide(problems: list[tuple[str, str]], breached: list[str]) -> Verdict:
    """problems: (code from INVALID_REASONS, text naming this run's case); breached: SLO names."""
    for code, _ in problems:
        if code not in INVALID_REASONS:
            raise ValueError(f"unknown invalid-run reason {code!r}")
    if problems:
        reasons = [{"code": c, "text": t} for c, t in problems]
        return Verdict(INVALID, reasons, breached)
    return Verdict(BREACHED if breached else PASSED, [], breached)
