"""A worker's periodic duties, in one background thread on one drift-free schedule.

Duties: enforce the running job's time limit, flush telemetry, heartbeat, renew the
leases of held entries, promote due delayed jobs, and re-measure the Redis clock
offset. They use their own Redis client (no blocking reads), so a long job or a
blocked fetch never delays a heartbeat or a lease renewal. Each duty survives Redis
failures on its own and logs an outage once, not once per tick.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from fleetscale.clock import RedisTimeEstimate
from fleetscale.config import WorkerSettings
from fleetscale.duties import Duties
from fleetscale.jobstream import JobStream
from fleetscale.registry import Registry
from fleetscale.store import Client, redis_errors, redis_time_s
from fleetscale.telemetry import FlushTally, TelemetryBuffer, TelemetryFlusher, window_of
from fleetscale.worker.consumer import Consumer
from fleetscale.worker.lifeline import Lifeline
from fleetscale.worker.watchdog import Watchdog

log = logging.getLogger("fleetscale.worker")

WATCHDOG_EVERY_S = 0.1
PROMOTE_EVERY_S = 0.5
PROMOTE_BATCH = 500
PROMOTE_ROUNDS = 40
CALIBRATE_EVERY_S = 30.0
LIFELINE_EVERY_S = 1.0


class Housekeeper:
    """Runs a worker's duties until `stop()` (see the module docstring).

    Args:
        consumer: the main thread's consumer (for held entries and counters).
        stream: the job stream on the housekeeper's own client.
        registry: the live-worker registry on that client.
        flusher: writes telemetry; None when telemetry is off.
        buffer: the telemetry buffer the consumer fills.
        clock: the Redis time estimate shared with the consumer.
        watchdog: the time-limit watchdog, if any.
        info: static fields for the heartbeat (host, pid, …).
    """

    def __init__(
        self,
        *,
        consumer: Consumer,
        stream: JobStream,
        registry: Registry,
        flusher: TelemetryFlusher | None,
        buffer: TelemetryBuffer | None,
        clock: RedisTimeEstimate,
        watchdog: Watchdog | None,
        settings: WorkerSettings,
        info: Mapping[str, Any],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.consumer = consumer
        self.stream = stream
        self.registry = registry
        self.flusher = flusher
        self.buffer = buffer
        self.clock = clock
        self.watchdog = watchdog
        if watchdog is not None:
            watchdog.before_exit = consumer.settle_finished
        self.settings = settings
        self.info = dict(info)
        self.monotonic = monotonic
        self.warm = False
        self.lifeline = Lifeline()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="fleetscale-housekeeper")
        self._last_up = monotonic()
        self._tally = FlushTally()
        self.duties = Duties(
            monotonic(),
            {
                "watchdog": (WATCHDOG_EVERY_S, self.check_watchdog),
                "heartbeat": (settings.heartbeat_every_s, self.heartbeat),
                "flush": (settings.flush_every_s, self.flush),
                "renew": (settings.renew_every_s, self.renew),
                "promote": (PROMOTE_EVERY_S, self.promote),
                "calibrate": (CALIBRATE_EVERY_S, self.calibrate),
                "lifeline": (LIFELINE_EVERY_S, self.check_parent),
            },
            log,
            f"worker {consumer.worker_id}",
        )

    def start(self) -> None:
        """Start the thread (daemon: it must never keep a dying worker alive)."""
        self._thread.daemon = True
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread, then flush telemetry one last time and unregister."""
        self._stop.set()
        self._thread.join(timeout=5.0)
        self.duties.run("flush", self.flush)
        self.duties.run("retire", self.retire)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.duties.run_due(self.monotonic())
            self._stop.wait(max(0.0, self.duties.next_deadline() - self.monotonic()))

    # -- duties ------------------------------------------------------------------------

    def check_watchdog(self) -> None:
        """Interrupt an overdue job."""
        if self.watchdog is not None:
            self.watchdog.check()

    def heartbeat(self) -> None:
        """Register as live, with current counters."""
        stats = self.consumer.stats
        state = "draining" if self.consumer.draining else "warm" if self.warm else "running"
        fields = self.info | {
            "state": state,
            "done": stats.done,
            "failed": stats.failed,
            "dead": stats.dead,
            "lost": stats.lost,
        }
        self.registry.heartbeat(self.consumer.worker_id, self.settings.heartbeat_ttl_s, fields)

    def flush(self) -> None:
        """Record up time, busy time and outcomes since the last flush, then write the
        buffered telemetry.

        A warm spare takes no jobs, so its time is not up time: counted, it would halve
        a saturated host's busy fraction.
        """
        if self.flusher is None or self.buffer is None or self.clock.offset_s is None:
            return
        now = self.monotonic()
        stats, recorder = self.consumer.stats, self.consumer.recorder
        done, failed = stats.done, stats.failed
        busy_s = recorder.busy_s(now) if recorder is not None else 0.0
        up_s = 0.0 if self.warm else now - self._last_up
        self._last_up = now
        delta = self._tally.delta(up_s, busy_s, done, failed)
        self.buffer.add(window_of(now + self.clock.offset_s), delta)
        self.flusher.flush(self.buffer)

    def renew(self) -> None:
        """Keep the leases of held entries (unless renewal is off: then only of those
        kept for the dead-letter key); learn which were lost to another worker."""
        worker_id, touch = self.consumer.worker_id, self.settings.renew_leases
        lost = self.stream.renew(worker_id, self.consumer.held_ids(), touch=touch)
        if not touch:
            lost += self.stream.renew(worker_id, self.consumer.kept_ids(), touch=True)
        if lost:
            # Some may have been settled by the main thread meanwhile; mark_lost
            # keeps only those still held.
            self.consumer.mark_lost(lost)

    def check_parent(self) -> None:
        """Drain when the controller that started this worker is gone."""
        if not self.lifeline.parent_alive() and not self.consumer.draining:
            log.warning("worker %s: its controller is gone; draining", self.consumer.worker_id)
            self.consumer.drain()

    def promote(self) -> None:
        """Move due delayed jobs and retries into the stream: batches of `PROMOTE_BATCH`
        (each one short Redis call) until fewer are due, at most `PROMOTE_ROUNDS` a tick;
        one batch a tick moved 10 000 jobs due at once over 10 s."""
        for _ in range(PROMOTE_ROUNDS):
            if self.stream.promote_due(PROMOTE_BATCH) < PROMOTE_BATCH:
                return

    def calibrate(self) -> None:
        """Re-measure the Redis clock offset (three samples, best round trip wins)."""
        client: Client = self.stream.client
        with redis_errors(self.stream.url):
            for attempt in range(3):
                self.clock.calibrate(lambda: redis_time_s(client), refresh=attempt == 0)

    def retire(self) -> None:
        """Unregister on the way out."""
        pending = self.registry.retire(self.consumer.worker_id)
        if pending is None:
            log.warning("worker %s exits: the consumer group is gone (Redis lost its data), "
                        "so it has no consumer nor pending jobs to retire",
                        self.consumer.worker_id)  # fmt: skip
        elif pending:
            log.warning("worker %s exits with %d entries pending; they will be reclaimed",
                        self.consumer.worker_id, pending)  # fmt: skip
