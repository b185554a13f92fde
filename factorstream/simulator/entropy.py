"""A seeded :class:`verifiers.entropy.Entropy`: the same seed, the same ids and codes.

The simulator hands this to the verifier store so that a run replays byte for byte (event
ids, enrollment and challenge ids, TOTP seeds, one-time codes, push numbers, recovery
codes). It is for simulations only: :class:`random.Random` is predictable by design.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime
from typing import TypeVar

from schemas import uuid7
from verifiers.entropy import Entropy

T = TypeVar("T")


class SeededEntropy(Entropy):
    """Predictable values from ``random.Random(seed)`` (never for real secrets)."""

    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)  # noqa: S311 - a reproducible simulation, no secrets

    def randbelow(self, n: int) -> int:
        return self._random.randrange(n)

    def choice(self, seq: Sequence[T]) -> T:
        return self._random.choice(seq)

    def token_bytes(self, n: int) -> bytes:
        return self._random.randbytes(n)

    def identifier(self) -> str:
        return f"{self._random.getrandbits(128):032x}"

    def event_id(self, now: datetime) -> str:
        return uuid7(now, random_bits=self._random.getrandbits(74))
