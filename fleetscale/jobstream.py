"""Redis operations on a fleet's job stream, shared by producers and workers.

Each method is one round trip (a command, a pipeline or a Lua script from
`fleetscale/lua/`) and maps Redis errors through `store.redis_errors`. Entry ids are
kept as the bytes Redis returns.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, cast

import redis
from redis.typing import EncodableT

from fleetscale.config import MIB, redact_url
from fleetscale.errors import RedisCommandError
from fleetscale.keys import GROUP, JOB_FIELD, FleetKeys
from fleetscale.store import Client, redis_errors, script

EntryId = bytes
Fields = dict[bytes, bytes]


ADD_BATCH_JOBS = 1000
ADD_BATCH_BYTES = 8 * MIB
"""A batch of `JobStream.add` holds at most this many jobs and, unless one job alone is
larger, about this many bytes: Redis runs a batch without serving other clients, and
holds its arguments twice while it runs (the command and the script's copy)."""


def batch_size(payloads: Sequence[bytes]) -> int:
    """Jobs per batch of `payloads`: `ADD_BATCH_JOBS`, or fewer when that many of the
    largest would pass `ADD_BATCH_BYTES`; at least 1."""
    largest = max(map(len, payloads), default=1)
    return max(1, min(ADD_BATCH_JOBS, ADD_BATCH_BYTES // max(largest, 1)))


def batches(payloads: Sequence[bytes]) -> Iterator[Sequence[bytes]]:
    """`payloads` cut into consecutive batches of `batch_size(payloads)` jobs."""
    step = batch_size(payloads)
    for start in range(0, len(payloads), step):
        yield payloads[start : start + step]


class Delivery(NamedTuple):
    """One stream entry handed to a worker.

    Attributes:
        entry_id: the stream entry id (its first part is the enqueue time, Redis ms).
        fields: the entry's raw fields.
        deliveries: attempts charged to it so far (Redis's delivery count): for a
            fetched entry, this delivery included; a reclaimed one is charged when a
            worker starts it.
        charged: False for a reclaimed entry: the reclaim counts no attempt, starting
            it charges one (`JobStream.charge`), so reclaiming an entry again and
            again costs nothing. The fetch that first delivered it counted one,
            started or not: a worker that dies holding a prefetched batch costs each
            of its entries an attempt (a batch holds what starts within
            `prefetch_window_s`).
    """

    entry_id: EntryId
    fields: Fields
    deliveries: int = 1
    charged: bool = True


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A job given up on, with why."""

    entry_id: EntryId
    raw: bytes
    reason: str
    traceback: str
    attempts: int
    job_id: str
    task: str


@dataclass(slots=True)
class Settlement:
    """A worker's finished entries, written back in one `settle` call.

    Attributes:
        held_since_s: when (monotonic s) the oldest of these entries was requested
            from Redis: it bounds their idle time, which decides if another worker
            could have claimed them.
        acks: entries done (success).
        retries: `(entry id, delay ms, msgpack job)` to run again after the delay.
        dead: entries to dead-letter.
    """

    held_since_s: float = 0.0
    acks: list[EntryId] = field(default_factory=list)
    retries: list[tuple[EntryId, int, bytes]] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.acks) + len(self.retries) + len(self.dead)

    def entry_ids(self) -> list[EntryId]:
        """Every entry id in this settlement."""
        return [*self.acks, *(r[0] for r in self.retries), *(d.entry_id for d in self.dead)]


@dataclass(frozen=True, slots=True)
class Reclaimed:
    """What one reclaim pass found.

    Attributes:
        cursor: where the next pass continues (`0-0` = start over).
        deliveries: entries now owned by the caller, with their delivery counts.
        deleted: entry ids that were pending but deleted from the stream (lost jobs).
    """

    cursor: EntryId
    deliveries: list[Delivery]
    deleted: list[EntryId]


class GroupMissing(RedisCommandError):
    """Raised when the consumer group has vanished with its pending entries (Redis lost
    its data); nothing held under it can be acknowledged any more."""


class DeadLetterKeyWrongType(RedisCommandError):
    """Raised when the fleet's dead-letter key holds another type than a stream (someone
    wrote it by hand), so no letter can be added to it or read from it."""

    def __init__(self, key: str, key_type: str) -> None:
        super().__init__(
            f"the dead-letter key {key} holds a {key_type}, not a stream, so no job can be "
            f"dead-lettered or listed; rename it aside (redis-cli RENAME {key} {key}.bad) "
            "or delete it, and a stream is made again at the next dead letter"
        )
        self.key = key
        self.key_type = key_type


class JobStream:
    """The job stream of one fleet, seen through one Redis client.

    Thread-safety: a redis-py client may be shared between threads; each call is
    independent. Raises `FleetscaleError` subclasses only.
    """

    def __init__(self, client: Client, keys: FleetKeys, url: str) -> None:
        self.client = client
        self.keys = keys
        self.url = url
        self._add = script(client, "add")
        self._settle = script(client, "settle")
        self._renew = script(client, "renew")
        self._reclaim = script(client, "reclaim")
        self._charge = script(client, "charge")
        self._promote = script(client, "promote")

    def ensure_group(self) -> None:
        """Create the stream and its consumer group if absent (reading from the start).

        At `maxmemory` Redis refuses XGROUP CREATE even when the group exists; a worker
        that finds the group there goes on, since draining is what frees the memory.
        """
        with redis_errors(self.url):
            try:
                self.client.xgroup_create(self.keys.jobs, GROUP, id="0", mkstream=True)
            except redis.exceptions.OutOfMemoryError:
                if not self._group_exists():
                    raise RedisCommandError(
                        f"Redis at {redact_url(self.url)} is out of memory (used memory above "
                        f"maxmemory) and refuses to create the consumer group of {self.keys.jobs}, "
                        "so no worker can drain it; raise maxmemory (the group is created "
                        "when a worker first starts: start workers before producers)"
                    ) from None
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    def _group_exists(self) -> bool:
        """Whether the group exists (XPENDING: a read the worker's ACL role allows)."""
        try:
            self.client.xpending(self.keys.jobs, GROUP)
        except redis.ResponseError as exc:
            if "NOGROUP" in str(exc):
                return False
            raise
        return True

    def add(self, payloads: Sequence[bytes]) -> list[EntryId]:
        """Add each payload to the stream now; return the entry ids in order.

        One payload is one XADD. More go in batches of up to `ADD_BATCH_JOBS`, fewer
        when they are large (about `ADD_BATCH_BYTES` a batch), each one call of
        add.lua: a round trip and a command per batch, not per job (redis-py spent
        about 8 µs a job building, sending and parsing pipelined XADDs).
        """
        with redis_errors(self.url):
            if len(payloads) == 1:
                entry_id = self.client.xadd(self.keys.jobs, {JOB_FIELD: payloads[0]})
                return [cast(EntryId, entry_id)]
            ids: list[EntryId] = []
            for batch in batches(payloads):
                ids += self._add(keys=[self.keys.jobs], args=batch)
            return ids

    def fetch(self, consumer: str, count: int, block_ms: int | None) -> list[Delivery]:
        """Read up to `count` new entries for `consumer`, blocking up to `block_ms`.

        Recreates the group if Redis lost it (a restart without persistence).
        """
        with redis_errors(self.url):
            try:
                reply = self._read(consumer, count, block_ms)
            except redis.ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                self.ensure_group()
                reply = self._read(consumer, count, block_ms)
        if not reply:
            return []
        return [Delivery(eid, fields) for eid, fields in reply[0][1] if fields is not None]

    def _read(self, consumer: str, count: int, block_ms: int | None) -> Any:
        return self.client.xreadgroup(
            GROUP, consumer, {self.keys.jobs: ">"}, count=count, block=block_ms
        )

    def reclaim(self, consumer: str, min_idle_ms: int, cursor: EntryId, count: int) -> Reclaimed:
        """Claim entries idle over `min_idle_ms` for `consumer`; report deleted ones.

        The claimed entries are not charged an attempt until started (`charge`).
        """
        with redis_errors(self.url):
            reply = self._reclaim(
                keys=[self.keys.jobs, self.keys.lost],
                args=[GROUP, consumer, min_idle_ms, cursor, count],
            )
        next_cursor, entries, counts, deleted = reply
        deliveries = [
            Delivery(eid, dict(zip(flat[::2], flat[1::2], strict=True)), int(n), charged=False)
            for (eid, flat), n in zip(entries, counts, strict=True)
        ]
        return Reclaimed(next_cursor, deliveries, list(deleted))

    def settle(
        self, consumer: str, settlement: Settlement, *, check_owner: bool = True
    ) -> list[EntryId]:
        """Ack, schedule retries and dead-letter, for entries `consumer` still owns.

        Returns the entry ids it no longer owned (claimed by another worker meanwhile);
        nothing was done to those. `check_owner=False` skips the check, for entries held
        for less than the idle time after which another worker may claim them.

        Raises:
            GroupMissing: the consumer group is gone, and its pending entries with it
                (Redis lost its data); the group has been created again.
            DeadLetterKeyWrongType: there are dead letters to write and the dead-letter
                key is not a stream; nothing was done (settle the rest without them).
        """
        ids = settlement.entry_ids()
        if not ids:
            return []
        args: list[EncodableT] = [GROUP, consumer, int(check_owner)]
        args += [len(settlement.acks), *settlement.acks, len(settlement.retries)]
        for entry_id, delay_ms, payload in settlement.retries:
            args += [entry_id, delay_ms, payload]
        args.append(len(settlement.dead))
        for d in settlement.dead:
            args += [d.entry_id, d.raw, d.reason, d.traceback, d.attempts, d.job_id, d.task]
        with redis_errors(self.url):
            try:
                lost = self._settle(
                    keys=[self.keys.jobs, self.keys.delayed, self.keys.dlq], args=args
                )
            except redis.ResponseError as exc:
                if str(exc).startswith("DLQTYPE "):
                    raise DeadLetterKeyWrongType(self.keys.dlq, str(exc).split()[1]) from None
                if "NOGROUP" not in str(exc):
                    raise
                self.ensure_group()
                raise GroupMissing(
                    f"the consumer group of fleet {self.keys.fleet!r} was gone (Redis lost "
                    "its data: restarted without persistence, flushed, or failed over); "
                    "created it again"
                ) from None
        return list(lost)

    def renew(
        self, consumer: str, entry_ids: Sequence[EntryId], *, touch: bool = True
    ) -> list[EntryId]:
        """Reset the idle time of entries `consumer` still owns; return those it lost.

        `touch=False` only checks ownership and leaves idle times alone.
        """
        if not entry_ids:
            return []
        args: list[EncodableT] = [GROUP, consumer, int(touch), *entry_ids]
        with redis_errors(self.url):
            lost = self._renew(keys=[self.keys.jobs], args=args)
        return list(lost)

    def charge(self, consumer: str, entry_id: EntryId) -> int:
        """Count one more attempt of a reclaimed entry `consumer` is about to run.

        Returns its attempts so far, this one included; 0 if another consumer owns it.
        """
        with redis_errors(self.url):
            count = self._charge(keys=[self.keys.jobs], args=[GROUP, consumer, entry_id])
        return int(count)

    def promote_due(self, limit: int = 500) -> int:
        """Move up to `limit` due delayed jobs into the stream; return how many moved."""
        with redis_errors(self.url):
            moved = self._promote(keys=[self.keys.jobs, self.keys.delayed], args=[limit])
        return int(moved)
