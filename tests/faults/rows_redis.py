"""Redis faults: a crash with and without persistence, unsafe settings at start-up, a
full memory, and a server frozen past the clients' socket timeout."""

from __future__ import annotations

import time

from fleetscale.errors import FleetscaleError
from fleetscale.status import read_status
from tests.faults.cluster import Cluster, first_log_s, start_cluster
from tests.faults.ledger import FAILED
from tests.faults.load import Load
from tests.faults.rows import Outcome, RowEnv, judge, no_duplicates, row, settle
from tests.faults.rows_worker import done_count, wait_done
from tests.support.procs import Proc, wait_until

DOWN_S = 2.0


def first_done_after(cluster: Cluster, wall_s: float) -> float:
    """Wait for a job done after wall time `wall_s`; seconds from `wall_s` to it."""

    def newest() -> float | None:
        times = [d.wall_s for j in cluster.jobs().values() for d in j.dones if d.wall_s > wall_s]
        return min(times) if times else None

    return wait_until(newest, timeout_s=60, every_s=0.1, what="work after the fault") - wall_s


def crash_redis(cluster: Cluster, env: RowEnv) -> float:
    """SIGKILL Redis once some work is done, keep it down, restart it; return the wall
    time of the restart."""
    wait_done(cluster, done_count(cluster) + env.rng.randint(100, 300))
    cluster.redis.kill()
    time.sleep(DOWN_S)  # the outage itself, not a synchronisation
    cluster.redis.start()
    return time.time()


def survivors(workers: list[Proc]) -> list[str]:
    """Workers that died although they should ride out the fault."""
    dead = [w.pid for w in workers if not w.alive()]
    return [f"workers {dead} exited"] if dead else []


@row("redis-kill-aof", "redis", "SIGKILL Redis (AOF everysec) mid-load, restart: lost = 0")
def kill_with_aof(env: RowEnv) -> Outcome:
    """Redis crashes and restarts with AOF on; producers and workers ride it out."""
    cluster = start_cluster(env)
    workers = [cluster.worker() for _ in range(2)]
    with Load(cluster.submitter(), prefix="k", rate_per_s=200, sleep_s=0.002):
        restarted = crash_redis(cluster, env)
        recovery_s = first_done_after(cluster, restarted)
        wait_done(cluster, done_count(cluster) + 100)
    verdict = settle(cluster)
    figure = f"down {DOWN_S:.0f} s; work resumed {recovery_s:.1f} s after the restart"
    return judge(cluster, verdict, figure, survivors(workers))


@row(
    "redis-no-persistence",
    "redis",
    "negative control: Redis without AOF restarts with a backlog; the checker must flag "
    "the loss, and jobs submitted after the restart still run",
    expect_red=("lost=",),
)
def kill_without_persistence(env: RowEnv) -> Outcome:
    """The same crash with `appendonly no`: the queued jobs are gone."""
    cluster = start_cluster(env, appendonly=False)
    cluster.worker()
    load = Load(cluster.submitter(), prefix="k", rate_per_s=2000, sleep_s=0.02, total=600)
    load.start()
    wait_until(load.finished, timeout_s=60, what="the backlog to be submitted")
    crash_redis(cluster, env)
    after = Load(cluster.submitter(), prefix="after", rate_per_s=200, total=100).start()
    wait_until(after.finished, timeout_s=60, what="jobs after the restart")
    verdict = settle(cluster)
    lost_after = [k for k in verdict.lost_keys if k.startswith("after")]
    bad = [f"jobs submitted after the restart never ran: {lost_after}"] if lost_after else []
    figure = f"{verdict.lost} of {verdict.acknowledged} acknowledged jobs lost"
    return judge(cluster, verdict, figure, bad)


UNSAFE = ("--appendonly", "no", "--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru")


@row(
    "redis-preflight",
    "redis",
    "no AOF and an evicting policy: workers and controllers warn of both; --strict refuses "
    "(exit 2); lost = 0",
)
def preflight_warnings(env: RowEnv) -> Outcome:
    """Start-up checks on an unsafe Redis (AOF off, allkeys-lru)."""
    cluster = start_cluster(env, redis_args=UNSAFE)
    worker = cluster.worker()
    controller = cluster.controller("A", "--min", "0", "--max", "0", "--dry-run")
    strict = [cluster.worker("--strict"), cluster.controller("B", "--strict")]
    load = Load(cluster.submitter(), prefix="k", rate_per_s=100, total=100).start()
    wait_until(load.finished, timeout_s=60, what="the jobs to be submitted")
    codes = [p.wait(60) for p in strict]
    bad = [f"--strict exited {codes}, not [2, 2]"] if codes != [2, 2] else []
    warned = 0
    for proc in (worker, controller):
        for needle in ("AOF persistence is off", "maxmemory-policy is allkeys-lru"):
            found = wait_until(lambda p=proc, n=needle: first_log_s(p, n) is not None,
                               timeout_s=30, what=f"{needle!r} logged")  # fmt: skip
            warned += bool(found)
    verdict = settle(cluster)
    return judge(cluster, verdict, f"{warned} warnings; --strict exits {codes}", bad)


def status_fails(cluster: Cluster) -> list[str]:
    """`fleetscale status` of the fleet, as a violation if it cannot be read."""
    try:
        read_status(cluster.client, cluster.keys, cluster.url)
    except FleetscaleError as exc:
        return [f"status fails: {exc}"]
    return []


@row(
    "redis-maxmemory",
    "redis",
    "at maxmemory (noeviction) producers get a clear error, workers keep draining, status "
    "still reads: lost = 0, no refused job runs",
)
def full_memory(env: RowEnv) -> Outcome:
    """Fill Redis to `maxmemory` with a flood of padded jobs while one worker drains."""
    cluster = start_cluster(env, redis_args=("--maxmemory", "4mb"))
    worker = cluster.worker()
    # The worker creates the consumer group; Redis at maxmemory would refuse to.
    wait_until(lambda: first_log_s(worker, "consuming fleet") is not None, timeout_s=60,
               what="the worker to consume")  # fmt: skip
    submitter = cluster.submitter()
    with Load(submitter, prefix="k", rate_per_s=3000, sleep_s=0.001, pad_bytes=2000) as load:
        wait_until(lambda: load.outcomes.get(FAILED, 0) >= 20, timeout_s=60,
                   what="submissions refused at maxmemory")  # fmt: skip
        bad = status_fails(cluster)
    refused = [e for e in submitter.errors if "maxmemory" in e]
    message = submitter.errors[0] if submitter.errors else "none"
    bad += [] if refused else [f"refusals do not name the memory limit: {message!r}"]
    verdict = settle(cluster)
    reason = message.split(" is ", 1)[-1].split(" and ", 1)[0]
    figure = f"{load.outcomes.get(FAILED, 0)} submits refused: '{reason}'"
    return judge(cluster, verdict, figure, bad)


@row(
    "redis-pause",
    "redis",
    "Redis frozen (SIGSTOP) past the 2 s socket timeout, then resumed: lost = 0, "
    "duplicated = 0, workers resume",
)
def paused_redis(env: RowEnv) -> Outcome:
    """SIGSTOP Redis for 2.2-3.8 s (socket timeout 2 s) under load, twice, then SIGCONT."""
    rng = env.rng
    cluster = start_cluster(env)
    workers = [cluster.worker() for _ in range(2)]
    with Load(cluster.submitter(), prefix="k", rate_per_s=100, sleep_s=0.005) as load:
        for _ in range(2):
            wait_done(cluster, done_count(cluster) + rng.randint(100, 200))
            cluster.redis.pause()
            time.sleep(rng.uniform(2.2, 3.8))  # the fault itself, not a synchronisation
            cluster.redis.resume()
        resumed = time.time()
        recovery_s = first_done_after(cluster, resumed)
        wait_done(cluster, done_count(cluster) + 100)
    verdict = settle(cluster)
    figure = (
        f"{load.outcomes.get('indeterminate', 0)} submits timed out; work resumed "
        f"{recovery_s:.1f} s after SIGCONT"
    )
    return judge(cluster, verdict, figure, no_duplicates(verdict), survivors(workers))
