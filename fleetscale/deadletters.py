"""Dead letters: list them with their reasons, replay them, purge them.

A dead letter keeps the job's raw `j` field as it was in the stream, so a replay sends
exactly the job that failed, with its attempt count reset. Replay adds the job and
removes the letter in one transaction: a replay interrupted half-way never duplicates.
Replaying all letters walks the stream in chunks, up to the newest letter there was when
it started, so letters that fail again while it runs are left for the next replay.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from fleetscale.codec import Job, MalformedJob, decode_job, encode_job
from fleetscale.errors import ConfigurationError
from fleetscale.keys import JOB_FIELD, FleetKeys
from fleetscale.store import Client, StreamEntry, redis_errors, script, stream_range

_REPLAY_BYTES = 2**62
_LETTER_ID = re.compile(r"^([0-9]+)-([0-9]+)$")
REPLAY_CHUNK = 1000


def validate_letter_id(letter_id: str) -> str:
    """Return `letter_id` if it is a stream ID, `<ms>-<seq>` (as `dlq list` shows).

    Raises:
        ConfigurationError: naming the ID, for anything else.
    """
    match = _LETTER_ID.match(letter_id)
    if match is None or any(int(part) >= 2**64 for part in match.groups()):
        raise ConfigurationError(
            f"bad dead-letter id {letter_id!r}: use an id as `dlq list` shows it, "
            "<ms>-<seq>, e.g. 1700000000000-0"
        )
    return letter_id


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

    replayed: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


class DeadLetters:
    """The dead-letter stream of one fleet."""

    def __init__(self, client: Client, keys: FleetKeys, url: str) -> None:
        self.client = client
        self.keys = keys
        self.url = url
        self._replay = script(client, "replay")

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

    def replay(self, ids: Sequence[str] = (), chunk: int = REPLAY_CHUNK) -> ReplayResult:
        """Send dead letters back to the stream as fresh jobs (all, or only `ids`).

        All means every letter there is when the replay starts, read `chunk` at a time.
        Letters whose job cannot be decoded are left in place and reported in `skipped`.

        Raises:
            ConfigurationError: an id is not a stream ID (nothing is replayed then).
        """
        result = ReplayResult()
        if ids:
            checked = [validate_letter_id(i) for i in ids]
            self._replay_entries(((i, self._get(i)) for i in checked), result)
        else:
            self._replay_all(chunk, result)
        return result

    def _replay_all(self, chunk: int, result: ReplayResult) -> None:
        """Replay every letter up to the newest one now, `chunk` at a time.

        Each chunk starts after the last letter read (replayed or skipped), so skipped
        letters are read once and every turn moves on.
        """
        newest = self._newest_id()
        first = "-"
        while newest is not None and (entries := self._range(first, newest, limit=chunk)):
            self._replay_entries(((e.decode(), f) for e, f in entries), result)
            first = "(" + entries[-1][0].decode()

    def _newest_id(self) -> str | None:
        with redis_errors(self.url):
            newest = stream_range(self.client, self.keys.dlq, 1, newest_first=True)
        return newest[0][0].decode() if newest else None

    def _replay_entries(
        self, entries: Iterable[tuple[str, dict[bytes, bytes] | None]], result: ReplayResult
    ) -> None:
        """Replay each `(letter id, fields)`; record it in `result`."""
        for letter_id, fields in entries:
            if fields is None:
                result.skipped[letter_id] = "no such dead letter"
                continue
            try:
                job = decode_job({JOB_FIELD: fields.get(JOB_FIELD, b"")}, _REPLAY_BYTES)
            except MalformedJob as exc:
                result.skipped[letter_id] = f"cannot replay: {exc.reason}"
                continue
            fresh = Job(job.job_id, job.task, job.args, job.kwargs, prior_attempts=0)
            streams = [self.keys.jobs, self.keys.dlq]
            payload = encode_job(fresh, _REPLAY_BYTES)
            with redis_errors(self.url):
                moved = self._replay(keys=streams, args=[letter_id, payload])
            if int(moved):
                result.replayed.append(letter_id)
            else:
                result.skipped[letter_id] = "no such dead letter (replayed or purged meanwhile)"

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
