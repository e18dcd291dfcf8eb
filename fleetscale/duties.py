"""Periodic duties run from one loop: each on its own period, each guarded.

A duty that fails (with a `FleetscaleError`, Redis away, say; or with any other
exception, a bug, logged with its traceback) is logged once when it starts failing and
once when it works again — not once per tick — and never stops the other duties.
Used by the worker's housekeeper and by the controller's reconciler.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from fleetscale.clock import Schedule
from fleetscale.errors import FleetscaleError


class Duties:
    """Named duties on a drift-free schedule (one thread).

    Args:
        start_s: the schedule's start, in the caller's monotonic clock.
        duties: name → (period seconds, the duty), run in this order when due together.
        log: where failures and recoveries go.
        who: names the process in log lines (a worker or host id).
    """

    def __init__(
        self,
        start_s: float,
        duties: Mapping[str, tuple[float, Callable[[], None]]],
        log: logging.Logger,
        who: str,
    ) -> None:
        self.schedule = Schedule(start_s, {name: period for name, (period, _) in duties.items()})
        self.duties = {name: duty for name, (_, duty) in duties.items()}
        self.log = log
        self.who = who
        self.failing: set[str] = set()

    def run_due(self, now_s: float) -> None:
        """Run every duty due at `now_s`."""
        for name in self.schedule.due(now_s):
            self.run(name, self.duties[name])

    def next_deadline(self) -> float:
        """When the next duty is due."""
        return self.schedule.next_deadline()

    def run(self, name: str, duty: Callable[[], None]) -> None:
        """Run `duty` now, logging a failure once per outage."""
        try:
            duty()
        except FleetscaleError as exc:
            if name not in self.failing:
                self.log.warning("%s: %s failed: %s", self.who, name, exc)
                self.failing.add(name)
            return
        except Exception:
            # A bug, not an outage: its traceback is logged, and the other duties go on
            # (a crashed controller would stop its host's workers; a crashed worker
            # housekeeper would stop renewing leases and heartbeats).
            if name not in self.failing:
                self.log.exception("%s: %s failed unexpectedly", self.who, name)
                self.failing.add(name)
            return
        if name in self.failing:
            self.log.info("%s: %s works again", self.who, name)
            self.failing.discard(name)
