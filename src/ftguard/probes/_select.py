"""Helpers shared by the probes: fixed probe/anchor splits, seeded sampling and parameter checks."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TypeVar

from ftguard.errors import ConfigError

T = TypeVar("T")
SPLIT_SEED = 1234  # fixed: the probe/anchor split must not move with a run's seed
PROBE_FRACTION = 0.6


def split_pool(rows: Sequence[T]) -> tuple[list[T], list[T]]:
    """Split rows into (probe part, anchor part): the first 60% of a seed-1234 shuffle, and the rest."""
    shuffled = list(rows)
    random.Random(SPLIT_SEED).shuffle(shuffled)
    cut = int(len(shuffled) * PROBE_FRACTION)
    return shuffled[:cut], shuffled[cut:]


def sample(rows: Sequence[T], n: int, seed: int) -> list[T]:
    """The first `n` rows of a seeded shuffle; the result for `n` is a prefix of the result for a larger `n`."""
    shuffled = list(rows)
    random.Random(seed).shuffle(shuffled)
    return shuffled[:n]


def check_params(probe: str, n: int, available: int, what: str, max_new_tokens: int) -> None:
    """Raise ConfigError when `n` is not in 1..available or `max_new_tokens` < 1."""
    if not 1 <= n <= available:
        raise ConfigError(f"{probe}: n={n} is out of range; {available} {what} are available, use 1..{available}")
    if max_new_tokens < 1:
        raise ConfigError(f"{probe}: max_new_tokens={max_new_tokens} must be at least 1")
