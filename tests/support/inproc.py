"""Run a worker inside the test process, on a thread, for fast integration tests.

Time limits are not enforced here (signals reach only the main thread); tests of
signals and time limits use real worker processes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

from fleetscale.app import App
from fleetscale.config import RedisSettings, WorkerSettings
from fleetscale.worker.consumer import Consumer
from fleetscale.worker.process import build_worker


@dataclass
class RunningWorker:
    consumer: Consumer
    thread: threading.Thread


@contextmanager
def worker_thread(
    app: App, redis: RedisSettings, settings: WorkerSettings | None = None
) -> Iterator[RunningWorker]:
    """A worker consuming `app`'s fleet until the block ends (then it drains)."""
    parts = build_worker(app, redis, settings or WorkerSettings(block_ms=100))
    parts.housekeeper.start()
    thread = threading.Thread(target=parts.consumer.run, daemon=True)
    thread.start()
    try:
        yield RunningWorker(parts.consumer, thread)
    finally:
        parts.consumer.drain()
        thread.join(timeout=30)
        parts.housekeeper.stop()


def run_burst(app: App, redis: RedisSettings, settings: WorkerSettings | None = None) -> Consumer:
    """Run a worker on this thread until the stream is drained; return its consumer."""
    base = settings or WorkerSettings(block_ms=100)
    parts = build_worker(app, redis, _burst(base))
    parts.housekeeper.start()
    try:
        parts.consumer.run()
    finally:
        parts.housekeeper.stop()
    return parts.consumer


def _burst(settings: WorkerSettings) -> WorkerSettings:
    return replace(settings, burst=True)
