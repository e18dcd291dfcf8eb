"""The checker: what happened to every job, from the ledger alone (plus the dead letters).

- `lost`: acknowledged to its producer, never done and not dead-lettered.
- `duplicated`: done more than once.
- `unexpected`: run although never submitted, or although its submission failed.
- `recovered`: submission indeterminate (a timeout), yet it ran.
- `dead_lettered`: submitted and found in the dead-letter stream.

A job is "done" when its task wrote `done`: the side effect happened. The ledger's wait
of a job is its first `start` minus the moment just before its `submit` call.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from fleetscale.sim.report import nearest_rank
from tests.faults.ledger import (
    ACKNOWLEDGED,
    DONE,
    FAILED,
    INDETERMINATE,
    START,
    SUBMITTED,
    Record,
)


@dataclass
class JobHistory:
    """Everything the ledger says about one job."""

    outcome: str | None = None
    submitted_s: float | None = None
    starts: list[Record] = field(default_factory=list)
    dones: list[Record] = field(default_factory=list)


def histories(records: Iterable[Record]) -> dict[str, JobHistory]:
    """Group ledger records by job key."""
    jobs: dict[str, JobHistory] = defaultdict(JobHistory)
    for r in records:
        job = jobs[r.key]
        if r.kind == SUBMITTED:
            job.submitted_s = r.wall_s
        elif r.kind in (ACKNOWLEDGED, FAILED, INDETERMINATE):
            job.outcome = r.kind
        elif r.kind == START:
            job.starts.append(r)
        elif r.kind == DONE:
            job.dones.append(r)
    return dict(jobs)


@dataclass(frozen=True, slots=True)
class Verdict:
    """The checker's counts for one run (see the module docstring)."""

    acknowledged: int
    failed: int
    indeterminate: int
    lost: int
    duplicated: int
    unexpected: int
    recovered: int
    dead_lettered: int
    wait_p99_s: float | None
    lost_keys: tuple[str, ...]
    duplicated_keys: tuple[str, ...]
    unexpected_keys: tuple[str, ...]


def _sample(keys: Iterable[str], limit: int = 10) -> tuple[str, ...]:
    return tuple(sorted(keys)[:limit])


def ledger_wait_p99_s(jobs: dict[str, JobHistory]) -> float | None:
    """p99 of first start minus submission, over acknowledged jobs that started."""
    waits = sorted(
        min(s.wall_s for s in job.starts) - job.submitted_s
        for job in jobs.values()
        if job.outcome == ACKNOWLEDGED and job.starts and job.submitted_s is not None
    )
    return nearest_rank(waits, 0.99) if waits else None


def check(jobs: dict[str, JobHistory], dead_keys: set[str]) -> Verdict:
    """Count what happened to every job of a run.

    Args:
        jobs: the ledger, by job key (see `histories`).
        dead_keys: keys of the jobs found in the dead-letter stream.
    """
    by_outcome: dict[str | None, set[str]] = defaultdict(set)
    for key, job in jobs.items():
        by_outcome[job.outcome].add(key)
    ran = {k for k, j in jobs.items() if j.starts or j.dones}
    done = {k for k, j in jobs.items() if j.dones}
    lost = by_outcome[ACKNOWLEDGED] - done - dead_keys
    duplicated = {k for k, j in jobs.items() if len(j.dones) > 1}
    unexpected = ran - by_outcome[ACKNOWLEDGED] - by_outcome[INDETERMINATE]
    unexpected |= dead_keys - by_outcome[ACKNOWLEDGED] - by_outcome[INDETERMINATE]
    submitted = by_outcome[ACKNOWLEDGED] | by_outcome[INDETERMINATE]
    return Verdict(
        acknowledged=len(by_outcome[ACKNOWLEDGED]),
        failed=len(by_outcome[FAILED]),
        indeterminate=len(by_outcome[INDETERMINATE]),
        lost=len(lost),
        duplicated=len(duplicated),
        unexpected=len(unexpected),
        recovered=len(by_outcome[INDETERMINATE] & (done | dead_keys)),
        dead_lettered=len(dead_keys & submitted),
        wait_p99_s=ledger_wait_p99_s(jobs),
        lost_keys=_sample(lost),
        duplicated_keys=_sample(duplicated),
        unexpected_keys=_sample(unexpected),
    )


def unexplained_duplicates(jobs: dict[str, JobHistory], faulted_pids: set[int]) -> list[str]:
    """Duplicated jobs with more than one run by a worker that was not faulted.

    A worker that was killed, paused or cut off may have done a job without its ack
    reaching Redis; the job then runs again elsewhere. Any other repeat is unexplained.
    """
    return sorted(
        key
        for key, job in jobs.items()
        if len(job.dones) > 1 and sum(d.pid not in faulted_pids for d in job.dones) > 1
    )
