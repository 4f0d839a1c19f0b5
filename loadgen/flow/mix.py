"""The operation mix: which operation a trader sends next, by weight; and the option texts
(`--order-mix`, `--order-types`) that give the weights."""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections.abc import Mapping
from typing import Final

from loadgen.protocol import orderkinds
from loadgen.protocol.operations import OPS

# Algorithmic flow is mostly place-and-cancel, some amends and edits, a few batches and rare
# cancel-alls (the shape of market-making traffic; weights are relative, any scale).
DEFAULT_WEIGHTS: Final[dict[str, float]] = {
    "add": 45, "cancel": 35, "amend": 10, "edit": 4, "batch_add": 3, "batch_cancel": 2,
    "cancel_all": 1,
}  # fmt: skip
# What an operation needs from the trader's live orders; short of that it becomes an add.
NEEDS_LIVE: Final = {"amend": 1, "edit": 1, "cancel": 1, "cancel_all": 1, "batch_cancel": 2}


_KINDS_CACHE: Final[dict[tuple[str, str], dict[str, float] | None]] = {}


class MixError(ValueError):
    """A mix that cannot be used; the message names the operation."""


class OpMix:
    def __init__(self, weights: Mapping[str, float] | None = None) -> None:
        weights = dict(DEFAULT_WEIGHTS if weights is None else weights)
        for op, weight in weights.items():
            if op not in OPS:
                raise MixError(f"order mix: unknown operation {op!r} (use {', '.join(OPS)})")
            if not isinstance(weight, (int, float)) or weight < 0 or weight != weight:
                raise MixError(f"order mix: weight of {op!r} must be a number >= 0, got {weight!r}")
        if weights.get("add", 0) <= 0:
            raise MixError(
                "order mix: 'add' needs a weight above 0 (nothing else works without it)"
            )
        self.weights = weights
        self.ops = [op for op in OPS if weights.get(op, 0) > 0]
        self.cumulative = list(itertools.accumulate(weights[op] for op in self.ops))

    def choose(self, rng: random.Random, live: int) -> str:
        """An operation by weight; one the trader's `live` orders cannot serve becomes an add."""
        op = self.ops[bisect.bisect_right(self.cumulative, rng.random() * self.cumulative[-1])]
        return op if live >= NEEDS_LIVE.get(op, 0) else "add"


def parse_weights(spec: str, option: str) -> dict[str, float]:
    """'add:45,cancel:35' -> {'add': 45.0, 'cancel': 35.0} (a bare NAME weighs 1)."""
    weights = {}
    for item in spec.split(","):
        name, sep, value = item.strip().partition(":")
        try:
            weight = float(value) if sep else 1.0
        except ValueError:
            raise ValueError(f"{option}: {item!r} is not NAME:WEIGHT") from None
        if not math.isfinite(weight) or weight < 0:
            raise ValueError(f"{option}: the weight of {name!r} must be a number >= 0")
        weights[name] = weight
    return weights


def parse_kinds(spec: str, protocol: str) -> dict[str, float] | None:
    """'limit:80,ioc:20' -> the weights of the kinds `protocol` carries; '' -> None (limit)."""
    key = (spec, protocol)
    if key not in _KINDS_CACHE:
        weights = None
        if spec:
            try:
                weights = orderkinds.for_protocol(parse_weights(spec, "--order-types"), protocol)
            except ValueError as exc:
                message = str(exc).removeprefix("order_types: ")
                raise ValueError(message if message.startswith("--") else
                                 f"--order-types: {message}") from None  # fmt: skip
            if not any(w > 0 for w in weights.values()):
                raise ValueError(f"--order-types: the {protocol} traders have no order type to "
                                 f"send in {spec!r} (fok is FIX only)")  # fmt: skip
        _KINDS_CACHE[key] = weights
    return _KINDS_CACHE[key]
