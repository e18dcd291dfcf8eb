"""Telemetry on the worker's per-job path: what `Consumer._execute` asks of the recorder."""

from __future__ import annotations

import random
import sys
from types import FrameType
from typing import Any, cast

from fleetscale import telemetry
from fleetscale.app import App
from fleetscale.clock import RedisTimeEstimate
from fleetscale.codec import Job, encode_job
from fleetscale.config import WorkerSettings
from fleetscale.jobstream import Delivery, JobStream
from fleetscale.keys import JOB_FIELD
from fleetscale.telemetry import TelemetryBuffer
from fleetscale.worker.consumer import Consumer

JOBS = 1000
EVERY = 50


class SettlingStream:
    """A stream without Redis: every settle and lease renewal succeeds, nothing is lost."""

    def settle(self, *args: Any, **kwargs: Any) -> list[bytes]:
        return []

    def renew(self, *args: Any, **kwargs: Any) -> list[bytes]:
        return []


def test_a_job_not_sampled_costs_the_recorder_one_call() -> None:
    # A Python call costs a no-op job about as much as the rest of its telemetry: a
    # job that is not sampled gets one (`finish`), a sampled one a second for its wait.
    app = App("per-job")

    @app.task
    def noop() -> None:
        pass

    buffer = TelemetryBuffer()
    consumer = Consumer(
        app=app,
        stream=cast(JobStream, SettlingStream()),
        worker_id="w",
        settings=WorkerSettings(sample_every=EVERY),
        clock=RedisTimeEstimate(offset_s=0.0),
        buffer=buffer,
        watchdog=None,
        rng=random.Random(3),
    )
    payload = encode_job(Job("j", "noop"), 1 << 20)
    batch = [Delivery(b"%d-0" % i, {JOB_FIELD: payload}, 1, True) for i in range(JOBS)]
    calls: list[str] = []

    def count(frame: FrameType, event: str, arg: object) -> None:
        caller = frame.f_back
        if (
            event == "call"
            and frame.f_code.co_filename == telemetry.__file__
            and caller is not None
            and caller.f_code is Consumer._execute.__code__
        ):
            calls.append(frame.f_code.co_name)

    sys.setprofile(count)
    try:
        consumer._run_batch(batch)
    finally:
        sys.setprofile(None)
    windows = buffer.take().values()
    samples = sum(window.samples for window in windows)
    assert JOBS / EVERY / 3 < samples < JOBS / EVERY * 3
    assert sum(window.wait.total() for window in windows) == samples * EVERY
    assert sum(window.run.total() for window in windows) == samples * EVERY
    assert len(calls) == JOBS + samples, "one call a job, a second for a sampled one"
    assert calls.count("start_sample") == samples
    assert consumer.recorder is not None and consumer.recorder.running_since is None
