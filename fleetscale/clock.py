"""Time: Redis time from a local monotonic clock, and a drift-free periodic schedule.

Queue wait is measured on Redis time (a stream entry id is Redis milliseconds), so a
host whose wall clock is wrong must not bias it. `RedisTimeEstimate` keeps the offset
between the local monotonic clock and Redis `TIME`, measured with the round trip halved
and refreshed periodically; wall time is never read.

`Schedule` runs several duties on their own periods from one loop: deadlines are
`start + k·period`, so they never drift, and missed ticks are skipped rather than
replayed in a burst.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(slots=True)
class RedisTimeEstimate:
    """Redis time, estimated as local monotonic seconds plus a measured offset.

    Call `calibrate` with a function that returns Redis `TIME` as seconds; the sample
    with the shortest round trip since the last refresh wins. Use from one thread.
    """

    monotonic: Callable[[], float] = time.monotonic
    offset_s: float | None = None
    best_rtt_s: float = float("inf")
    calibrated_at: float = float("-inf")

    def calibrate(self, redis_time_s: Callable[[], float], *, refresh: bool = False) -> None:
        """Measure the offset once; keep it if its round trip is the best so far.

        Args:
            redis_time_s: returns Redis `TIME` in seconds (one round trip).
            refresh: forget previous samples first (clocks drift apart slowly).
        """
        if refresh:
            self.best_rtt_s = float("inf")
        before = self.monotonic()
        server_s = redis_time_s()
        after = self.monotonic()
        rtt = after - before
        if rtt <= self.best_rtt_s:
            self.best_rtt_s = rtt
            self.offset_s = server_s - (before + after) / 2.0
            self.calibrated_at = after

    def now_s(self) -> float:
        """Estimated Redis time in seconds. Raises RuntimeError before calibration."""
        if self.offset_s is None:
            raise RuntimeError("RedisTimeEstimate.now_s called before calibrate")
        return self.monotonic() + self.offset_s

    def age_s(self) -> float:
        """Seconds since the offset was last measured."""
        return self.monotonic() - self.calibrated_at


@dataclass(slots=True)
class Schedule:
    """Named duties on their own periods, driven from one loop without drift.

    `due(now)` returns the duties whose deadline has passed and moves each to its next
    multiple of the period after `now`; `next_deadline()` says how long the loop may sleep.
    """

    start_s: float
    periods_s: dict[str, float]
    _next: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, period in self.periods_s.items():
            if period <= 0:
                raise ValueError(f"period of {name!r} must be > 0, not {period}")
            self._next[name] = self.start_s

    def due(self, now_s: float) -> list[str]:
        """Return the duties due at `now_s`, in declaration order, and reschedule them."""
        ready = []
        for name, period in self.periods_s.items():
            deadline = self._next[name]
            if now_s >= deadline:
                ready.append(name)
                missed = int((now_s - deadline) // period) + 1
                self._next[name] = deadline + missed * period
        return ready

    def next_deadline(self) -> float:
        """The earliest next deadline, in the schedule's clock."""
        return min(self._next.values())
