"""The flow's compiled draws give the numbers random.Random's own methods give, from the same
state: a seed's flow does not depend on which of them ran."""

from __future__ import annotations

import random

import pytest

from loadgen.flow import draws

SEEDS = (0, 1, 7, 2**40 + 3)


def twins(seed: int) -> tuple[random.Random, random.Random]:
    return random.Random(seed), random.Random(seed)


@pytest.mark.parametrize("seed", SEEDS)
def test_expovariate_and_gauss_interleaved_match_random(seed: int) -> None:
    ours, theirs = twins(seed)
    for i in range(2_000):
        if i % 3:
            assert draws.gauss(ours, 0.0, 1.5) == theirs.gauss(0.0, 1.5)
        else:  # a gauss pair's spare is kept across the other draws, as Random keeps it
            assert draws.expovariate(ours, 1 / 4.0) == theirs.expovariate(1 / 4.0)
    assert ours.getstate() == theirs.getstate()


@pytest.mark.parametrize("seed", SEEDS)
def test_integers_match_random(seed: int) -> None:
    ours, theirs = twins(seed)
    for n in (1, 2, 3, 7, 8, 9, 1000, 2**31 + 5):
        for _ in range(200):
            assert draws.below(ours, n) == theirs.randrange(n)
            assert draws.randint(ours, 2, n + 2) == theirs.randint(2, n + 2)
    assert ours.getstate() == theirs.getstate()


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    ("n", "k"), [(0, 0), (5, 5), (20, 3), (40, 3), (21, 6), (40, 6), (500, 15)]
)
def test_sample_matches_random_in_both_of_its_algorithms(seed: int, n: int, k: int) -> None:
    ours, theirs = twins(seed)
    population = [f"order{i}" for i in range(n)]
    for _ in range(50):
        assert draws.sample(ours, population, k) == theirs.sample(population, k)
    assert ours.getstate() == theirs.getstate()


def test_sample_refuses_more_than_there_is() -> None:
    with pytest.raises(ValueError, match="larger than population"):
        draws.sample(random.Random(1), [1, 2], 3)
