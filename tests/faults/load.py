"""Producers for the fault suite: submit jobs with unique keys and note every outcome.

Each submission is noted `submitted` before the call and `acknowledged`, `failed` or
`indeterminate` after it. A definite refusal (backpressure, an oversized job, Redis
out of memory, an ACL refusal) is `failed`: the job must never run. A timeout or a lost
connection is `indeterminate`: the job may or may not have reached Redis.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from fleetscale.errors import FleetscaleError, RedisAuthError, RedisCommandError, SubmitError
from fleetscale.producer import Producer
from tests.faults.ledger import ACKNOWLEDGED, FAILED, INDETERMINATE, SUBMITTED, ProducerLedger

DEFINITE = (SubmitError, RedisCommandError, RedisAuthError)
"""Errors after which the job certainly is not in Redis."""


def outcome_of(exc: FleetscaleError) -> str:
    """The ledger kind for a submission that raised `exc`."""
    return FAILED if isinstance(exc, DEFINITE) else INDETERMINATE


@dataclass
class Submitter:
    """Submits single jobs through one `Producer`, noting each in the ledger.

    Args:
        producer: the producer (its own connection).
        ledger: where outcomes go.
        explicit_ids: pass the key as `job_id` too (the idempotent path), else let the
            producer generate ids (plain XADD).
    """

    producer: Producer
    ledger: ProducerLedger
    explicit_ids: bool = False
    errors: list[str] = field(default_factory=list)

    def submit(self, task: str, key: str, args: Sequence[Any] = (), *, delay_s: float = 0.0) -> str:
        """Submit `task(key, *args)` (after `delay_s`); return the ledger outcome."""
        self.ledger.note(SUBMITTED, key)
        job_id = key if self.explicit_ids else None
        try:
            self.producer.submit(task, (key, *args), job_id=job_id, delay_s=delay_s)
        except FleetscaleError as exc:
            kind = outcome_of(exc)
            self.ledger.note(kind, key, f"{type(exc).__name__}: {exc}")
            self.errors.append(f"{type(exc).__name__}: {exc}")
            return kind
        self.ledger.note(ACKNOWLEDGED, key)
        return ACKNOWLEDGED


def new_submitter(
    url: str, fleet: str, ledger: ProducerLedger, *, explicit_ids: bool = False
) -> Submitter:
    """A submitter with its own producer, with the library's default timeouts."""
    producer = Producer(fleet, url)
    return Submitter(producer, ledger, explicit_ids)


class Load:
    """A thread submitting `work` jobs at a steady rate until stopped or `total` reached.

    Args:
        submitter: how jobs are submitted.
        prefix: key prefix; keys are `<prefix><n>`.
        rate_per_s: jobs per second.
        sleep_s: each job's run time, seconds.
        total: stop after this many submissions; None runs until `stop()`.
        pad_bytes: pad each job with this many bytes.
    """

    def __init__(
        self,
        submitter: Submitter,
        *,
        prefix: str,
        rate_per_s: float,
        sleep_s: float = 0.0,
        total: int | None = None,
        pad_bytes: int = 0,
    ) -> None:
        self.submitter = submitter
        self.prefix = prefix
        self.rate_per_s = rate_per_s
        self.sleep_s = sleep_s
        self.total = total
        self.pad = "x" * pad_bytes
        self.sent = 0
        self.outcomes: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"load-{prefix}", daemon=True)

    def _run(self) -> None:
        start = time.monotonic()
        while not self._stop.is_set() and (self.total is None or self.sent < self.total):
            due = int((time.monotonic() - start) * self.rate_per_s) + 1
            if self.sent >= due:
                self._stop.wait(1.0 / self.rate_per_s)
                continue
            key = f"{self.prefix}{self.sent}"
            kind = self.submitter.submit("work", key, (self.sleep_s, self.pad))
            self.outcomes[kind] = self.outcomes.get(kind, 0) + 1
            self.sent += 1

    def start(self) -> Load:
        """Start submitting; returns self."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop submitting and wait for the thread."""
        self._stop.set()
        self._thread.join()

    def finished(self) -> bool:
        """Whether the thread has ended (its `total` is submitted, or it was stopped)."""
        return not self._thread.is_alive()

    def __enter__(self) -> Load:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
