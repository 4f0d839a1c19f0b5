"""A profile's stages as a Locust LoadTestShape: the same profile drives headless and web UI runs.

The stages' arithmetic is loadgen.profiles.level_at (no Locust there: importing Locust patches
the process with gevent). Besides users, the shape answers the open-loop rate and the stage's op mix,
which loadgen's pace (users/recording) reads and passes on to the workers.
"""

from __future__ import annotations

from locust import LoadTestShape

from loadgen.profiles import Profile, level_at, stage_at, stage_ends


class ProfileShape(LoadTestShape):
    abstract = True
    profile: Profile

    def tick(self) -> tuple[int, float] | None:
        level = level_at(self.profile, self.get_run_time())
        if level is None:
            return None
        return level[0], self.profile.spawn_rate

    def current_rate(self) -> float | None:
        """Total open-loop requests/s now (None: not an open-loop profile)."""
        if self.profile.loop != "open":
            return None
        level = level_at(self.profile, self.get_run_time())
        return level[1] if level else 0.0

    def next_change(self) -> float | None:
        """The run time (s) at which the running stage ends: the pace moves on at that moment,
        not at its next tick (a ramp's pace moves at every tick besides)."""
        return stage_ends(self.profile, self.get_run_time())

    def current_users(self) -> int:
        level = level_at(self.profile, self.get_run_time())
        return level[0] if level else 0

    def current_mix(self) -> dict[str, float] | None:
        found = stage_at(self.profile, self.get_run_time())
        return found[1].mix if found else None
