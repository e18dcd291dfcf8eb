"""Stream faults: pending entries deleted or trimmed away, and the leader's own trim and
consumer clean-up running while a dead worker still holds entries."""

from __future__ import annotations

import threading
from typing import Any

from fleetscale.codec import decode_job
from fleetscale.keys import GROUP, JOB_FIELD
from fleetscale.store import script
from tests.faults.cluster import Cluster, first_log_s, start_cluster
from tests.faults.load import Load
from tests.faults.rows import Outcome, RowEnv, judge, row, settle
from tests.support.procs import wait_until

GHOST = "ghost"


def submit_backlog(cluster: Cluster, count: int) -> None:
    """Submit `count` short jobs before any worker runs."""
    load = Load(cluster.submitter(), prefix="k", rate_per_s=5000, total=count).start()
    wait_until(load.finished, timeout_s=60, what="the backlog to be submitted")


def ghost_takes(cluster: Cluster, count: int) -> dict[bytes, str]:
    """Deliver `count` entries to a consumer that never acks (a worker that died
    holding them); return their entry ids and job keys."""
    cluster.client.xgroup_create(cluster.keys.jobs, GROUP, id="0", mkstream=True)
    reply = cluster.client.xreadgroup(GROUP, GHOST, {cluster.keys.jobs: ">"}, count=count)
    return {
        eid: decode_job({JOB_FIELD: fields[JOB_FIELD]}, 2**62).args[0]
        for eid, fields in reply[0][1]
    }


@row(
    "streams-xdel-pending",
    "streams",
    "negative control: entries trimmed or deleted while pending are lost — every one is "
    "found, logged and recorded in the lost stream, none silently",
    expect_red=("lost=",),
)
def deleted_while_pending(env: RowEnv) -> Outcome:
    """XTRIM and XDEL entries a dead worker still holds; workers then reclaim."""
    rng = env.rng
    cluster = start_cluster(env)
    submit_backlog(cluster, 80)
    held = ghost_takes(cluster, 30)
    ids = sorted(held, key=lambda e: tuple(int(p) for p in e.split(b"-")))
    trimmed = ids[: rng.randint(2, 5)]
    deleted = rng.sample(ids[len(trimmed) :], rng.randint(2, 5))
    cluster.client.xtrim(cluster.keys.jobs, minid=ids[len(trimmed)], approximate=False)
    cluster.client.xdel(cluster.keys.jobs, *deleted)
    gone = set(trimmed) | set(deleted)
    workers = [cluster.worker() for _ in range(2)]
    verdict = settle(cluster)
    reported = {f[b"entry_id"] for _, f in cluster.client.xrange(cluster.keys.lost)}
    bad = []
    if reported != gone:
        bad.append(f"lost stream has {len(reported)} entries, {len(gone)} were deleted")
    if set(verdict.lost_keys) - {held[e] for e in gone}:
        bad.append(f"jobs lost without being reported: {verdict.lost_keys}")
    if not any(first_log_s(w, "deleted from the stream before they ran") for w in workers):
        bad.append("no worker logged the deleted entries")
    figure = f"{len(gone)} deleted while pending, {len(reported)} reported"
    return judge(cluster, verdict, figure, bad)


def _pending_by_name(consumers: list[dict[str, Any]]) -> dict[str, int]:
    """XINFO CONSUMERS rows as {consumer name: entries pending}."""
    return {c["name"].decode(): int(c["pending"]) for c in consumers}


class Janitor:
    """Runs the leader's trim and consumer clean-up scripts in a loop (what the leader
    does every 10 s and 60 s, here every 0.2 s with a 0.5 s idle limit), and notes any
    consumer deleted while it still had pending entries."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.trimmed = 0
        self.deleted = 0
        self.violations: list[str] = []
        self._trim = script(cluster.client, "trim")
        self._cleanup = script(cluster.client, "cleanup")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="janitor", daemon=True)
        self._thread.start()

    def pending(self) -> dict[str, int]:
        """Entries pending per consumer."""
        consumers = self.cluster.client.xinfo_consumers(self.cluster.keys.jobs, GROUP)
        return _pending_by_name(consumers)

    def _run(self) -> None:
        jobs = self.cluster.keys.jobs
        while not self._stop.wait(0.2):
            # One MULTI/EXEC: no worker can reclaim or ack between the snapshots and the
            # scripts, so a consumer missing afterwards was deleted with what it held.
            pipe = self.cluster.client.pipeline(transaction=True)
            pipe.xinfo_consumers(jobs, GROUP)
            self._cleanup(keys=[jobs], args=[GROUP, 500], client=pipe)
            self._trim(keys=[jobs], client=pipe)
            pipe.xinfo_consumers(jobs, GROUP)
            before, deleted, trimmed, after = pipe.execute()
            self.deleted += int(deleted)
            self.trimmed += int(trimmed)
            still = _pending_by_name(after)
            dropped = [c for c, n in _pending_by_name(before).items() if n and c not in still]
            self.violations += [f"consumer {c} deleted with entries pending" for c in dropped]

    def stop(self) -> None:
        """Stop the loop."""
        self._stop.set()
        self._thread.join()


@row(
    "streams-cleanup-trim",
    "streams",
    "the leader's trim and consumer clean-up, run constantly, never drop a pending or "
    "undelivered entry nor a consumer with entries pending: lost = 0",
)
def cleanup_and_trim(env: RowEnv) -> Outcome:
    """A dead worker holds entries while trim and clean-up run every 0.2 s."""
    cluster = start_cluster(env)
    submit_backlog(cluster, 100)
    ghost_takes(cluster, 20)
    cluster.client.xgroup_createconsumer(cluster.keys.jobs, GROUP, "drained")
    janitor = Janitor(cluster)
    for _ in range(2):
        cluster.worker()
    load = Load(cluster.submitter(), prefix="m", rate_per_s=100, total=300).start()
    wait_until(lambda: janitor.deleted > 0 and janitor.trimmed > 0 and load.finished(),
               timeout_s=60, what="a clean-up, a trim and the load")  # fmt: skip
    verdict = settle(cluster)
    janitor.stop()
    ghost_left = GHOST in janitor.pending()
    lost_stream = cluster.client.xlen(cluster.keys.lost)
    bad = [*janitor.violations]
    bad += [f"{lost_stream} entries reported deleted"] if lost_stream else []
    figure = (
        f"{janitor.trimmed} entries trimmed, {janitor.deleted} idle consumers deleted; "
        f"ghost {'kept' if ghost_left else 'deleted once drained'}"
    )
    return judge(cluster, verdict, figure, bad)
