"""Run the demo: a private Redis, a real controller with its workers, a load, a live view.

The controller and the Redis run in sessions of their own, so a Ctrl-C in the terminal
reaches the demo only, which then stops the controller with one SIGTERM (its workers
drain first, on a Redis still up). On Linux both die with the demo however it ends,
and a demo removes the files that killed demos left. The demo follows its load, shows
a frame a second, waits for the queue to drain, stops the controller, checks that no
process of it is left, and sums up from the ledger and what is still queued.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fleetscale.codec import MalformedJob, decode_job
from fleetscale.config import RedisSettings
from fleetscale.controller.plan import PlanStore
from fleetscale.demo.app import DEMO_FLEET, LEDGER_ENV
from fleetscale.demo.interrupt import Interrupts
from fleetscale.demo.load import JOB_S, Load, demo_trace
from fleetscale.demo.view import Frame, Summary, summarise
from fleetscale.demo.workdir import demo_directory
from fleetscale.embedded import EmbeddedRedis, parent_death_signal
from fleetscale.errors import FleetscaleError
from fleetscale.fleetview import read_fleet_view
from fleetscale.keys import GROUP, JOB_FIELD, FleetKeys
from fleetscale.producer import Producer
from fleetscale.sim.engine import SimConfig, simulate
from fleetscale.sim.report import nearest_rank
from fleetscale.sim.scaler import StaticScaler
from fleetscale.sim.service import service_time
from fleetscale.sim.trace import Trace, load_trace
from fleetscale.store import Client, connect, redis_errors

HOST = "demo-host"
DRAIN_WAIT_S = 30.0
"""The shortest wait for the queue to drain after the load, seconds."""
MAX_JOB_BYTES = 1 << 20
"""The largest job `queued_keys` decodes (the demo's are a few dozen bytes)."""


@dataclass(frozen=True, slots=True)
class DemoSettings:
    """What the demo runs.

    Attributes:
        duration_s: length of the load, seconds (the built-in trace stretches to it).
        target_p99_s: the wait target, seconds.
        capacity: the most workers the demo host may run.
        trace: a shipped trace name or CSV path instead of the built-in one.
        redis_url: an existing Redis to use; None starts a private one.
        seed: seeds the arrivals.
    """

    duration_s: float = 60.0
    target_p99_s: float = 0.5
    capacity: int = 24
    trace: str | None = None
    redis_url: str | None = None
    seed: int = 1

    def load_trace(self) -> Trace:
        """The trace the load follows."""
        return load_trace(self.trace) if self.trace else demo_trace(self.duration_s)


@contextlib.contextmanager
def private_redis(url: str | None, directory: Path) -> Iterator[str]:
    """The given Redis, or a private one (AOF on) in `directory`."""
    if url is not None:
        yield url
        return
    with EmbeddedRedis(directory) as server:
        yield server.url


def forget_fleet(client: Client, keys: FleetKeys, url: str) -> None:
    """Delete what an earlier demo left of its fleet (only `fs:{demo}:*` keys)."""
    pattern = keys.prefix.replace("{", "\\{").replace("}", "\\}") + "*"
    with redis_errors(url):
        for key in client.scan_iter(match=pattern, count=1000):
            client.delete(key)


def start_controller(url: str, ledger: Path, settings: DemoSettings) -> subprocess.Popen[bytes]:
    """The demo host's controller, in a session of its own."""
    capacity = str(settings.capacity)
    argv = [sys.executable, "-m", "fleetscale", "controller", "fleetscale.demo.app:app",
            "--host-id", HOST, "--capacity", capacity, "--max", capacity, "--min", "1",
            "--warm", "1", "--target-p99", f"{settings.target_p99_s}s",
            "--log-level", "warning"]  # fmt: skip
    env = {**os.environ, "FLEETSCALE_REDIS_URL": url, LEDGER_ENV: str(ledger)}
    # SIGTERM (a drain) when the demo dies without stopping it (kill -9); the
    # preexec_fn only calls prctl, getppid and kill.
    return subprocess.Popen(argv, env=env, start_new_session=True, stdin=subprocess.DEVNULL,
                            preexec_fn=parent_death_signal(signal.SIGTERM))  # noqa: PLW1509 # fmt: skip


def stop_controller(
    controller: subprocess.Popen[bytes], hurry: Callable[[], bool], patience_s: float = 60.0
) -> None:
    """SIGTERM the controller (its workers drain), then wait until its whole process
    group has gone; SIGKILL the group after `patience_s` seconds, or as soon as
    `hurry()` is true.

    Raises:
        FleetscaleError: the group is still there 10 s after SIGKILL.
    """
    group = controller.pid
    with contextlib.suppress(ProcessLookupError):
        controller.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + patience_s
    while _group_alive(controller) and time.monotonic() < deadline and not hurry():
        time.sleep(0.1)
    if _group_alive(controller):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _group_alive(controller):
            if time.monotonic() > deadline:
                raise FleetscaleError(
                    f"the demo's controller and workers (process group {group}) survived "
                    f"SIGKILL; see `ps -o pid,stat,cmd -g {group}`"
                )
            time.sleep(0.05)
    controller.wait()


def _group_alive(controller: subprocess.Popen[bytes]) -> bool:
    """True while any process of the controller's group exists (zombies included)."""
    controller.poll()  # reap the controller itself: its zombie would keep the group
    try:
        os.killpg(controller.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Watcher:
    """Reads one frame of the fleet a second."""

    def __init__(self, client: Client, url: str, load: Load) -> None:
        self.client = client
        self.url = url
        self.load = load
        self.keys = FleetKeys(DEMO_FLEET)
        self.plans = PlanStore(client, self.keys, url)
        self.started = time.monotonic()

    def frame(self) -> Frame:
        """The fleet now."""
        view = read_fleet_view(self.client, self.keys, self.url, window_s=5.0)
        with redis_errors(self.url):
            raw: dict[bytes, bytes] = self.client.hgetall(self.keys.host(HOST))  # type: ignore[assignment]
        host = {k.decode(): v.decode() for k, v in raw.items()}
        plan = self.plans.read()
        return Frame(
            t_s=round(time.monotonic() - self.started),
            rate_per_s=self.load.rate_now(),
            desired=plan.desired if plan else None,
            running=int(host.get("ready") or 0),
            starting=int(host.get("starting") or 0),
            warm=int(host.get("warm") or 0),
            backlog=view.backlog,
            wait_p50_s=view.wait_p50_s,
            wait_p99_s=view.wait_p99_s,
            reason=plan.reason if plan else None,
        )


def drain_wait_s(backlog: int | None, capacity: int, load_s: float) -> float:
    """How long to wait for `backlog` jobs to drain after a load of `load_s` seconds:
    twice what `capacity` workers need, at least `DRAIN_WAIT_S`, and no longer than the
    load lasted unless that is shorter than `DRAIN_WAIT_S`."""
    needed_s = 2 * (backlog or 0) * JOB_S / capacity
    return min(max(DRAIN_WAIT_S, needed_s), max(DRAIN_WAIT_S, load_s))


def follow(
    watcher: Watcher, trace: Trace, show: Callable[[Frame], None], capacity: int
) -> list[Frame]:
    """One frame a second while the load runs, then until the queue drains or the
    drain wait (`drain_wait_s` of the backlog when the load ends) is over."""
    frames: list[Frame] = []
    end = time.monotonic() + trace.duration_s
    drained_by: float | None = None
    while True:
        frame = watcher.frame()
        frames.append(frame)
        show(frame)
        now = time.monotonic()
        if now >= end and drained_by is None:
            drained_by = end + drain_wait_s(frame.backlog, capacity, trace.duration_s)
        if drained_by is not None and (now >= drained_by or not frame.backlog):
            return frames
        time.sleep(max(0.0, 1.0 - (time.monotonic() - watcher.started) % 1.0))


def read_ledger(path: Path) -> dict[str, list[float]]:
    """Job key → start times, from the demo task's ledger."""
    started: dict[str, list[float]] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            key, wall = line.split()
            started.setdefault(key, []).append(float(wall))
    return started


def queued_keys(client: Client, keys: FleetKeys, url: str) -> set[str]:
    """Keys (the demo task's first argument) of the jobs still in Redis: not yet
    delivered, delivered and not acknowledged, or waiting to be retried."""
    with redis_errors(url):
        entries = _unacknowledged(client, keys)
        delayed: list[Any] = list(client.zrange(keys.delayed, 0, -1))
    entries += [{JOB_FIELD: member} for member in delayed]
    found = set()
    for fields in entries:
        with contextlib.suppress(MalformedJob):
            job = decode_job(fields, MAX_JOB_BYTES)
            if job.args and isinstance(job.args[0], str):
                found.add(job.args[0])
    return found


def _unacknowledged(client: Client, keys: FleetKeys) -> list[dict[bytes, bytes]]:
    """Fields of the stream entries past the group's last delivery, and of its pending ones."""
    if not client.exists(keys.jobs):
        return []
    groups = [g for g in client.xinfo_groups(keys.jobs) if g["name"] == GROUP.encode()]
    entries: list[Any]
    if not groups:
        entries = list(client.xrange(keys.jobs) or [])
        return [fields for _, fields in entries if fields]
    group = groups[0]
    after = b"(" + group["last-delivered-id"]  # exclusive: Redis 6.2 or later
    entries = list(client.xrange(keys.jobs, min=after, max="+") or [])
    pending = client.xpending_range(keys.jobs, GROUP, min="-", max="+",
                                    count=max(1, int(group["pending"])))  # fmt: skip
    pipe = client.pipeline(transaction=False)
    for entry in pending:
        pipe.xrange(keys.jobs, entry["message_id"], entry["message_id"])
    entries += [entry for found in pipe.execute() for entry in found]
    return [fields for _, fields in entries if fields]


def smallest_static_fleet(trace: Trace, settings: DemoSettings) -> tuple[int, float] | None:
    """The fewest fixed workers meeting the target on `trace` (simulated), and their
    worker-seconds; None when even `capacity` workers would not."""
    service = service_time(JOB_S, 0.0)
    config = SimConfig(target_p99_s=settings.target_p99_s, hosts=((HOST, settings.capacity),),
                       seed=settings.seed)  # fmt: skip
    for workers in range(1, settings.capacity + 1):
        run = simulate(trace, StaticScaler(workers), service, config)
        if nearest_rank(sorted(run.waits_s), 0.99) <= settings.target_p99_s:
            return workers, workers * trace.duration_s
    return None


def run_demo(
    settings: DemoSettings, show: Callable[[Frame], None], interrupts: Interrupts
) -> tuple[Summary, list[Frame]]:
    """Run the demo; `show` gets a frame a second.

    Whatever ends it (its end, an error, a KeyboardInterrupt from `interrupts`), every
    process it started has exited and its files are removed when this returns or
    raises; a signal during that cleanup only hurries it (`Interrupts`).

    Raises:
        FleetscaleError: Redis trouble, a controller that failed, or processes that
            survived SIGKILL.
    """
    trace = settings.load_trace()
    cleanup = contextlib.ExitStack()
    try:
        workdir = cleanup.enter_context(demo_directory())
        url = cleanup.enter_context(private_redis(settings.redis_url, workdir / "redis"))
        client = connect(RedisSettings(url=url))
        forget_fleet(client, FleetKeys(DEMO_FLEET), url)
        ledger = workdir / "ledger.txt"
        controller = start_controller(url, ledger, settings)
        cleanup.callback(stop_controller, controller, lambda: interrupts.hurry)
        load = Load(Producer(DEMO_FLEET, url), trace, seed=settings.seed)
        cleanup.callback(load.stop)
        _await_host(client, url, controller)
        load.start()
        frames = follow(Watcher(client, url, load), trace, show, settings.capacity)
        with interrupts.deferred():
            load.stop()
            stop_controller(controller, lambda: interrupts.hurry)
            # After the workers have drained: what is still in Redis never ran, and is
            # not lost.
            queued = queued_keys(client, FleetKeys(DEMO_FLEET), url)
            started = read_ledger(ledger)
    finally:
        with interrupts.deferred():
            cleanup.close()
    static = smallest_static_fleet(trace, settings)
    summary = summarise(load.submitted, started, queued, frames,
                        target_p99_s=settings.target_p99_s, static=static)  # fmt: skip
    return summary, frames


def _await_host(client: Client, url: str, controller: subprocess.Popen[bytes]) -> None:
    keys = FleetKeys(DEMO_FLEET)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if controller.poll() is not None:
            raise FleetscaleError(f"the demo's controller exited with code {controller.returncode}")
        with redis_errors(url):
            ready, warm = client.hmget(keys.host(HOST), ["ready", "warm"])
        # A worker up, ready or warm: at capacity 1 the warm spare never fits.
        if int(ready or 0) + int(warm or 0) >= 1:
            return
        time.sleep(0.1)
    raise FleetscaleError("the demo's controller did not start its workers within 30 s")
