"""Simulated worker processes on hosts: start-up, drain, and their cost in worker-seconds.

A started worker takes jobs after the cold start-up time, or after the warm start-up
time when its host has a warm spare ready (the spare is then replaced, which takes a
cold start). A stopped worker drains: it takes no new job, finishes the one it runs and
exits; a worker still starting, or idle, exits at once. When a host must shrink it stops
workers still starting first, then idle ones, then those that finish soonest.

The free-worker heap holds `(free_at_s, worker)` for every worker that may take jobs,
including starting ones (free at their ready time); stopped workers leave it lazily.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from fleetscale.controller.policy import HostView


@dataclass(frozen=True, slots=True)
class StartUp:
    """How long a new worker takes to take its first job.

    Attributes:
        cold_s: start-up of a fresh process, seconds.
        warm_s: start-up from a warm spare, seconds.
        spares_per_host: warm spares each host keeps (they count as worker-seconds).
    """

    cold_s: float = 1.0
    warm_s: float = 0.05
    spares_per_host: int = 0


class WorkerPool:
    """Every worker of one run, by host; not thread-safe (one run, one thread)."""

    def __init__(self, hosts: tuple[tuple[str, int], ...], startup: StartUp, seed: int) -> None:
        self.hosts = hosts
        self.startup = startup
        self.heap: list[tuple[float, int]] = []
        self.stopping: list[bool] = []
        self.busy_until: list[float] = []
        self.phase: list[float] = []
        self._started: list[float] = []
        self._ready: list[float] = []
        self._exit: list[float | None] = []
        self._live: dict[str, list[int]] = {name: [] for name, _ in hosts}
        self._draining: list[int] = []
        self._spares = {name: [0.0] * startup.spares_per_host for name, _ in hosts}
        self._rng = random.Random(seed)

    def _start(self, host: str, now_s: float) -> None:
        spares = self._spares[host]
        delay_s = self.startup.cold_s
        for index, spare_ready_s in enumerate(spares):
            if spare_ready_s <= now_s:
                spares[index] = now_s + self.startup.cold_s
                delay_s = self.startup.warm_s
                break
        worker = len(self._started)
        self._started.append(now_s)
        self._ready.append(now_s + delay_s)
        self._exit.append(None)
        self.busy_until.append(now_s + delay_s)
        self.stopping.append(False)
        self.phase.append(self._rng.random())
        self._live[host].append(worker)
        self.heap.append((now_s + delay_s, worker))
        # heap order is restored by apply() after a batch of starts

    def _stop(self, host: str, count: int, now_s: float) -> None:
        live = self._live[host]
        live.sort(key=lambda w: (self._ready[w] <= now_s, self.busy_until[w]))
        for worker in live[:count]:
            self.stopping[worker] = True
            ready = self._ready[worker] <= now_s
            exit_s = max(now_s, self.busy_until[worker]) if ready else now_s
            self._exit[worker] = exit_s
            if exit_s > now_s:
                self._draining.append(worker)
        del live[:count]

    def apply(self, quotas: dict[str, int], now_s: float) -> None:
        """Start or drain workers so each host converges to its quota."""
        grew = False
        for host, _ in self.hosts:
            difference = quotas.get(host, 0) - len(self._live[host])
            for _ in range(difference):
                self._start(host, now_s)
                grew = True
            if difference < 0:
                self._stop(host, -difference, now_s)
        if grew:
            self.heap.sort()

    def views(self, now_s: float) -> tuple[HostView, ...]:
        """Each host as the leader sees it at `now_s`."""
        views = []
        for host, capacity in self.hosts:
            live = self._live[host]
            ready = sum(1 for w in live if self._ready[w] <= now_s)
            views.append(HostView(host, capacity, len(live), ready, len(live) - ready))
        return tuple(views)

    def draining(self, now_s: float) -> int:
        """Workers stopped but still finishing a job at `now_s`."""
        self._draining = [w for w in self._draining if (self._exit[w] or 0.0) > now_s]
        return len(self._draining)

    def live_count(self) -> int:
        """Workers not stopping (starting or ready)."""
        return sum(len(live) for live in self._live.values())

    def worker_seconds(self, end_s: float) -> float:
        """Process-seconds spent up to `end_s`, warm spares included."""
        total = 0.0
        for started_s, exit_s in zip(self._started, self._exit, strict=True):
            stop_s = end_s if exit_s is None else min(exit_s, end_s)
            total += max(0.0, stop_s - started_s)
        return total + self.startup.spares_per_host * len(self.hosts) * end_s
