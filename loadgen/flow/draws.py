"""The flow's random draws, compiled: the same numbers as random.Random's own methods.

random.Random's random() and getrandbits() are C, but gauss(), expovariate(), randrange(),
randint() and sample() are Python (Lib/random.py), and a trader called them several times a
request (a fifth of the order flow's time under `loadgen bench traders`, by perf). These are
those methods' algorithms as CPython 3.11-3.13 writes them, over the same two C primitives
and the same generator state (gauss's spare deviate included), so a seed gives the same flow
whichever is called; tests/flow/test_draws.py holds each equal to its original.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any, Final, TypeVar

T = TypeVar("T")
TWOPI: Final = 2.0 * math.pi


def expovariate(rng: random.Random, lambd: float) -> float:
    """Random.expovariate(lambd)."""
    return -math.log(1.0 - rng.random()) / lambd


def gauss(rng: random.Random, mu: float, sigma: float) -> float:
    """Random.gauss(mu, sigma): Box-Muller, the pair's second deviate kept on the generator
    (its gauss_next) for the next call, as Random.gauss keeps it."""
    state: Any = rng  # gauss_next: Random's own attribute, which typeshed does not declare
    z = state.gauss_next
    state.gauss_next = None
    if z is None:
        x2pi = rng.random() * TWOPI
        g2rad = math.sqrt(-2.0 * math.log(1.0 - rng.random()))
        z = math.cos(x2pi) * g2rad
        state.gauss_next = math.sin(x2pi) * g2rad
    return mu + z * sigma


def below(rng: random.Random, n: int) -> int:
    """Random.randrange(n) for n > 0 (Random._randbelow_with_getrandbits)."""
    if n <= 0:  # (getrandbits(0) is 0: the loop below would never end)
        raise ValueError(f"empty range for a draw below {n}")
    k = n.bit_length()
    r = rng.getrandbits(k)
    while r >= n:
        r = rng.getrandbits(k)
    return r


def randint(rng: random.Random, a: int, b: int) -> int:
    """Random.randint(a, b) for a <= b."""
    return a + below(rng, b - a + 1)


def sample(rng: random.Random, population: Sequence[T], k: int) -> list[T]:
    """Random.sample(population, k) for 0 <= k <= len(population)."""
    n = len(population)
    if not 0 <= k <= n:
        raise ValueError("sample larger than population or is negative")
    setsize = 21
    if k > 5:
        setsize += 4 ** math.ceil(math.log(k * 3, 4))
    result: list[T] = []
    if n <= setsize:
        pool = list(population)
        for i in range(k):
            j = below(rng, n - i)
            result.append(pool[j])
            pool[j] = pool[n - i - 1]
        return result
    selected: set[int] = set()
    for _ in range(k):
        j = below(rng, n)
        while j in selected:
            j = below(rng, n)
        selected.add(j)
        result.append(population[j])
    return result
