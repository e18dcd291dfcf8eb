"""The consumer loop: fetch a batch, run each job, settle the batch.

`run_once` is one turn (fetch or reclaim, run, settle, record); `run` repeats it until
a drain is requested, backing off with jitter while Redis is away. Jobs run one at a
time on the calling thread; the housekeeper thread renews leases on what is `held`.

A fetch takes at most as many entries as the worker expects to *start* within
`prefetch_window_s`, from its measured run time: 256 no-op jobs, or a single 50 ms job,
so a prefetched batch never hides load from the scaler or from other workers.
"""

from __future__ import annotations

import inspect
import logging
import random
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fleetscale.app import App, Task, deferred_kind
from fleetscale.backoff import Backoff
from fleetscale.clock import RedisTimeEstimate
from fleetscale.codec import Job, MalformedJob, decode_job, encode_job, peek_identity
from fleetscale.config import WorkerSettings
from fleetscale.errors import FleetscaleError, SubmitError
from fleetscale.jobstream import (
    DeadLetter,
    DeadLetterKeyWrongType,
    Delivery,
    EntryId,
    GroupMissing,
    JobStream,
    Settlement,
)
from fleetscale.keys import JOB_FIELD
from fleetscale.telemetry import JobRecorder, Sampler, TelemetryBuffer
from fleetscale.worker.watchdog import JobTimeout, Watchdog

log = logging.getLogger("fleetscale.worker")

SETTLE_EVERY_S = 0.05
"""Longest a finished job waits for its batch's ack, seconds."""
ADAPT_EVERY_S = 0.1
"""How often the adaptive sampler retunes N from the job rate, seconds."""
RUN_TIME_SMOOTHING = 0.1
"""EWMA weight of the newest run time in the batch-size estimate."""


@dataclass(slots=True)
class ConsumerStats:
    """Counters since the worker started (main thread writes, anyone reads)."""

    done: int = 0
    failed: int = 0
    retried: int = 0
    dead: int = 0
    lost: int = 0
    deleted_seen: int = 0


@dataclass(frozen=True, slots=True)
class Failure:
    """Why a run did not succeed, and whether another attempt could."""

    reason: str
    traceback: str
    retriable: bool


class Consumer:
    """Runs one worker's jobs (see the module docstring).

    Args:
        app: the registered tasks; nothing else ever runs.
        stream: the fleet's job stream on a client whose timeout covers `block_ms`.
        worker_id: this worker's consumer name.
        settings: worker settings.
        clock: Redis time, for queue waits.
        buffer: where telemetry goes; None turns telemetry off.
        watchdog: enforces task time limits; None leaves them unenforced.
    """

    def __init__(
        self,
        *,
        app: App,
        stream: JobStream,
        worker_id: str,
        settings: WorkerSettings,
        clock: RedisTimeEstimate,
        buffer: TelemetryBuffer | None,
        watchdog: Watchdog | None,
        rng: random.Random | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.stream = stream
        self.worker_id = worker_id
        self.settings = settings
        self.clock = clock
        self.buffer = buffer
        self.watchdog = watchdog
        self.rng = rng or random.Random()
        self.monotonic = monotonic
        self.sampler = Sampler(settings.sample_every, settings.target_samples_per_s, self.rng)
        self.recorder = JobRecorder(buffer, self.sampler, clock) if buffer is not None else None
        self.stats = ConsumerStats()
        self.draining = False
        self.wake = threading.Event()
        self.held_lock = threading.Lock()
        self.held: set[EntryId] = set()
        self.lost: set[EntryId] = set()
        self.mean_run_s = 0.0
        self._tasks = app.tasks
        self._renew_every_s = settings.renew_every_s
        self._unsettled = Settlement()
        self._dead_kept = 0
        self._unstarted: list[Delivery] = []
        self._reclaim_cursor: EntryId = b"0-0"
        self._next_reclaim_s = 0.0
        self._adapt_from = (monotonic(), 0)

    # -- the loop ----------------------------------------------------------------------

    def run(self) -> None:
        """Run turns until `drain()`; in burst mode, until the stream is drained."""
        backoff = Backoff(self.rng)
        while not self.draining:
            try:
                handled = self.run_once()
                if handled == 0 and self.settings.burst and not self._run_last_look():
                    break
            except FleetscaleError as exc:
                pause = backoff.next_pause_s()
                log.warning("%s; retrying in %.1fs", exc, pause)
                self.wake.wait(pause)
                continue
            backoff.reset()
        self.finish()

    def drain(self) -> None:
        """Stop taking jobs; `run` finishes what it holds and returns (signal-safe)."""
        self.draining = True
        self.wake.set()

    def finish(self) -> None:
        """Settle what is left, trying a few times while Redis is away."""
        for attempt in range(5):
            try:
                self._settle()
                return
            except FleetscaleError as exc:
                log.warning("final settle failed (%s); try %d of 5", exc, attempt + 1)
                time.sleep(0.2 * 2**attempt)

    def settle_finished(self) -> None:
        """Acknowledge, retry or dead-letter the jobs finished so far, now; log a Redis
        failure, never raise.

        For the watchdog's hard exit (housekeeper thread), while the main thread is
        stuck in a task: a finished job's ack waits up to `SETTLE_EVERY_S` for the
        rest of its batch, and a worker exiting first left it pending, to run again.
        """
        try:
            self._settle()
        except FleetscaleError as exc:
            log.warning("could not settle the finished jobs before exiting: %s", exc)

    def run_once(self) -> int:
        """One turn: settle leftovers, fetch or reclaim a batch, run it, settle it.

        Returns the number of entries handled. Raises FleetscaleError when Redis
        fails; what was finished stays queued for the next settle, and what was not
        started yet is run by the next turn.
        """
        self._settle()
        deliveries = self._resumed() or self._next_deliveries()
        if deliveries:
            self._run_batch(deliveries)
        return len(deliveries)

    def _resumed(self) -> list[Delivery]:
        """The rest of a batch that a Redis error interrupted, checked still ours.

        Dropping it would strand it: the housekeeper renews the lease of every held
        entry, so no worker could ever reclaim it. Raises FleetscaleError while Redis
        is still away (the entries wait for the next turn).
        """
        if not self._unstarted:
            return []
        self._verify_owned(self._unstarted)
        deliveries, self._unstarted = self._unstarted, []
        return deliveries

    def batch_size(self) -> int:
        """How many entries to fetch: those the worker can start within the window."""
        if self.mean_run_s <= 0:
            return 1
        fits = int(self.settings.prefetch_window_s / self.mean_run_s)
        return max(1, min(self.settings.max_batch, fits))

    def _next_deliveries(self) -> list[Delivery]:
        now = self.monotonic()
        if not self._unsettled:  # else it holds dead letters kept back since then
            self._unsettled.held_since_s = now
        if now >= self._next_reclaim_s:
            reclaimed = self._reclaim()
            # A full batch may leave more abandoned entries: look again next turn.
            full = len(reclaimed) == self.batch_size()
            self._next_reclaim_s = now + (0.0 if full else self.settings.reclaim_period_s)
            if reclaimed:
                return reclaimed
        block_ms = (
            min(self.settings.block_ms, 100) if self.settings.burst else self.settings.block_ms
        )
        return self.stream.fetch(self.worker_id, self.batch_size(), block_ms)

    def _reclaim(self) -> list[Delivery]:
        # A batch as big as a fetch: claiming more would hide them from idle workers
        # (their leases are renewed) while this one runs them one after another.
        result = self.stream.reclaim(
            self.worker_id,
            int(self.settings.min_idle_s * 1000),
            self._reclaim_cursor,
            self.batch_size(),
        )
        self._reclaim_cursor = result.cursor
        if result.deleted:
            self.stats.deleted_seen += len(result.deleted)
            log.error(
                "%d pending entries were deleted from the stream before they ran (lost "
                "jobs, recorded in the fleet's lost stream): %s",
                len(result.deleted),
                b", ".join(result.deleted[:5]).decode(),
            )
        if result.deliveries:
            log.info("reclaimed %d abandoned entries", len(result.deliveries))
        return result.deliveries

    def _run_last_look(self) -> int:
        """Burst mode's last look before leaving: run what a reclaim finds now; return
        how many entries that was."""
        reclaimed = self._reclaim()
        if reclaimed:
            self._run_batch(reclaimed)
        return len(reclaimed)

    # -- one batch ---------------------------------------------------------------------

    def _run_batch(self, deliveries: list[Delivery]) -> None:
        with self.held_lock:
            self.held.update(d.entry_id for d in deliveries)
        now = verified_at = self.monotonic()
        settle_at = now + SETTLE_EVERY_S
        index = 0
        try:
            for index, delivery in enumerate(deliveries):
                now = self.monotonic()
                if now - verified_at >= self._renew_every_s:
                    # Held this long (a slow batch, or the process was paused): another
                    # worker may have claimed the rest; find out before running them.
                    self._verify_owned(deliveries[index:])
                    verified_at = now = self.monotonic()
                if now >= settle_at:
                    self._settle()
                    settle_at = now + SETTLE_EVERY_S
                self._handle(delivery, now)
        except FleetscaleError:
            self._unstarted = deliveries[index:]  # Redis failed before this one started
            raise
        self._settle()
        if self.recorder is not None:
            self.recorder.commit(self.monotonic())
            self._adapt_sampler(len(deliveries))

    def _verify_owned(self, deliveries: list[Delivery]) -> None:
        ids = [d.entry_id for d in deliveries]
        lost = self.stream.renew(self.worker_id, ids, touch=self.settings.renew_leases)
        if lost:
            self.mark_lost(lost)

    def _handle(self, delivery: Delivery, now: float) -> None:
        if self.lost and delivery.entry_id in self.lost:
            self._forget([delivery.entry_id])
            return
        if self._dead_kept and delivery.entry_id in self.kept_ids():
            return  # reclaimed by this worker while kept (it was paused): one letter
        try:
            job = decode_job(delivery.fields, self.settings.max_payload_bytes)
        except MalformedJob as exc:
            self._dead(delivery, exc.reason, "", delivery.deliveries)
            return
        task = self._tasks.get(job.task)
        if task is None:
            self._dead(delivery, f"unknown task {job.task!r}", "", delivery.deliveries, job)
            return
        attempt = job.prior_attempts + delivery.deliveries + (not delivery.charged)
        if attempt > task.options.max_attempts:
            reason = (
                f"gave up after {attempt - 1} attempts (max_attempts="
                f"{task.options.max_attempts}); the last ended without a result"
            )
            self._dead(delivery, reason, "", attempt - 1, job)
            return
        if not delivery.charged and not self.stream.charge(self.worker_id, delivery.entry_id):
            # Claimed by another worker since this one reclaimed it: not ours to run.
            self.mark_lost([delivery.entry_id])
            self._forget([delivery.entry_id])
            return
        self._execute(delivery, job, task, attempt, now)

    def _execute(
        self, delivery: Delivery, job: Job, task: Task[Any, Any], attempt: int, started: float
    ) -> None:
        recorder = self.recorder
        if recorder is not None:
            recorder.running_since = started  # busy from here on
            if recorder.sample_weight:
                recorder.start_sample(started, delivery.entry_id)
        failure = self._call(task, job, started)
        run_s = self.monotonic() - started
        # The first run sets the estimate: smoothing from 0 would make the first
        # batches prefetch up to ten times what the window allows.
        weight = RUN_TIME_SMOOTHING if self.mean_run_s else 1.0
        self.mean_run_s += weight * (run_s - self.mean_run_s)
        if recorder is not None:
            recorder.finish(run_s)
        if failure is None:
            self.stats.done += 1
            self._unsettled.acks.append(delivery.entry_id)
            return
        self.stats.failed += 1
        if failure.retriable and attempt < task.options.max_attempts:
            self._retry(delivery, job, attempt, failure)
        else:
            self._dead(delivery, failure.reason, failure.traceback, attempt, job)

    def _call(self, task: Task[Any, Any], job: Job, started: float) -> Failure | None:
        watchdog = self.watchdog
        if watchdog is not None:
            watchdog.arm(task.options.timeout_s, started)
        try:
            try:
                result = task.fn(*job.args, **job.kwargs)
            finally:
                # Inside the outer try: the alarm may land after the task returned and
                # before the watchdog knows it; that is a timeout too, not a crash.
                if watchdog is not None:
                    watchdog.disarm()
        except JobTimeout as exc:
            if watchdog is not None:
                # The alarm may have cut the disarm above short: armed, this job's
                # deadline made the watchdog end the worker later, idle or mid-job.
                watchdog.disarm()
            return Failure(f"JobTimeout: {exc}", traceback.format_exc(), retriable=True)
        except BaseException as exc:
            # BaseException: a task's own SystemExit or KeyboardInterrupt (the worker's
            # signals only set flags) is that job's failure. Escaping, it ended the worker
            # with its finished jobs unacknowledged and the rest of its batch stranded.
            if isinstance(exc, TypeError) and not task.accepts(job.args, job.kwargs):
                return Failure(f"arguments do not fit task {task.name!r}: {exc}", "", False)
            return Failure(f"{type(exc).__name__}: {exc}", traceback.format_exc(), True)
        return _unrun_work(task, result)

    def _retry(self, delivery: Delivery, job: Job, attempt: int, failure: Failure) -> None:
        base = min(self.settings.retry_cap_s, self.settings.retry_base_s * 2 ** (attempt - 1))
        delay_s = base * (0.5 + 0.5 * self.rng.random())
        again = job._replace(prior_attempts=attempt)
        try:
            payload = encode_job(again, max_bytes=2**62)
        except SubmitError as exc:
            # Only a hand-made entry fails here (a keyword name that is not a str): it
            # would fail again. Escaping, the error was taken for a Redis failure, and
            # the job ran again and again without ever being settled.
            reason = f"{failure.reason} (not retried: {exc})"
            self._dead(delivery, reason, failure.traceback, attempt, job)
            return
        self._unsettled.retries.append((delivery.entry_id, int(delay_s * 1000), payload))
        self.stats.retried += 1
        log.info("job %s attempt %d failed (%s); retry in %.1fs", job.job_id, attempt,
                 failure.reason, delay_s)  # fmt: skip

    def _dead(
        self, delivery: Delivery, reason: str, tb: str, attempts: int, job: Job | None = None
    ) -> None:
        job_id, task = (job.job_id, job.task) if job else peek_identity(delivery.fields)
        raw = delivery.fields.get(JOB_FIELD)
        if raw is None:
            raw = repr(delivery.fields).encode()
        letter = DeadLetter(delivery.entry_id, raw, reason, tb, attempts, job_id, task)
        self._unsettled.dead.append(letter)
        self.stats.dead += 1
        log.warning("dead-lettered entry %s (job %r): %s", delivery.entry_id.decode(),
                    job_id, reason)  # fmt: skip

    def _settle(self) -> None:
        settlement = self._unsettled
        if not settlement:
            return
        # Another worker can claim an entry only once it has been idle for its
        # min_idle; until half of ours has passed since the fetch was sent, the
        # entries are certainly still ours (a paused process counts the pause too).
        held_s = self.monotonic() - settlement.held_since_s
        check = held_s >= self.settings.min_idle_s / 2
        kept: list[DeadLetter] = []
        try:
            lost = self.stream.settle(self.worker_id, settlement, check_owner=check)
        except GroupMissing as exc:
            # Settling again would fail forever: what it held went with the group.
            log.error("%s; %d finished entries cannot be acknowledged", exc, len(settlement))
            lost = []
        except DeadLetterKeyWrongType as exc:
            # One claimed by another worker since is its to dead-letter.
            kept = [d for d in settlement.dead if d.entry_id not in self.lost]
            lost = self._settle_keeping_dead(settlement, check, exc)
        if self._dead_kept and not kept:
            log.warning("dead-lettered the %d jobs kept back", self._dead_kept)
        self._dead_kept = len(kept)
        self._unsettled = Settlement(held_since_s=settlement.held_since_s, dead=kept)
        self.stats.lost += len(set(lost) - self.lost)
        if kept:
            kept_ids = {d.entry_id for d in kept}
            self._forget([i for i in settlement.entry_ids() if i not in kept_ids])
        else:  # the common case: no list built again, an id at a time
            self._forget(settlement.entry_ids())
        if lost:
            log.warning(
                "%d entries were claimed by another worker before this one finished; "
                "left them to it: %s",
                len(lost),
                b", ".join(lost[:5]).decode(),
            )

    def _settle_keeping_dead(
        self, settlement: Settlement, check: bool, exc: DeadLetterKeyWrongType
    ) -> list[EntryId]:
        """Settle all but the dead letters, which the dead-letter key cannot take.

        They stay pending and held (their leases renewed, even with lease renewal
        off: see `kept_ids`; never run again), and each settle tries them again: a job
        is neither lost nor run past its last attempt, and the worker goes on with the
        rest. Returns the entries found lost.
        """
        if len(settlement.dead) > self._dead_kept:  # an error line only when more are kept
            log.error(
                "%s; the worker keeps %d jobs to dead-letter pending (entries %s) and "
                "dead-letters them once it can",
                exc,
                len(settlement.dead),
                b", ".join(d.entry_id for d in settlement.dead[:5]).decode(),
            )
        rest = Settlement(settlement.held_since_s, settlement.acks, settlement.retries)
        return self.stream.settle(self.worker_id, rest, check_owner=check) if rest else []

    def _adapt_sampler(self, handled: int) -> None:
        since, count = self._adapt_from
        count += handled
        now = self.monotonic()
        if now - since >= ADAPT_EVERY_S:
            self.sampler.adapt(count, now - since)
            self._adapt_from = (now, 0)
        else:
            self._adapt_from = (since, count)

    # -- for the housekeeper -----------------------------------------------------------

    def held_ids(self) -> list[EntryId]:
        """Entries fetched and not yet settled (any thread)."""
        with self.held_lock:
            return list(self.held)

    def kept_ids(self) -> list[EntryId]:
        """Entries kept pending because the dead-letter key could not take them (any
        thread). They wait as long as the key stays wrong, far past `min_idle_s`:
        their leases must be renewed even with lease renewal off, or a reclaim would
        run them again."""
        return [d.entry_id for d in self._unsettled.dead[: self._dead_kept]]

    def mark_lost(self, entry_ids: list[EntryId]) -> None:
        """Entries no longer this worker's: do not run or ack them (any thread).

        Ids settled since the caller looked are ignored.
        """
        with self.held_lock:
            lost = (set(entry_ids) & self.held) - self.lost
            self.stats.lost += len(lost)
            self.lost.update(lost)
        if lost:
            log.warning("worker %s: another worker claimed %d held entries; leaving them",
                        self.worker_id, len(lost))  # fmt: skip

    def _forget(self, entry_ids: list[EntryId]) -> None:
        with self.held_lock:
            self.held.difference_update(entry_ids)
            self.lost.difference_update(entry_ids)


def _unrun_work(task: Task[Any, Any], result: object) -> Failure | None:
    """A failure if `task` returned work that runs only when awaited or iterated (a
    coroutine, a generator): the task did nothing, and calling it again would not help.

    A coroutine or generator is closed: it never runs, and Python does not warn that a
    coroutine was never awaited.
    """
    kind = deferred_kind(result)
    if kind is None:
        return None
    if inspect.iscoroutine(result) or inspect.isgenerator(result):
        result.close()
    return Failure(
        f"task {task.name!r} returned {kind}, which does nothing until awaited or "
        "iterated; workers run plain functions: await it with asyncio.run (or iterate "
        "it) inside the task",
        "",
        retriable=False,
    )
