"""Capped exponential backoff with jitter, for retrying against Redis or a failing spawn."""

from __future__ import annotations

import random


class Backoff:
    """Pauses that double from `base_s` up to `cap_s`, each scaled by a random 0.5-1.0.

    The jitter keeps many workers that lost Redis together from retrying in lockstep;
    the floor of half the pause keeps a failing loop from spinning. One thread only.
    """

    def __init__(
        self, rng: random.Random | None = None, *, base_s: float = 0.1, cap_s: float = 5.0
    ) -> None:
        self.rng = rng or random.Random()
        self.base_s = base_s
        self.cap_s = cap_s
        self.failures = 0

    def next_pause_s(self) -> float:
        """Record a failure and return how long to wait before the next try, seconds."""
        ceiling = min(self.cap_s, self.base_s * 2.0**self.failures)
        self.failures = min(self.failures + 1, 62)
        return ceiling * (0.5 + 0.5 * self.rng.random())

    def reset(self) -> None:
        """Record a success: the next failure starts from `base_s` again."""
        self.failures = 0
