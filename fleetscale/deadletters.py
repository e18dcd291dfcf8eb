"""Dead letters: list them with their reasons, replay them, purge them.

A dead letter keeps the job's raw `j` field as it was in the stream, so a replay sends
exactly the job that failed, with its attempt count reset. Replay adds the job and
removes the letter in one transaction: a replay interrupted half-way never duplicates.
Replaying all letters walks the stream in chunks, up to the newest letter there was when
it started, so letters that fail again while it runs are left for the next replay. A
purge, likewise, deletes only up to the newest letter it was shown.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import redis

from fleetscale.codec import MalformedJob, decode_job, encode_job, peek_identity
from fleetscale.errors import ConfigurationError
from fleetscale.jobstream import DeadLetterKeyWrongType
from fleetscale.keys import FleetKeys
from fleetscale.store import Client, StreamEntry, redis_errors, script, stream_range

_REPLAY_BYTES = 2**62
_LETTER_ID = re.compile(r"^([0-9]+)-([0-9]+)$")
REPLAY_CHUNK = 1000


NOT_FOUND = "no such dead letter"
"""How a replay's reason for skipping a letter begins when the letter is not there."""


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


def _number(fields: dict[bytes, bytes], name: str) -> int:
    """The field as an integer; 0 when absent or not one (a letter written by hand)."""
    try:
        return int(fields.get(name.encode(), b"0"))
    except ValueError:
        return 0


def _letter(entry_id: bytes, fields: dict[bytes, bytes]) -> Letter:
    """The letter of one entry; whatever its fields hold, it is listed, never refused:
    a letter without `job_id` or `task` shows those of its job, when it has one."""
    job_id, task = _text(fields, "job_id"), _text(fields, "task")
    if not (job_id and task):
        peeked = peek_identity(fields)
        job_id, task = job_id or peeked[0], task or peeked[1]
    return Letter(
        id=entry_id.decode(),
        job_id=job_id,
        task=task,
        reason=_text(fields, "reason"),
        attempts=_number(fields, "attempts"),
        at_ms=_number(fields, "at_ms"),
        entry_id=_text(fields, "entry_id"),
        traceback=_text(fields, "traceback"),
    )


def _after(letter_id: str) -> str:
    """The smallest stream ID above `letter_id` (`<ms>-<seq>`)."""
    ms, seq = (int(part) for part in letter_id.split("-"))
    return f"{ms}-{seq + 1}" if seq < 2**64 - 1 else f"{ms + 1}-0"


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

    @contextmanager
    def _redis(self) -> Iterator[None]:
        """`redis_errors`, naming the dead-letter key when it is not a stream."""
        with redis_errors(self.url):
            try:
                yield
            except redis.ResponseError as exc:
                if "WRONGTYPE" in str(exc):
                    kind = self.client.type(self.keys.dlq)
                    kind = kind.decode() if isinstance(kind, bytes) else str(kind)
                    if kind != "stream":
                        raise DeadLetterKeyWrongType(self.keys.dlq, kind) from None
                raise

    def count(self) -> int:
        """How many dead letters there are: 0 when the dead-letter key is not a stream
        (it holds none; `status` and the leader's decisions go on, while workers and
        `dlq list` name the key to fix)."""
        with redis_errors(self.url):
            try:
                return int(self.client.xlen(self.keys.dlq))
            except redis.ResponseError as exc:
                if "WRONGTYPE" not in str(exc):
                    raise
                return 0

    def _range(self, first: str = "-", last: str = "+", limit: int = 100) -> list[StreamEntry]:
        with self._redis():
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
        for letter_id, skipped in self.replay_each(ids, chunk):
            if skipped is None:
                result.replayed.append(letter_id)
            else:
                result.skipped[letter_id] = skipped
        return result

    def replay_each(
        self, ids: Sequence[str] = (), chunk: int = REPLAY_CHUNK
    ) -> Iterator[tuple[str, str | None]]:
        """`replay`, one letter at a time: yields `(letter id, why it was skipped)`, None
        for a letter replayed. Stopping part-way (an error, Ctrl-C) leaves each letter
        either replayed or still a dead letter, never both."""
        if ids:
            checked = [validate_letter_id(i) for i in ids]
            yield from self._replay_entries((i, self._get(i)) for i in checked)
        else:
            yield from self._replay_all(chunk)

    def _replay_all(self, chunk: int) -> Iterator[tuple[str, str | None]]:
        """Replay every letter up to the newest one now, `chunk` at a time.

        Each chunk starts after the last letter read (replayed or skipped), so skipped
        letters are read once and every turn moves on.
        """
        newest = self.newest_id()
        first = "-"
        while newest is not None and (entries := self._range(first, newest, limit=chunk)):
            yield from self._replay_entries((e.decode(), f) for e, f in entries)
            first = "(" + entries[-1][0].decode()

    def newest_id(self) -> str | None:
        """The ID of the newest dead letter; None when there is none."""
        with self._redis():
            newest = stream_range(self.client, self.keys.dlq, 1, newest_first=True)
        return newest[0][0].decode() if newest else None

    def _replay_entries(
        self, entries: Iterable[tuple[str, dict[bytes, bytes] | None]]
    ) -> Iterator[tuple[str, str | None]]:
        """Replay each `(letter id, fields)`; yield it with why it was skipped, or None."""
        for letter_id, fields in entries:
            if fields is None:
                yield letter_id, NOT_FOUND
                continue
            try:
                job = decode_job(fields, _REPLAY_BYTES)
            except MalformedJob as exc:
                yield letter_id, f"cannot replay: {exc.reason}"
                continue
            fresh = job._replace(prior_attempts=0)
            streams = [self.keys.jobs, self.keys.dlq]
            payload = encode_job(fresh, _REPLAY_BYTES)
            with self._redis():
                moved = self._replay(keys=streams, args=[letter_id, payload])
            gone = f"{NOT_FOUND} (replayed or purged meanwhile)"
            yield letter_id, None if int(moved) else gone

    def _get(self, letter_id: str) -> dict[bytes, bytes] | None:
        found = self._range(letter_id, letter_id, limit=1)
        return found[0][1] if found else None

    def purge(self, through: str | None = None) -> int:
        """Delete every dead letter up to `through` (`newest_id()` when the user was
        asked, so letters that arrive meanwhile stay; None: up to the newest); return how
        many were deleted."""
        through = through or self.newest_id()
        if through is None:
            return 0
        with self._redis():
            return int(self.client.xtrim(self.keys.dlq, minid=_after(through), approximate=False))

    def purge_ids(self, ids: Sequence[str]) -> tuple[str, ...]:
        """Delete the dead letters `ids`, in one round trip; return those that were not
        there.

        Raises:
            ConfigurationError: an id is not a stream ID (nothing is deleted then).
        """
        checked = [validate_letter_id(i) for i in ids]
        pipe = self.client.pipeline(transaction=False)
        for letter_id in checked:
            pipe.xdel(self.keys.dlq, letter_id)
        with self._redis():
            deleted = pipe.execute()
        return tuple(i for i, count in zip(checked, deleted, strict=True) if not int(count))
