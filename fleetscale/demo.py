"""`fleetscale demo`: the whole system on one machine, with nothing to install.

Starts a private Redis (or uses the one given), worker processes for the demo app
below, and a producer that submits jobs at a steady rate; prints the fleet's status
as it goes and a summary at the end: jobs submitted and completed, lost, wait p50/p99.
Every process it starts is stopped on the way out, Ctrl-C included.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from fleetscale.app import App
from fleetscale.config import RedisSettings
from fleetscale.embedded import EmbeddedRedis
from fleetscale.fleetview import FLUSH_LAG_S, read_fleet_view
from fleetscale.keys import FleetKeys
from fleetscale.producer import Producer
from fleetscale.store import Client, connect

DEMO_FLEET = "demo"
app = App(DEMO_FLEET)


@app.task
def work(duration_s: float) -> None:
    """The demo job: sleep, standing in for I/O-bound work, seconds."""
    time.sleep(duration_s)


@dataclass(frozen=True, slots=True)
class DemoSettings:
    """What the demo runs.

    Attributes:
        duration_s: how long the producer submits, seconds.
        workers: worker processes to start.
        rate_per_s: jobs submitted per second.
        job_s: how long each job runs, seconds.
        redis_url: an existing Redis to use; None starts a private one.
    """

    duration_s: float = 20.0
    workers: int = 2
    rate_per_s: float = 50.0
    job_s: float = 0.02
    redis_url: str | None = None


@dataclass(frozen=True, slots=True)
class DemoSummary:
    """The demo's outcome."""

    submitted: int
    completed: int
    lost: int
    wait_p50_s: float | None
    wait_p99_s: float | None


@contextlib.contextmanager
def _redis(url: str | None) -> Iterator[str]:
    if url is not None:
        yield url
        return
    with (
        tempfile.TemporaryDirectory(prefix="fleetscale-demo-") as tmp,
        EmbeddedRedis(Path(tmp)) as server,
    ):
        yield server.url


@contextlib.contextmanager
def _workers(count: int, url: str) -> Iterator[list[subprocess.Popen[bytes]]]:
    env = {**os.environ, "FLEETSCALE_REDIS_URL": url}
    argv = [
        sys.executable,
        "-m",
        "fleetscale",
        "worker",
        "fleetscale.demo:app",
        "--log-level",
        "warning",
    ]
    started = [subprocess.Popen(argv, env=env) for _ in range(count)]
    try:
        yield started
    finally:
        for proc in started:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in started:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def run_demo(settings: DemoSettings, show: Callable[[str], None]) -> DemoSummary:
    """Run the demo; `show` receives one status line a second."""
    with _redis(settings.redis_url) as url, _workers(settings.workers, url):
        redis = RedisSettings(url=url)
        producer = Producer(DEMO_FLEET, url, redis=redis)
        client = connect(redis)
        keys = FleetKeys(DEMO_FLEET)
        started = time.monotonic()
        submitted = _produce(producer, settings, lambda: show(_line(client, keys, url)))
        deadline = time.monotonic() + 30
        while producer.backlog() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(FLUSH_LAG_S + 1.5)  # the last telemetry flushes land
        window_s = time.monotonic() - started + 5
        view = read_fleet_view(client, keys, url, window_s=window_s)
    # `done` counters are exact (not sampled); the view turns them into a rate.
    completed = round((view.completed_per_s or 0.0) * window_s)
    return DemoSummary(
        submitted=submitted,
        completed=completed,
        lost=max(0, submitted - completed),
        wait_p50_s=view.wait_p50_s,
        wait_p99_s=view.wait_p99_s,
    )


def _produce(producer: Producer, settings: DemoSettings, tick: Callable[[], None]) -> int:
    start = time.monotonic()
    submitted = 0
    next_tick = start + 1.0
    while (now := time.monotonic()) < start + settings.duration_s:
        due = int((now - start) * settings.rate_per_s) - submitted
        if due > 0:
            producer.submit_many([("work", (settings.job_s,), {})] * due)
            submitted += due
        if now >= next_tick:
            tick()
            next_tick += 1.0
        time.sleep(0.01)
    return submitted


def _line(client: Client, keys: FleetKeys, url: str) -> str:
    view = read_fleet_view(client, keys, url)
    p99 = "-" if view.wait_p99_s is None else f"{view.wait_p99_s * 1000:.0f}ms"
    return f"workers {view.workers_live}  backlog {view.backlog}  wait p99 {p99}"
