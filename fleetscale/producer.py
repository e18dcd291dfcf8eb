"""The producer: submit jobs to a fleet's stream. Needs no task code.

Submission is non-blocking by default: with `max_backlog` set and the fleet's backlog at
or above it, `submit` raises `Overloaded` at once; with `timeout_s` it waits up to that
long for room first. Jobs with an explicit `job_id`, a delay or a backlog limit go
through one Lua script that checks and adds atomically; the rest are plain XADDs, or
for `submit_many` a script call adding a batch of up to 1000 (`JobStream.add`).
"""

from __future__ import annotations

import itertools
import json
import math
import os
import secrets
import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence, Sized
from dataclasses import replace
from typing import Any, TypeAlias

from redis.typing import EncodableT

from fleetscale.codec import Job, encode_job
from fleetscale.config import (
    DEFAULT_DEDUP_TTL_S,
    DEFAULT_REDIS_URL,
    MIB,
    ProducerSettings,
    RedisSettings,
    resolve_redis_url,
)
from fleetscale.errors import ConfigurationError, FleetscaleError, Overloaded, SubmitError
from fleetscale.jobstream import JobStream, batches
from fleetscale.keys import GROUP, FleetKeys
from fleetscale.store import connect, redis_errors, script

JobSpec: TypeAlias = tuple[str, Sequence[Any], Mapping[str, Any]]
RETRY_AFTER_S = 0.25
REUSED_ID = -2
"""submit.lua's status for a job id already in use by a different job."""
_MAX_JOB_ID_CHARS = 256
_LONGEST_EXPIRY_S = 10**15
"""The longest job-id key TTL, seconds: Redis refuses expiries past about 9.2e15 s."""


class JobIds:
    """Fresh job ids: a random 64-bit prefix per producer and process, then a counter.

    Unique across producers (the prefixes would have to collide) and cheaper than a
    uuid4 per job, which reads the OS's random source each time. Thread-safe: the
    counter's `next` is atomic. A forked child draws a new prefix: it inherits the
    parent's prefix and counter, and would otherwise hand out the ids the parent
    hands out next.
    """

    def __init__(self) -> None:
        self.renew()
        _JOB_IDS_IN_PROCESS.add(self)

    def renew(self) -> None:
        """Draw a new prefix and restart the counter."""
        self._prefix = secrets.token_hex(8)
        self._counter = itertools.count()

    def next(self) -> str:
        """A new id: 16 hex characters, '-', a hex counter."""
        return f"{self._prefix}-{next(self._counter):x}"


_JOB_IDS_IN_PROCESS: weakref.WeakSet[JobIds] = weakref.WeakSet()


def _renew_job_ids_after_fork() -> None:
    for job_ids in list(_JOB_IDS_IN_PROCESS):
        job_ids.renew()


os.register_at_fork(after_in_child=_renew_job_ids_after_fork)


def _check_job_id(job_id: str) -> str:
    if not isinstance(job_id, str) or not 0 < len(job_id) <= _MAX_JOB_ID_CHARS:
        raise SubmitError(f"bad job_id {job_id!r}: use a non-empty string of ≤ 256 characters")
    return job_id


def _check_task_name(task: str) -> str:
    if not isinstance(task, str) or not task:
        raise SubmitError(f"bad task name {task!r}: use the registered task's name")
    return task


_PLAIN_ARGS = (tuple, list)
"""The usual containers of arguments and of `submit_many`'s jobs."""


def _new_job(job_id: str, task: str, args: Any, kwargs: Any) -> Job:
    """The job a caller describes, refusing `args` that is not a sequence or is a string
    (a one-argument tuple without its comma, `args=("img-1")`, became five arguments,
    one a character) and `kwargs` that is neither a mapping nor None."""
    _check_task_name(task)
    # A tuple, list or dict passes on its exact type: the ABC checks cost about 1 µs a
    # job, a tenth of a pipelined submit.
    if type(args) not in _PLAIN_ARGS and (
        isinstance(args, str | bytes | bytearray) or not isinstance(args, Sequence)
    ):
        raise SubmitError(
            f"args of task {task!r} must be a list or tuple, not {type(args).__name__} "
            f"{args!r:.60}; for one argument write a 1-tuple, with its comma: (x,)"
        )
    if kwargs is not None and type(kwargs) is not dict and not isinstance(kwargs, Mapping):
        raise SubmitError(
            f"kwargs of task {task!r} must be a dict of keyword arguments, not "
            f"{type(kwargs).__name__} {kwargs!r:.60}"
        )
    return Job(job_id, task, tuple(args), dict(kwargs or {}))


def _in_name_order(job: Job) -> Job:
    """`job` with its keyword arguments sorted by name, so that the digest submit.lua
    keeps for an explicit job id does not depend on their order: a retry passing them
    in another order was refused as a different job. Names that are not all str are
    left as they are (`encode_job` refuses them)."""
    try:
        return job._replace(kwargs=dict(sorted(job.kwargs.items(), key=lambda kv: kv[0])))
    except TypeError:
        return job


def _unpack_spec(spec: Any, index: int) -> JobSpec:
    """`(task, args, kwargs)` of `submit_many`'s job number `index` (from 0)."""
    if not isinstance(spec, _PLAIN_ARGS) or len(spec) != 3:
        raise SubmitError(
            f"job {index} of submit_many is {spec!r:.60}; give each job as a "
            "(task, args, kwargs) tuple"
        )
    task, args, kwargs = spec
    return task, args, kwargs


def _delay_ms(delay_s: float) -> int:
    """`delay_s` seconds as whole milliseconds. Refuses a negative, NaN (it fails both
    comparisons) or infinite delay, one so large its milliseconds are infinite (an int
    past a float's range too: it raised OverflowError), and a bool, None or string."""
    try:
        delay_ms = math.nan if isinstance(delay_s, bool) else delay_s * 1000.0
    except (TypeError, OverflowError):
        delay_ms = math.nan
    if not 0 <= delay_ms < math.inf:
        raise SubmitError(f"bad delay_s={delay_s!r}: use a finite number of seconds ≥ 0")
    return round(delay_ms)


def _wait_s(timeout_s: float | None) -> float:
    """`timeout_s` as the seconds to wait for room (0 for None). Refuses a negative or
    NaN one: NaN made the deadline NaN, which never passes, so submit waited for ever."""
    if timeout_s is None:
        return 0.0
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, int | float) or not timeout_s >= 0:
        raise SubmitError(f"bad timeout_s={timeout_s!r}: use a number of seconds ≥ 0, or None")
    return float(timeout_s)


def _job_id_ttl_s(dedup_ttl_s: float, delay_ms: int) -> int:
    """Whole seconds a job-id key lives: `dedup_ttl_s` past the job's due time, at most
    `_LONGEST_EXPIRY_S`. Redis refuses a longer expiry, and submit.lua sets it after
    adding the job: the job went in, the submit raised, and each retry under the same
    `job_id` added it again."""
    return math.ceil(min(dedup_ttl_s + delay_ms / 1000, _LONGEST_EXPIRY_S))


def _note_submitted(exc: FleetscaleError, submitted: list[str], total: str) -> None:
    """Record on `exc`, raised part-way through `submit_many`, the jobs already in."""
    exc.submitted = submitted
    exc.args = (
        f"{exc}; the first {len(submitted)} of {total} jobs were submitted before this "
        "(their ids are in the error's `submitted`)",
    )


class Producer:
    """Submits jobs to one fleet.

    Args:
        fleet: the fleet name (as given to `App`).
        redis_url: overrides `FLEETSCALE_REDIS_URL` and the default URL.
        max_backlog: raise `Overloaded` when the backlog (jobs queued or running) is
            at or above this; None for no limit.
        max_payload_bytes: the largest encoded job accepted (default 1 MiB). Workers
            dead-letter larger jobs unread unless started with `--max-payload-bytes`
            at least as large.
        dedup_ttl_s: how long an explicit `job_id` is remembered, seconds.
        redis: connection settings; `redis_url`, when given, replaces their URL, and
            `FLEETSCALE_REDIS_URL` replaces it when it is the default one.

    A Producer may be shared by threads. It connects lazily: construction does no I/O.
    """

    def __init__(
        self,
        fleet: str,
        redis_url: str | None = None,
        *,
        max_backlog: int | None = None,
        max_payload_bytes: int = MIB,
        dedup_ttl_s: float = DEFAULT_DEDUP_TTL_S,
        redis: RedisSettings | None = None,
    ) -> None:
        self.keys = FleetKeys(fleet)
        self.settings = ProducerSettings(
            max_backlog=max_backlog, max_payload_bytes=max_payload_bytes, dedup_ttl_s=dedup_ttl_s
        ).validate()
        # URL precedence: the argument, then the given settings' own, then the
        # environment, then the default. Settings made without a URL carry the default
        # one, which must not hide the environment's.
        given = redis.url if redis is not None and redis.url != DEFAULT_REDIS_URL else None
        url = resolve_redis_url(redis_url or given, os.environ)
        self.redis_settings = replace(redis or RedisSettings(), url=url).validate()
        # Never resend a submission whose reply timed out: it may be in Redis already.
        self.client = connect(self.redis_settings, retry_timeouts=False)
        self.stream = JobStream(self.client, self.keys, url)
        self._submit_script = script(self.client, "submit")
        self._ids = JobIds()
        self._closed = False

    @property
    def fleet(self) -> str:
        """The fleet this producer submits to."""
        return self.keys.fleet

    @property
    def closed(self) -> bool:
        """Whether `close` was called: the producer then refuses to submit."""
        return self._closed

    def _check_open(self) -> None:
        """Raise SubmitError after `close`: redis-py would quietly open a new connection."""
        if self._closed:
            raise SubmitError(
                f"this producer of fleet {self.fleet!r} is closed; create a new Producer"
            )

    def submit(
        self,
        task: str,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        job_id: str | None = None,
        delay_s: float = 0.0,
        timeout_s: float | None = None,
    ) -> str:
        """Submit one job; return its job id.

        Args:
            task: the registered task name.
            args: positional arguments (msgpack types: str, int, float, bool, None,
                bytes, lists, dicts).
            kwargs: keyword arguments.
            job_id: your id for the job; submitting the same job again while the id is
                remembered (`dedup_ttl_s`) does not create a second job, and a different
                job under a remembered id raises `SubmitError`. Without one, a submit
                resent after its connection broke (not timed out) before the reply
                came back may add the job twice.
            delay_s: run no earlier than this many seconds from now (Redis time); a
                finite number ≥ 0.
            timeout_s: with `max_backlog`, wait up to this long for room, seconds
                (≥ 0; None or 0: not at all; inf: as long as it takes).

        Raises:
            Overloaded: the backlog is at or above `max_backlog` (after `timeout_s`).
            PayloadTooLarge: the encoded job is larger than `max_payload_bytes`.
            SubmitError: bad arguments, `job_id` in use by a different job, or the
                producer closed; RedisUnavailable and others: Redis trouble.
        """
        self._check_open()
        delay_ms = _delay_ms(delay_s)
        wait_s = _wait_s(timeout_s)
        if job_id is None:
            job = _new_job(self._ids.next(), task, args, kwargs)
        else:
            job = _in_name_order(_new_job(_check_job_id(job_id), task, args, kwargs))
        payload = encode_job(job, self.settings.max_payload_bytes)
        if job_id is None and delay_ms == 0 and self.settings.max_backlog is None:
            self.stream.add([payload])
            return job.job_id
        self._until_admitted(lambda: self._run_submit(payload, job_id, delay_ms), wait_s)
        return job.job_id

    def _call_submit_script(
        self, payload: bytes, job_id: str | None, delay_ms: int
    ) -> tuple[int, Any]:
        """Run submit.lua; return its `(status, value)` (see the script's header)."""
        keys = [self.keys.jobs, self.keys.delayed]
        if job_id is not None:
            keys.append(self.keys.job_id(job_id))
        args: list[EncodableT] = [
            payload,
            delay_ms,
            _job_id_ttl_s(self.settings.dedup_ttl_s, delay_ms),
            self.settings.max_backlog or 0,
            GROUP,
        ]
        with redis_errors(self.redis_settings.url):
            status, value = self._submit_script(keys=keys, args=args)
        return int(status), value

    def _run_submit(self, payload: bytes, job_id: str | None, delay_ms: int) -> int | None:
        """Run the submit script; None when admitted, else the backlog that refused it."""
        status, value = self._call_submit_script(payload, job_id, delay_ms)
        if status == REUSED_ID:
            raise SubmitError(
                f"job id {job_id!r} is already in use by a different job (within "
                f"dedup_ttl_s={self.settings.dedup_ttl_s:g}s); give this job its own id, or "
                "resubmit exactly the same task and arguments to retry the first"
            )
        return int(value) if status < 0 else None

    def submit_many(
        self, jobs: Iterable[JobSpec], *, timeout_s: float | None = None, chunk: int = 1000
    ) -> list[str]:
        """Submit `(task, args, kwargs)` jobs with fresh ids, in chunks; return the ids.

        A chunk of `chunk` jobs is added in batches of up to 1000 (fewer when the jobs
        are large, see `JobStream.add`), a round trip each; a batch goes into Redis
        whole or not at all. With `max_backlog`, the backlog is checked once per chunk,
        and a chunk is admitted whole. Use `submit` for explicit job ids or delays.

        `jobs` is read as it goes (a generator is never held whole), but the returned
        ids are: about 80 bytes a job, so submit millions of jobs in calls of, say,
        10,000 (`bench/memory.py`: one call of 1,000,000 jobs peaked at 3× the RSS of
        raw pipelined XADD, calls of 10,000 at 1.0×).

        Raises:
            Overloaded, SubmitError, RedisUnavailable and others, as `submit` does, also
            part-way through: the batches before the failing one are in Redis by then.
            The error's `submitted` attribute lists their job ids in order (empty when
            none went in) and its message says how many of how many jobs went in;
            resubmit only the others. After `RedisUnavailable`, jobs of the failing batch
            may be in too (its reply may have been lost).
        """
        ids: list[str] = []
        pending: list[bytes] = []
        added = 0  # jobs in Redis, counted batch by batch: the error lists exactly those

        def add_pending() -> None:
            nonlocal added
            if self.settings.max_backlog is not None:
                self._until_admitted(self._backlog_if_full, wait_s)
            for batch in batches(pending):
                self.stream.add(batch)
                added += len(batch)
            pending.clear()

        self._check_open()
        try:
            wait_s = _wait_s(timeout_s)
            for index, spec in enumerate(jobs):
                task, args, kwargs = _unpack_spec(spec, index)
                job = _new_job(self._ids.next(), task, args, kwargs)
                pending.append(encode_job(job, self.settings.max_payload_bytes))
                ids.append(job.job_id)
                if len(pending) >= chunk:
                    add_pending()
            if pending:
                add_pending()
        except FleetscaleError as exc:
            total = str(len(jobs)) if isinstance(jobs, Sized) else f"at least {len(ids)}"
            _note_submitted(exc, ids[:added], total)
            raise
        return ids

    def _backlog_if_full(self) -> int | None:
        backlog = self.backlog()
        limit = self.settings.max_backlog
        return backlog if limit is not None and backlog >= limit else None

    def _until_admitted(self, attempt: Callable[[], int | None], wait_s: float) -> None:
        """Call `attempt` until it admits (returns None) or `wait_s` seconds passed."""
        deadline = time.monotonic() + wait_s
        pause = 0.01
        while True:
            refused_backlog = attempt()
            if refused_backlog is None:
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                limit = self.settings.max_backlog or 0
                raise Overloaded(refused_backlog, limit, RETRY_AFTER_S)
            time.sleep(min(pause, remaining))
            pause = min(pause * 2, 0.25)

    def backlog(self) -> int:
        """Jobs queued or running: the group's lag plus its pending entries, measured as
        `submit` measures it against `max_backlog` (an upper bound when Redis knows no
        lag, after an entry the group had not read was deleted)."""
        self._check_open()
        _, backlog = self._call_submit_script(b"", None, 0)
        return int(backlog)

    def close(self) -> None:
        """Release the connections. The producer then refuses to submit (SubmitError);
        closing again does nothing."""
        self._closed = True
        self.client.close()

    def __enter__(self) -> Producer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def strict_json(text: str) -> Any:
    """Parse standard JSON: Python's parser also takes `NaN`, `Infinity` and numbers too
    large for a float (as inf), which no other JSON reader would send.

    Raises:
        json.JSONDecodeError: not standard JSON, with the reason.
    """

    def refuse(token: str, why: str = "is not a JSON number") -> float:
        raise json.JSONDecodeError(f"{token} {why}", text, 0)

    def finite(token: str) -> float:
        value = float(token)
        return value if math.isfinite(value) else refuse(token, "is too large for a float")

    return json.loads(text, parse_constant=refuse, parse_float=finite)


def parse_job_line(line: str, number: int, max_payload_bytes: int = MIB) -> JobSpec:
    """Parse one JSON-lines job `{"task": …, "args": [...], "kwargs": {...}}`.

    Raises:
        ConfigurationError: naming line `number`: not JSON, not such an object, with
            another key (one that would be dropped, as a misspelt "kwargs"), or a job a
            producer would refuse (a bad task name, a job encoding to more than
            `max_payload_bytes`), so a file is checked whole before any job goes in.
    """
    try:
        body = strict_json(line)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"line {number}: not JSON ({exc.msg})") from None
    if not isinstance(body, dict) or not isinstance(body.get("task"), str):
        raise ConfigurationError(f'line {number}: expected {{"task": "name", ...}}')
    if unknown := sorted(set(body) - {"task", "args", "kwargs"}):
        # A misspelt "kwargs" or a "job_id" would be dropped: the job would go in without it.
        raise ConfigurationError(
            f"line {number}: unknown key {unknown[0]!r}: a job line holds only "
            '"task", "args" and "kwargs"'
        )
    args, kwargs = body.get("args", []), body.get("kwargs", {})
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        raise ConfigurationError(f"line {number}: 'args' must be a list, 'kwargs' an object")
    try:  # with the shortest job id: never refuses a job `submit_many` would take
        encode_job(_new_job("0" * 16 + "-0", body["task"], args, kwargs), max_payload_bytes)
    except SubmitError as exc:
        raise ConfigurationError(f"line {number}: {exc}") from None
    return body["task"], args, kwargs
