"""Dead letters: list them with their reasons, replay them, purge them.

A dead letter keeps the job's raw `j` field as it was in the stream, so a replay sends
exactly the job that failed, with its attempt count reset. Replay adds the job and
removes the letter in one transaction: a replay interrupted half-way never duplicates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from fleetscale.codec import Job, MalformedJob, decode_job, encode_job
from fleetscale.keys import JOB_FIELD, FleetKeys
from fleetscale.store import Client, StreamEntry, redis_errors, stream_range

_REPLAY_BYTES = 2**62


@dataclass(frozen=True, slots=True)
class Letter:
    """One dead letter, as `dlq list --json` shows it."""

    id: str
    job_id: str
    task: str
    reason: str
    attempts: int
    at_ms: int
    entry_id: str
    traceback: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return asdict(self)


def _text(fields: dict[bytes, bytes], name: str) -> str:
    return fields.get(name.encode(), b"").decode("utf-8", "replace")


def _letter(entry_id: bytes, fields: dict[bytes, bytes]) -> Letter:
    return Letter(
        id=entry_id.decode(),
        job_id=_text(fields, "job_id"),
        task=_text(fields, "task"),
        reason=_text(fields, "reason"),
        attempts=int(fields.get(b"attempts", b"0") or 0),
        at_ms=int(fields.get(b"at_ms", b"0") or 0),
        entry_id=_text(fields, "entry_id"),
        traceback=_text(fields, "traceback"),
    )


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """What a replay did."""

    replayed: list[str]
    skipped: dict[str, str]


class DeadLetters:
    """The dead-letter stream of one fleet."""

    def __init__(self, client: Client, keys: FleetKeys, url: str) -> None:
        self.client = client
        self.keys = keys
        self.url = url

    def count(self) -> int:
        """How many dead letters there are."""
        with redis_errors(self.url):
            return int(self.client.xlen(self.keys.dlq))

    def _range(self, first: str = "-", last: str = "+", limit: int = 100) -> list[StreamEntry]:
        with redis_errors(self.url):
            return stream_range(self.client, self.keys.dlq, limit, first=first, last=last)

    def list(self, limit: int = 100) -> list[Letter]:
        """The oldest `limit` dead letters."""
        return [_letter(eid, fields) for eid, fields in self._range(limit=limit)]

    def replay(self, ids: Sequence[str] = (), limit: int = 1000) -> ReplayResult:
        """Send dead letters back to the stream as fresh jobs (all, or only `ids`).

        Letters whose job cannot be decoded are left in place and reported in `skipped`.
        """
        if ids:
            entries = [(i, self._get(i)) for i in ids]
        else:
            entries = [(e.decode(), f) for e, f in self._range(limit=limit)]
        replayed: list[str] = []
        skipped: dict[str, str] = {}
        for letter_id, fields in entries:
            if fields is None:
                skipped[letter_id] = "no such dead letter"
                continue
            try:
                job = decode_job({JOB_FIELD: fields.get(JOB_FIELD, b"")}, _REPLAY_BYTES)
            except MalformedJob as exc:
                skipped[letter_id] = f"cannot replay: {exc.reason}"
                continue
            fresh = Job(job.job_id, job.task, job.args, job.kwargs, prior_attempts=0)
            with redis_errors(self.url):
                pipe = self.client.pipeline(transaction=True)
                pipe.xadd(self.keys.jobs, {JOB_FIELD: encode_job(fresh, _REPLAY_BYTES)})
                pipe.xdel(self.keys.dlq, letter_id)
                pipe.execute()
            replayed.append(letter_id)
        return ReplayResult(replayed, skipped)

    def _get(self, letter_id: str) -> dict[bytes, bytes] | None:
        found = self._range(letter_id, letter_id, limit=1)
        return found[0][1] if found else None

    def purge(self) -> int:
        """Delete every dead letter; return how many there were."""
        with redis_errors(self.url):
            pipe = self.client.pipeline(transaction=True)
            pipe.xlen(self.keys.dlq)
            pipe.delete(self.keys.dlq)
            count, _ = pipe.execute()
        return int(count)
