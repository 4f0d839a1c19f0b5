"""A profile's stages as a Locust LoadTestShape: the same profile drives headless and web UI runs.

ramp moves linearly from the previous stage's users and rate to its own; step, spike and soak
hold theirs from their first second (a spike is a step that is short and steep, usually with a
mix of its own). Besides users, the shape answers the open-loop rate and the stage's op mix,
which loadgen's pace (users/recording) reads and passes on to the workers.
"""

from __future__ import annotations

from locust import LoadTestShape

from loadgen.profiles import Profile, Stage


def stage_at(profile: Profile, elapsed: float) -> tuple[int, Stage, float] | None:
    """(index, stage, fraction of it done) at `elapsed` seconds; None once the run is over."""
    start = 0.0
    for i, stage in enumerate(profile.stages):
        if elapsed < start + stage.duration:
            return i, stage, (elapsed - start) / stage.duration
        start += stage.duration
    return None


def level_at(profile: Profile, elapsed: float) -> tuple[int, float] | None:
    """(users, total open-loop rate) at `elapsed` seconds; None once the run is over."""
    found = stage_at(profile, elapsed)
    if found is None:
        return None
    i, stage, done = found
    if stage.kind != "ramp":
        return stage.users, stage.rate
    prev_users, prev_rate = (0, 0.0) if i == 0 else (
        profile.stages[i - 1].users, profile.stages[i - 1].rate
    )  # fmt: skip
    users = round(prev_users + (stage.users - prev_users) * done)
    return max(users, 1 if stage.users else 0), prev_rate + (stage.rate - prev_rate) * done


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

    def current_users(self) -> int:
        level = level_at(self.profile, self.get_run_time())
        return level[0] if level else 0

    def current_mix(self) -> dict[str, float] | None:
        found = stage_at(self.profile, self.get_run_time())
        return found[1].mix if found else None
