"""Every Redis key of a fleet, in one place, with its type, meaning and lifetime.

All keys of fleet F start with `fs:{F}:` — the `{F}` hash tag puts a whole fleet in one
Redis Cluster slot, so scripts may touch several of its keys at once.

- `fs:{F}:jobs` (stream): the job queue; one field `j` holds the msgpack job.
  Trimmed only by the controller, only below what every group still needs.
- group `workers` on `jobs`: consumers are worker ids. Never deleted; a consumer is
  deleted only when it has nothing pending.
- `fs:{F}:delayed` (sorted set): jobs to run later (`delay_s`, retries); member =
  msgpack job, score = due time in Redis ms. Members leave when due: workers and the
  leading controller move them into `jobs`.
- `fs:{F}:dlq` (stream): dead letters: the job field `j` plus `reason`, `traceback`,
  `attempts`, `at_ms`. Kept until `dlq purge`.
- `fs:{F}:id:<job_id>` (string): `<entry id or "delayed"> <SHA-1 of the job>` of an
  explicit job id; makes `submit(job_id=…)` idempotent and refuses a different job
  under the same id. Expires after `dedup_ttl_s` (plus any delay).
- `fs:{F}:tm:<window>` (hash): telemetry of one `TELEMETRY_WINDOW_S` window starting
  at `<window>` (Redis s): `w:<b>` / `r:<b>` weighted wait / run-time bucket counts,
  `busy_us`, `done`, `failed`, `samples`. Expires after `TELEMETRY_RETENTION_S`.
- `fs:{F}:tmseq:<worker>` (string): the last flush sequence applied for a worker, so
  a retried flush counts once. Expires after `TELEMETRY_RETENTION_S`.
- `fs:{F}:workers` (sorted set): worker id → last heartbeat (Redis ms). Members older
  than their heartbeat TTL are pruned by readers.
- `fs:{F}:worker:<id>` (hash): a worker's host, pid, state, counters and, for one a
  controller started, `controller` (its parent's pid). Expires after the worker's
  `heartbeat_ttl_s`.
- `fs:{F}:arrivals` (sorted set): samples of the stream's `entries-added`, member
  `<ms>:<count>`, score Redis ms. Pruned after `ARRIVAL_HISTORY_S`; the key expires too.
- `fs:{F}:lost` (stream): entries found deleted while still pending (XAUTOCLAIM's
  third reply). Capped at about 10 000 entries.
- `fs:{F}:hosts` (sorted set): host id → heartbeat expiry (Redis ms) of each host's
  controller. Members pruned by the leader a minute after they expire.
- `fs:{F}:host:<id>` (hash): a host's capacity, worker counts, quota, errors. Expires
  after the controller's heartbeat TTL.
- `fs:{F}:leader` (string): the leading controller's host id. Expires after the lease
  TTL unless renewed.
- `fs:{F}:fence` (string, counter): incremented at every change of leader; the
  leader's fencing token. Never expires.
- `fs:{F}:plan` (string, JSON): the leader's last decision: fencing token, desired
  size, per-host quotas, reason, time, and the policy state. Written only with the
  current token. Never expires (a stale plan is recognised by its time).
- `fs:{F}:decisions` (stream): the last decisions with their inputs, for `explain`.
  Capped at about 1 000 entries.
- `fs:{F}:policy` (string, JSON): the fleet's scaling policy and its version. Never
  expires.

Rolling upgrades: controllers, workers, producers and CLIs of two versions share these
keys, so every version reads what its neighbours write, by these rules.

- Add, never change: a new piece of data gets a new field name (job map key, hash
  field, JSON key). Readers skip names they do not know: job map keys (kept and written
  back on retry and replay), telemetry and heartbeat hash fields, plan, policy (kept,
  written back by `policy set`) and decision-record keys. A missing field reads as its
  default or as unknown, never as a failure.
- Never change a field's type or meaning. A job field of another type is refused, and
  the job dead-lettered with the field named. Telemetry fields are integers that
  workers of both versions `HINCRBY`: a non-integer there also breaks the other
  version's flushes. Heartbeat counts are read rounded down (`2.5` → 2).
- The histogram layout (the `w:<b>` / `r:<b>` bucket indices) is fixed; a new layout
  needs new prefixes. Readers skip bucket indices outside their layout.
- `arrivals` members start `<ms>:<count>`; readers skip a member that does not.
- A plan this version cannot parse (a field removed or retyped) makes `status` refuse
  with one line and controllers hold their size as without a plan; the policy state in
  the plan is resumed by the next leader, so its fields keep their types too; one of
  another type is resumed as its default.
- The stream names, the group, the stream field `j`, the dedup string and the Lua
  scripts' arguments are shared by every version and change only with a full stop of
  the fleet.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fleetscale.errors import ConfigurationError

GROUP = "workers"
JOB_FIELD = b"j"
TELEMETRY_WINDOW_S = 1
TELEMETRY_RETENTION_S = 900
ARRIVAL_HISTORY_S = 600

_FLEET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def validate_fleet_name(fleet: str) -> str:
    """Return `fleet` if it is a valid fleet name, else raise ConfigurationError."""
    if not _FLEET_NAME.match(fleet):
        raise ConfigurationError(
            f"bad fleet name {fleet!r}: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return fleet


@dataclass(frozen=True, slots=True)
class FleetKeys:
    """The Redis key names of one fleet (see the module table for types and lifetimes)."""

    fleet: str

    def __post_init__(self) -> None:
        validate_fleet_name(self.fleet)

    @property
    def prefix(self) -> str:
        """The prefix every key of this fleet starts with."""
        return f"fs:{{{self.fleet}}}:"

    @property
    def jobs(self) -> str:
        """The job stream."""
        return self.prefix + "jobs"

    @property
    def delayed(self) -> str:
        """Jobs waiting for their due time."""
        return self.prefix + "delayed"

    @property
    def dlq(self) -> str:
        """Dead letters."""
        return self.prefix + "dlq"

    @property
    def lost(self) -> str:
        """Entries found deleted while pending."""
        return self.prefix + "lost"

    @property
    def workers(self) -> str:
        """Live worker registry."""
        return self.prefix + "workers"

    @property
    def arrivals(self) -> str:
        """`entries-added` samples for the arrival rate."""
        return self.prefix + "arrivals"

    @property
    def id_prefix(self) -> str:
        """Prefix of explicit job-id keys."""
        return self.prefix + "id:"

    def job_id(self, job_id: str) -> str:
        """Key remembering an explicit job id."""
        return self.id_prefix + job_id

    def worker(self, worker_id: str) -> str:
        """A worker's info hash."""
        return self.prefix + "worker:" + worker_id

    @property
    def telemetry_prefix(self) -> str:
        """Prefix of telemetry window hashes; the window start (Redis s) follows."""
        return self.prefix + "tm:"

    def telemetry(self, window_start_s: int) -> str:
        """The telemetry hash of the window starting at `window_start_s` (Redis time)."""
        return f"{self.telemetry_prefix}{window_start_s}"

    @property
    def hosts(self) -> str:
        """Live host registry."""
        return self.prefix + "hosts"

    def host(self, host_id: str) -> str:
        """A host's info hash."""
        return self.prefix + "host:" + host_id

    @property
    def leader(self) -> str:
        """The leader lease."""
        return self.prefix + "leader"

    @property
    def fence(self) -> str:
        """The fencing-token counter."""
        return self.prefix + "fence"

    @property
    def plan(self) -> str:
        """The leader's current plan."""
        return self.prefix + "plan"

    @property
    def decisions(self) -> str:
        """The decision log."""
        return self.prefix + "decisions"

    @property
    def policy(self) -> str:
        """The stored scaling policy."""
        return self.prefix + "policy"

    @property
    def flush_seq_prefix(self) -> str:
        """Prefix of per-worker flush sequence keys; the worker id follows."""
        return self.prefix + "tmseq:"
