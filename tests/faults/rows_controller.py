"""Controller faults: killed mid-scale-up, two controllers claiming one host id, and a
host whose wall clock is 5 s off."""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from pathlib import Path

from tests.faults.cluster import Cluster, start_cluster
from tests.faults.load import Load
from tests.faults.rows import Outcome, RowEnv, explained, judge, row, settle
from tests.faults.rows_worker import done_count, wait_done
from tests.support.fleet import alive, build_skewclock, host_fields
from tests.support.procs import wait_until


def fleet_workers(cluster: Cluster) -> set[int]:
    """Pids of the live worker processes of this cluster's fleet (a controller's
    preloaded fork parent, `worker --zygote`, runs no jobs and does not count)."""
    marker = f"FAULTS_FLEET={cluster.fleet}".encode()
    pids = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if marker in (entry / "environ").read_bytes() and is_worker(int(entry.name)):
                pids.add(int(entry.name))
    return {pid for pid in pids if alive(pid)}


def argv_of(pid: int) -> list[bytes]:
    """A process's arguments (empty once it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return []


def parent_of(pid: int) -> int:
    """A process's parent pid (0 once it is gone)."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def is_worker(pid: int) -> bool:
    """Whether `pid` is a `fleetscale worker` process that runs jobs. A worker forked
    by a zygote keeps the zygote's arguments (`worker APP --zygote`); the zygote is the
    one whose parent is not a zygote too."""
    argv = argv_of(pid)
    if b"worker" not in argv:
        return False
    return b"--zygote" not in argv or b"--zygote" in argv_of(parent_of(pid))


def descendants_of(pid: int) -> set[int]:
    """Pids of every live descendant of process `pid` (workers a controller forked
    through its zygote are its grandchildren)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError, IndexError, ValueError):
            if entry.name.isdigit():
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat.rsplit(") ", 1)[1].split()[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier}
        found |= frontier
    return {p for p in found if alive(p)}


class Census:
    """Counts the fleet's worker processes every 0.1 s; keeps the largest count."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.most = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="census", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self.most = max(self.most, len(fleet_workers(self.cluster)))

    def stop(self) -> int:
        """Stop counting; return the largest count seen."""
        self._stop.set()
        self._thread.join()
        return self.most


def above_max(most: int, limit: int) -> list[str]:
    """The fleet never ran more workers than its maximum."""
    return [f"{most} worker processes at once, above max {limit}"] if most > limit else []


@row(
    "controller-kill-mid-scale-up",
    "controller",
    "SIGKILL the controller while it starts workers: they all exit (no orphans), a "
    "restarted controller carries on, never above max; lost = 0",
)
def killed_mid_scale_up(env: RowEnv) -> Outcome:
    """Kill the controller while a scale-up is under way, then start it again."""
    cluster = start_cluster(env)
    limits = ("--capacity", "4", "--min", "0", "--max", "4", "--target-p99", "200ms")
    census = Census(cluster)
    first = cluster.controller("A", *limits)
    starting = env.rng.randint(2, 3)

    def scaling_up() -> bool:
        workers = sum(is_worker(p) for p in descendants_of(first.pid))
        ready = int(host_fields(cluster.client, cluster.keys, "A").get("ready") or 0)
        return workers >= starting and workers > ready

    with Load(cluster.submitter(), prefix="k", rate_per_s=100, sleep_s=0.05):
        wait_until(scaling_up, timeout_s=60, every_s=0.02, what="workers starting")
        orphans = descendants_of(first.pid)
        killed_workers = {p for p in orphans if is_worker(p)}
        first.signal(signal.SIGKILL)
        killed_s = time.monotonic()
        first.wait(10)
        wait_until(lambda: not any(alive(p) for p in orphans), timeout_s=60,
                   what="the killed controller's workers to exit")  # fmt: skip
        exit_s = time.monotonic() - killed_s
        cluster.controller("A", *limits)
        wait_done(cluster, done_count(cluster) + 300)
    verdict = settle(cluster)
    most = census.stop()
    workers = sum(1 for p in orphans if p in killed_workers)
    figure = (
        f"its {len(orphans)} processes ({workers} workers) exited {exit_s:.1f} s after the "
        f"kill; at most {most} workers"
    )
    return judge(cluster, verdict, figure, above_max(most, 4), explained(cluster, orphans))


@row(
    "controller-same-host-id",
    "controller",
    "two controllers started with one host id: one leader, one of them exits 2 naming the "
    "conflict, the fleet never above max; lost = 0",
)
def same_host_id(env: RowEnv) -> Outcome:
    """Two controllers claim host id A; the fleet is fixed at 2 workers."""
    cluster = start_cluster(env)
    limits = ("--capacity", "2", "--min", "2", "--max", "2")
    census = Census(cluster)
    controllers = [cluster.controller("A", *limits) for _ in range(2)]
    holders: set[bytes] = set()
    with Load(cluster.submitter(), prefix="k", rate_per_s=40, sleep_s=0.02):
        deadline = time.monotonic() + 60
        while all(c.alive() for c in controllers) and time.monotonic() < deadline:
            holders.add(cluster.client.get(cluster.keys.leader) or b"")  # sample the lease
            time.sleep(0.2)
        wait_done(cluster, done_count(cluster) + 50)
    verdict = settle(cluster)
    most = census.stop()
    leaders = {h for h in holders if h}
    bad = [] if len(leaders) == 1 else [f"leaders seen: {sorted(leaders)}"]
    exited = [c for c in controllers if not c.alive()]
    codes = [c.wait(1) for c in exited]
    if codes != [2] or "in use by another live controller" not in exited[0].output():
        bad.append(f"expected one controller to exit 2 on the conflict; exit codes {codes}")
    figure = f"{len(leaders)} leader; at most {most} workers; the second exits {codes}"
    return judge(cluster, verdict, figure, bad, above_max(most, 2))


def skewed(env: RowEnv, offset_s: float) -> dict[str, str]:
    """Environment that runs a process (and its workers) with its wall clock off by
    `offset_s`; the fault app subtracts it again, so the ledger keeps true time."""
    shim = build_skewclock(env.directory)
    return {"LD_PRELOAD": str(shim), "SKEWCLOCK_OFFSET_S": str(offset_s),
            "FAULTS_SKEW_S": str(offset_s)}  # fmt: skip


def close_enough(ledger_s: float | None, merged_s: float | None, skew_s: float) -> list[str]:
    """The merged p99 matches the ledger's well within the skew."""
    if ledger_s is None or merged_s is None:
        return [f"no p99 to compare (ledger {ledger_s}, merged {merged_s})"]
    if abs(merged_s - ledger_s) >= skew_s / 5:
        return [f"merged p99 {merged_s:.3f} s vs ledger {ledger_s:.3f} s with a {skew_s} s skew"]
    return []


@row(
    "controller-clock-skew",
    "controller",
    "one host's wall clock 5 s ahead: one leader, and the merged p99 wait matches the "
    "ledger's within 1 s; lost = 0",
    needs=("cc",),
    ci=False,
)
def clock_skew(env: RowEnv) -> Outcome:
    """Host A (controller and workers) runs 5 s ahead; host B is right."""
    cluster = start_cluster(env)
    limits = ("--capacity", "2", "--min", "4", "--max", "4", "--tick", "0.5s")
    ahead = cluster.controller("A", *limits, env=skewed(env, 5.0))
    cluster.controller("B", *limits)
    wait_until(lambda: len(fleet_workers(cluster)) == 4, timeout_s=60, what="4 workers")
    skewed_pids = {p for p in descendants_of(ahead.pid) if is_worker(p)}
    with Load(cluster.submitter(), prefix="k", rate_per_s=60, sleep_s=0.02):
        wait_done(cluster, 600)
    verdict = settle(cluster)
    merged = cluster.merged_p99_s()
    ran = sum(1 for j in cluster.jobs().values() for d in j.dones if d.pid in skewed_pids)
    bad = close_enough(verdict.wait_p99_s, merged, 5.0)
    bad += [] if ran else ["the skewed host ran no job"]
    gap_ms = abs((merged or 0) - (verdict.wait_p99_s or 0)) * 1000
    figure = f"the skewed host ran {ran} jobs; merged p99 off the ledger's by {gap_ms:.0f} ms"
    return judge(cluster, verdict, figure, bad)
