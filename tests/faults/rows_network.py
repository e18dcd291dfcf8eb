"""Network faults: a host in its own network namespace cut off from Redis longer and
shorter than `min_idle`, and a host on a lossy link, while another host keeps working."""

from __future__ import annotations

import time

from tests.faults.cluster import Cluster, log_lines, start_cluster
from tests.faults.load import Load
from tests.faults.net import NetnsHost, create_host
from tests.faults.rows import Outcome, RowEnv, explained, judge, no_duplicates, row, settle
from tests.faults.rows_redis import survivors
from tests.faults.rows_worker import done_count, wait_done
from tests.support.procs import Proc

NEEDS = ("root", "ip", "iptables")
OUTAGE = "retrying in"
"""What a worker's consumer logs when a turn fails on Redis: it has noticed."""


def split_cluster(env: RowEnv) -> tuple[Cluster, NetnsHost, list[Proc], Proc]:
    """A cluster with two workers on a namespaced host and one on this machine."""
    host = create_host()
    env.cleanups.append(host.delete)
    bind = ("--bind", "127.0.0.1", host.host_ip, "--protected-mode", "no")
    cluster = start_cluster(env, redis_args=bind)
    url = f"redis://{host.host_ip}:{cluster.redis.port}/0"
    remote = [cluster.worker(prefix=host.prefix, url=url, name="remote") for _ in range(2)]
    return cluster, host, remote, cluster.worker(name="local")


def noticed_s(proc: Proc, after_s: float) -> float | None:
    """Wall time of the worker's first failed turn after `after_s`, if any."""
    for line in log_lines(proc):
        if line["ts"] >= after_s and OUTAGE in line["msg"]:
            return float(line["ts"])
    return None


def starts_between(cluster: Cluster, pid: int, first_s: float, last_s: float) -> int:
    """Jobs worker `pid` started between two wall times."""
    return sum(
        1
        for job in cluster.jobs().values()
        for s in job.starts
        if s.pid == pid and first_s <= s.wall_s <= last_s
    )


def hold_partition(remote: list[Proc], cut_s: float, length_s: float) -> dict[int, float | None]:
    """Keep the cut for `length_s` seconds; return when each remote worker noticed."""
    time.sleep(max(0.0, cut_s + length_s - time.time()))  # the partition itself
    return {w.pid: noticed_s(w, cut_s) for w in remote}


@row(
    "net-partition-long",
    "network",
    "a host cut off for 3 × min_idle: its workers notice while cut off and start no job "
    "after noticing, the other host reclaims; lost = 0",
    needs=NEEDS,
)
def partition_long(env: RowEnv) -> Outcome:
    """Cut a namespaced host off from Redis for 9 s (min_idle 3 s), then heal."""
    cluster, host, remote, local = split_cluster(env)
    with Load(cluster.submitter(), prefix="k", rate_per_s=40, sleep_s=0.05):
        wait_done(cluster, env.rng.randint(100, 200))
        host.cut()
        cut_s = time.time()
        noticed = hold_partition(remote, cut_s, 3 * cluster.min_idle_s)
        host.heal()
        healed_s = time.time()
        wait_done(cluster, done_count(cluster) + 100)
    verdict = settle(cluster)
    bad = [f"worker {pid} did not notice the partition" for pid, t in noticed.items() if t is None]
    for pid, t in noticed.items():
        late = starts_between(cluster, pid, t, healed_s) if t else 0
        bad += [f"worker {pid} started {late} jobs after it noticed"] if late else []
    delays = [t - cut_s for t in noticed.values() if t]
    figure = f"noticed after ≤ {max(delays, default=float('nan')):.1f} s"
    faulted = [w.pid for w in remote]
    return judge(cluster, verdict, figure, bad, explained(cluster, faulted),
                 survivors([*remote, local]))  # fmt: skip


@row(
    "net-partition-short",
    "network",
    "a host cut off for min_idle / 3: duplicated = 0, lost = 0",
    needs=NEEDS,
    ci=False,
)
def partition_short(env: RowEnv) -> Outcome:
    """Cut a namespaced host off from Redis for 1 s (min_idle 3 s), three times."""
    cluster, host, remote, local = split_cluster(env)
    with Load(cluster.submitter(), prefix="k", rate_per_s=40, sleep_s=0.05):
        for _ in range(3):
            wait_done(cluster, done_count(cluster) + env.rng.randint(50, 100))
            host.cut()
            time.sleep(cluster.min_idle_s / 3)  # the partition itself
            host.heal()
        wait_done(cluster, done_count(cluster) + 100)
    verdict = settle(cluster)
    figure = f"3 cuts of {cluster.min_idle_s / 3:.1f} s"
    return judge(cluster, verdict, figure, no_duplicates(verdict), survivors([*remote, local]))


@row(
    "net-flaky-link",
    "network",
    "20 % packet loss both ways on one host's link for 10 s: lost = 0; a job runs twice "
    "only if the flaky host ran it",
    ci=False,
    needs=NEEDS,
)
def flaky_link(env: RowEnv) -> Outcome:
    """Random loss on a namespaced host's link under load."""
    cluster, host, remote, local = split_cluster(env)
    with Load(cluster.submitter(), prefix="k", rate_per_s=40, sleep_s=0.05):
        wait_done(cluster, env.rng.randint(100, 200))
        before = {w.pid: starts_between(cluster, w.pid, 0, time.time()) for w in remote}
        host.lossy(0.2)
        time.sleep(10.0)  # the fault itself
        host.heal()
        during = sum(starts_between(cluster, p, 0, time.time()) - n for p, n in before.items())
        wait_done(cluster, done_count(cluster) + 100)
    verdict = settle(cluster)
    figure = f"the flaky host started {during} jobs in 10 s of loss"
    faulted = [w.pid for w in remote]
    return judge(cluster, verdict, figure, explained(cluster, faulted),
                 survivors([*remote, local]))  # fmt: skip
