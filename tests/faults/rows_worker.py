"""Worker faults: kills, drains, pauses, long jobs, poison jobs, hung handlers, crashes
between a side effect and its ack."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager

from fleetscale.codec import decode_job
from fleetscale.keys import GROUP, JOB_FIELD
from tests.faults.checker import Verdict
from tests.faults.cluster import Cluster, Keeper, start_cluster
from tests.faults.load import Load, Submitter
from tests.faults.rows import Outcome, RowEnv, explained, judge, no_duplicates, row, settle
from tests.support.fleet import pending_of_pid
from tests.support.procs import Proc, wait_until


def done_count(cluster: Cluster) -> int:
    """Jobs done so far (ledger)."""
    return sum(1 for j in cluster.jobs().values() if j.dones)


def wait_done(cluster: Cluster, count: int, timeout_s: float = 60.0) -> None:
    """Wait until at least `count` jobs are done."""
    wait_until(lambda: done_count(cluster) >= count, timeout_s=timeout_s, every_s=0.1,
               what=f"{count} jobs done")  # fmt: skip


def running_key(cluster: Cluster, proc: Proc, prefix: str) -> str | None:
    """The key of a job with `prefix` that `proc` has started and not finished."""
    for key, job in cluster.jobs().items():
        mine = [s for s in job.starts if s.pid == proc.pid]
        if key.startswith(prefix) and mine and not [d for d in job.dones if d.pid == proc.pid]:
            return key
    return None


def reclaimed_after_s(cluster: Cluster, pid: int, since: float) -> float:
    """Wait until the consumer of dead worker `pid` has nothing pending; seconds taken."""
    wait_until(lambda: pending_of_pid(cluster.client, cluster.keys, pid) == 0, timeout_s=60,
               every_s=0.1, what=f"the entries of worker {pid} to be reclaimed")  # fmt: skip
    return time.monotonic() - since


@row("worker-sigkill", "worker", "lost = 0; a job runs twice only if a killed worker ran it")
def sigkill_repeatedly(env: RowEnv) -> Outcome:
    """SIGKILL a random worker mid-load, three times, replacing each. Workers prefetch
    10 jobs at a time, so each dies holding a batch."""
    rng = env.rng
    cluster = start_cluster(env)
    prefetch = ("--prefetch-window", "100ms")
    workers = [cluster.worker(*prefetch) for _ in range(3)]
    killed: list[int] = []
    reclaim_s: list[float] = []
    held = 0
    with Load(cluster.submitter(), prefix="k", rate_per_s=250, sleep_s=0.01):
        for _ in range(3):
            wait_done(cluster, done_count(cluster) + rng.randint(100, 300))
            victim = rng.choice(workers)
            victim.signal(signal.SIGKILL)
            at = time.monotonic()
            victim.wait(10)
            held += pending_of_pid(cluster.client, cluster.keys, victim.pid)
            killed.append(victim.pid)
            workers[workers.index(victim)] = cluster.worker(*prefetch)
            reclaim_s.append(reclaimed_after_s(cluster, victim.pid, at))
    verdict = settle(cluster)
    figure = f"3 kills; entries they held: {held}, all reclaimed within {max(reclaim_s):.1f} s"
    return judge(cluster, verdict, figure, explained(cluster, killed))


@row("worker-sigterm-drain", "worker", "lost = 0; duplicated = 0; the drained worker exits 0")
def sigterm_drain(env: RowEnv) -> Outcome:
    """SIGTERM one of two workers under load: it drains and exits 0."""
    rng = env.rng
    cluster = start_cluster(env)
    drained, _ = cluster.worker(), cluster.worker()
    with Load(cluster.submitter(), prefix="k", rate_per_s=150, sleep_s=0.01):
        wait_done(cluster, rng.randint(200, 400))
        drained.signal(signal.SIGTERM)
        at = time.monotonic()
        code = drained.wait(60)
        drain_s = time.monotonic() - at
        wait_done(cluster, done_count(cluster) + 100)
    verdict = settle(cluster)
    left = pending_of_pid(cluster.client, cluster.keys, drained.pid)
    bad = [f"the drained worker exited {code}"] if code else []
    bad += [f"the drained worker left {left} entries pending"] if left else []
    return judge(cluster, verdict, f"drained in {drain_s:.2f} s", no_duplicates(verdict), bad)


@row(
    "worker-sigterm-sigkill",
    "worker",
    "lost = 0; only the killed worker's job runs twice; it is reclaimed",
    ci=False,
)
def sigterm_then_sigkill(env: RowEnv) -> Outcome:
    """SIGTERM a worker inside a long job, then SIGKILL it before the drain ends."""
    cluster = start_cluster(env)
    victim = cluster.worker()
    submitter = cluster.submitter()
    submitter.submit("work", "long-0", (3.0,))
    wait_until(lambda: running_key(cluster, victim, "long-"), timeout_s=30, what="the long job")
    cluster.worker()
    with Load(submitter, prefix="k", rate_per_s=50, sleep_s=0.01):
        victim.signal(signal.SIGTERM)
        wait_done(cluster, 20)
        assert victim.alive(), "the drain waits for the long job"
        victim.signal(signal.SIGKILL)
        at = time.monotonic()
        victim.wait(10)
        reclaim_s = reclaimed_after_s(cluster, victim.pid, at)
    verdict = settle(cluster)
    long_runs = len(cluster.jobs()["long-0"].starts)
    bad = [] if long_runs == 2 else [f"the long job started {long_runs} times, not 2"]
    figure = f"reclaim {reclaim_s:.1f} s"
    return judge(cluster, verdict, figure, explained(cluster, [victim.pid]), bad)


def owner_of(cluster: Cluster, key_entry: bytes) -> str | None:
    """The consumer an entry is pending for, if it is pending."""
    reply = cluster.client.xpending_range(cluster.keys.jobs, GROUP, key_entry, key_entry, 1)
    return reply[0]["consumer"].decode() if reply else None


def entry_of(cluster: Cluster, key: str) -> bytes:
    """The stream entry id of the job with this key (scans the stream)."""
    for entry_id, fields in cluster.client.xrange(cluster.keys.jobs):
        job = decode_job({JOB_FIELD: fields[JOB_FIELD]}, 2**62)
        if job.args and job.args[0] == key:
            return bytes(entry_id)
    raise AssertionError(f"no entry for {key}")


@row(
    "worker-sigstop",
    "worker",
    "lost = 0; the paused worker neither acks nor runs what another worker took over",
)
def sigstop_past_min_idle(env: RowEnv) -> Outcome:
    """SIGSTOP a worker inside a job past `min_idle`, SIGCONT it once another worker
    has taken the job over; it must leave the job to its new owner."""
    cluster = start_cluster(env)
    paused = cluster.worker()
    submitter = cluster.submitter()
    submitter.submit("work", "slow-0", (6.0,))
    wait_until(lambda: running_key(cluster, paused, "slow-"), timeout_s=30, what="the slow job")
    entry = entry_of(cluster, "slow-0")
    paused.signal(signal.SIGSTOP)
    at = time.monotonic()
    other = cluster.worker()
    wait_until(lambda: running_key(cluster, other, "slow-"), timeout_s=60, what="the takeover")
    takeover_s = time.monotonic() - at
    paused.signal(signal.SIGCONT)
    # Its sleep is over: the paused worker finishes its run at once and settles. It
    # must find that it lost the entry, and leave it pending for its new owner.
    wait_until(lambda: "claimed by another worker before" in paused.output()
               or owner_of(cluster, entry) is None, timeout_s=30,
               what="the paused worker's settle")  # fmt: skip
    owner = owner_of(cluster, entry)
    bad = []
    if owner is None and not any(d.pid == other.pid for d in cluster.jobs()["slow-0"].dones):
        bad.append("the paused worker acked an entry another worker owned")
    elif owner is None:
        bad.append("inconclusive: the new owner finished before the check")
    load = Load(submitter, prefix="k", rate_per_s=50, total=100).start()
    wait_until(load.finished, timeout_s=60, what="the follow-up load")
    verdict = settle(cluster)
    figure = (
        f"takeover after {takeover_s:.1f} s; owner at resume: {'successor' if owner else 'none'}"
    )
    return judge(cluster, verdict, figure, explained(cluster, [paused.pid]), bad)


def long_job(env: RowEnv, *worker_args: str) -> tuple[Cluster, Outcome]:
    """One job of 10 × `min_idle` (1 s) on one worker while a second one reclaims (it
    looks every 5 s)."""
    cluster = start_cluster(env, min_idle_s=1.0)
    first = cluster.worker(*worker_args)
    cluster.submitter().submit("work", "long-0", (10 * cluster.min_idle_s,))
    wait_until(lambda: running_key(cluster, first, "long-"), timeout_s=30, what="the long job")
    cluster.worker(*worker_args)
    verdict = settle(cluster)
    runs = len(cluster.jobs()["long-0"].starts)
    figure = f"10 × min_idle job started {runs}×"
    return cluster, judge(cluster, verdict, figure, no_duplicates(verdict))


@row(
    "worker-long-job",
    "worker",
    "a job of 10 × min_idle with lease renewal: duplicated = 0",
    ci=False,
)
def long_job_renewed(env: RowEnv) -> Outcome:
    """A long job keeps its lease: the idle second worker never takes it."""
    return long_job(env)[1]


@row(
    "worker-long-job-no-renewal",
    "worker",
    "negative control: renewal off, the checker must flag the duplicate",
    expect_red=("duplicated=",),
)
def long_job_not_renewed(env: RowEnv) -> Outcome:
    """The same with `--no-lease-renewal`: the second worker runs the job again."""
    return long_job(env, "--no-lease-renewal")[1]


def letter_for(cluster: Cluster, key: str) -> dict[bytes, bytes] | None:
    """The dead letter of the job with this key, if any."""
    for _, fields in cluster.client.xrange(cluster.keys.dlq):
        job = decode_job({JOB_FIELD: fields[JOB_FIELD]}, 2**62)
        if job.args and job.args[0] == key:
            return dict(fields)
    return None


def only_dead(verdict: Verdict, expected: int) -> list[str]:
    """Exactly the expected number of jobs were dead-lettered."""
    n = verdict.dead_lettered
    return [] if n == expected else [f"{n} jobs dead-lettered, not {expected}"]


def dead_lettered_after(
    cluster: Cluster, key: str, attempts: int, reason: str
) -> tuple[list[str], float]:
    """Wait for `key`'s dead letter; check it ran exactly `attempts` times and why it
    was given up. Returns (violations, seconds from the first start to the letter)."""
    letter = wait_until(lambda: letter_for(cluster, key), timeout_s=120, every_s=0.2,
                        what=f"the dead letter of {key}")  # fmt: skip
    job = cluster.jobs()[key]
    seconds = float(letter[b"at_ms"]) / 1000 - min(s.wall_s for s in job.starts)
    bad = []
    if len(job.starts) != attempts or int(letter[b"attempts"]) != attempts:
        bad.append(f"{key} ran {len(job.starts)}× and its letter says {int(letter[b'attempts'])}"
                   f" attempts; expected {attempts}")  # fmt: skip
    if reason not in letter[b"reason"].decode():
        bad.append(f"{key} dead-lettered for {letter[b'reason'].decode()!r}, not {reason!r}")
    return bad, seconds


@contextmanager
def crashing_fleet(env: RowEnv, workers: int) -> Iterator[tuple[Cluster, Submitter, Keeper]]:
    """A cluster whose crashed workers are replaced, under a steady load of short jobs."""
    cluster = start_cluster(env)
    keeper = Keeper(cluster, workers)
    submitter = cluster.submitter()
    with Load(submitter, prefix="k", rate_per_s=50, sleep_s=0.01):
        yield cluster, submitter, keeper
    keeper.stop()


@row(
    "worker-poison",
    "worker",
    "the job that kills its worker is dead-lettered after exactly max_attempts (3) runs, "
    "and no other job; lost = 0",
)
def poison_job(env: RowEnv) -> Outcome:
    """A job that kills every worker that runs it, among ordinary jobs."""
    with crashing_fleet(env, 2) as (cluster, submitter, keeper):
        submitter.submit("poison", "poison-0")
        bad, seconds = dead_lettered_after(cluster, "poison-0", 3, "gave up after 3 attempts")
    verdict = settle(cluster)
    figure = f"dead-lettered after 3 runs, {seconds:.0f} s; {len(keeper.exited)} workers died"
    return judge(cluster, verdict, figure, bad, only_dead(verdict, 1),
                 explained(cluster, keeper.exited))  # fmt: skip


@row(
    "worker-hung-handler",
    "worker",
    "hung jobs end at their time limit (or their worker exits), are dead-lettered after "
    "max_attempts (2), and no other job; lost = 0",
    ci=False,
)
def hung_handler(env: RowEnv) -> Outcome:
    """Two hung handlers: one Python can interrupt, one that blocks the time-limit signal."""
    with crashing_fleet(env, 2) as (cluster, submitter, keeper):
        submitter.submit("hang", "soft-0")
        submitter.submit("hang", "hard-0", (True,))
        soft_bad, soft_s = dead_lettered_after(cluster, "soft-0", 2, "JobTimeout")
        hard_bad, hard_s = dead_lettered_after(cluster, "hard-0", 2, "gave up after 2 attempts")
    verdict = settle(cluster)
    figure = f"interrupted: dead-lettered in {soft_s:.0f} s; unresponsive: {hard_s:.0f} s"
    return judge(cluster, verdict, figure, soft_bad, hard_bad, only_dead(verdict, 2),
                 explained(cluster, keeper.exited))  # fmt: skip


@row(
    "worker-crash-after-effect",
    "worker",
    "a crash between side effect and ack: the job runs again, is counted twice; lost = 0",
)
def crash_after_side_effect(env: RowEnv) -> Outcome:
    """Jobs whose first run does its side effect, then kills the worker before the ack."""
    crashers = [f"crash-{i}" for i in range(env.rng.randint(4, 6))]
    with crashing_fleet(env, 3) as (cluster, submitter, keeper):
        for key in crashers:
            submitter.submit("effect_then_crash", key)
        wait_until(lambda: all(len(cluster.jobs()[k].dones) >= 2 for k in crashers),
                   timeout_s=120, every_s=0.2, what="every crashed job to run again")  # fmt: skip
    verdict = settle(cluster)
    twice = [k for k in crashers if len(cluster.jobs()[k].dones) == 2]
    bad = [] if len(twice) == len(crashers) else [f"only {twice} of {crashers} ran exactly twice"]
    figure = f"{len(crashers)} crashes after the side effect, each job done twice"
    return judge(cluster, verdict, figure, bad, explained(cluster, keeper.exited))
