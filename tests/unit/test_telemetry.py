"""Sampling, window deltas and the pure summary of telemetry windows."""

from __future__ import annotations

import random

import pytest

from fleetscale.clock import RedisTimeEstimate
from fleetscale.fleetview import FLUSH_LAG_S, summarize
from fleetscale.telemetry import (
    FlushTally,
    JobRecorder,
    Sampler,
    TelemetryBuffer,
    WindowDelta,
    window_of,
)


def test_one_in_n_sampling_weighs_samples_so_totals_are_unbiased() -> None:
    sampler = Sampler(every=10, target_per_s=1, rng=random.Random(3))
    weights = [sampler.take() for _ in range(100_000)]
    taken = [w for w in weights if w]
    assert 0.09 < len(taken) / len(weights) < 0.11
    assert sum(taken) == pytest.approx(100_000, rel=0.05)


def test_sampling_every_job_takes_every_job() -> None:
    sampler = Sampler(every=1, target_per_s=1)
    assert all(sampler.take() == 1 for _ in range(1000))


def test_adaptive_sampling_follows_the_job_rate() -> None:
    sampler = Sampler(every=0, target_per_s=200)
    sampler.adapt(jobs=4000, elapsed_s=2.0)
    assert sampler.every == 10
    sampler.adapt(jobs=10, elapsed_s=1.0)
    assert sampler.every == 1


def test_a_fixed_sampling_rate_does_not_adapt() -> None:
    sampler = Sampler(every=10, target_per_s=200)
    sampler.adapt(jobs=1, elapsed_s=1.0)
    assert sampler.every == 10


def test_window_deltas_round_trip_through_hash_fields() -> None:
    delta = WindowDelta(busy_us=5, up_us=7, done=3, failed=1, samples=2)
    delta.wait.record(0.2, 10)
    delta.run.record(0.01, 10)
    fields = {k.encode(): str(v).encode() for k, v in delta.fields().items()}
    back = WindowDelta.from_fields(fields)
    assert back.fields() == delta.fields()


def test_the_buffer_merges_deltas_of_the_same_window() -> None:
    buffer = TelemetryBuffer()
    buffer.add(10, WindowDelta(done=1))
    buffer.add(10, WindowDelta(done=2))
    buffer.add(11, WindowDelta(done=5))
    taken = buffer.take()
    assert {w: d.done for w, d in taken.items()} == {10: 3, 11: 5}
    assert buffer.take() == {}


def test_windows_are_whole_seconds_of_redis_time() -> None:
    assert window_of(1000.7) == 1000


def _window(
    done: int, wait_s: float | None = None, busy_us: int = 0, up_us: int = 1_000_000
) -> WindowDelta:
    delta = WindowDelta(done=done, busy_us=busy_us, up_us=up_us)
    if wait_s is not None:
        delta.wait.record(wait_s, done)
    return delta


def test_the_summary_takes_quantiles_from_recent_windows_and_rates_from_settled_ones() -> None:
    now = 1000.0
    windows = {w: _window(done=10, wait_s=0.1, busy_us=500_000) for w in range(985, 1000)}
    windows[999] = _window(done=1, wait_s=5.0)  # still filling: counted in quantiles only
    summary = summarize(windows, now_s=now, window_s=10.0)
    assert summary.wait.quantile(0.5) == pytest.approx(0.1, rel=0.05)
    settled = [w for w in windows if now - FLUSH_LAG_S - 10 <= w and w + 1 <= now - FLUSH_LAG_S]
    assert summary.completed_per_s == pytest.approx(10 * len(settled) / 10.0)
    assert summary.busy_fraction == pytest.approx(0.5)
    assert summary.service_time_s == pytest.approx(0.05)
    assert summary.telemetry_age_s == pytest.approx(0.0)


def test_no_telemetry_means_unknown_not_zero() -> None:
    summary = summarize({}, now_s=1000.0, window_s=10.0)
    assert summary.wait.quantile(0.99) is None
    assert summary.busy_fraction is None
    assert summary.service_time_s is None
    assert summary.completed_per_s is None
    assert summary.telemetry_age_s is None


def test_old_windows_make_the_telemetry_stale() -> None:
    summary = summarize({900: _window(done=1)}, now_s=1000.0, window_s=10.0)
    assert summary.telemetry_age_s == pytest.approx(99.0)
    assert summary.completed_per_s is None


@pytest.mark.parametrize("now", [1000.0, 1000.5, 1000.99])
@pytest.mark.parametrize("window_s", [5.0, 10.0, 2.5])
def test_rates_are_per_second_of_the_whole_windows_they_cover(now: float, window_s: float) -> None:
    windows = {w: _window(done=40) for w in range(980, 1001)}
    summary = summarize(windows, now_s=now, window_s=window_s)
    assert summary.completed_per_s == pytest.approx(40.0)


def test_the_service_time_counts_the_run_time_of_failed_jobs_per_failed_job_too() -> None:
    windows = {w: WindowDelta(busy_us=400_000, up_us=1_000_000, done=20, failed=20)
               for w in range(980, 1000)}  # fmt: skip
    assert summarize(windows, now_s=1000.0, window_s=5.0).service_time_s == pytest.approx(0.01)
    for delta in windows.values():
        delta.done, delta.failed = 0, 40
    assert summarize(windows, now_s=1000.0, window_s=5.0).service_time_s == pytest.approx(0.01)


def recorder(buffer: TelemetryBuffer) -> JobRecorder:
    clock = RedisTimeEstimate(offset_s=1000.0)
    return JobRecorder(buffer, Sampler(every=1, target_per_s=1), clock)


def test_a_sampled_jobs_wait_is_handed_over_when_it_starts_not_when_it_ends() -> None:
    buffer = TelemetryBuffer()
    jobs = recorder(buffer)
    assert jobs.sample_weight == 1, "every job is sampled"
    jobs.start_sample(started_s=5.0, entry_id=b"1004000-0")  # Redis 1005.0, enqueued 1004.0
    started = buffer.take()
    assert list(started) == [1005]
    assert started[1005].wait.quantile(0.5) == pytest.approx(1.0, rel=0.04)

    jobs.finish(run_s=30.0)
    jobs.commit(now_s=35.0)
    ended = buffer.take()
    assert list(ended) == [1035], "run times land in the window the batch ends in"
    assert ended[1035].samples == 0, "the sample was counted with its wait"
    assert ended[1035].run.quantile(0.5) == pytest.approx(30.0, rel=0.04)


def test_busy_time_counts_the_running_job_as_it_runs() -> None:
    jobs = recorder(TelemetryBuffer())
    assert jobs.busy_s(now_s=1.0) == 0.0
    jobs.running_since = 2.0  # as the worker starts a job
    assert jobs.busy_s(now_s=7.0) == pytest.approx(5.0)
    jobs.finish(run_s=6.0)
    assert jobs.busy_s(now_s=100.0) == pytest.approx(6.0)


def test_a_flush_files_the_busy_time_and_outcomes_since_the_last_one() -> None:
    tally = FlushTally()
    first = tally.delta(up_s=1.0, busy_s=0.5, done=3, failed=1)
    assert (first.up_us, first.busy_us, first.done, first.failed) == (1_000_000, 500_000, 3, 1)
    second = tally.delta(up_s=1.0, busy_s=1.5, done=10, failed=1)
    assert (second.busy_us, second.done, second.failed) == (1_000_000, 7, 0)
    behind = tally.delta(up_s=1.0, busy_s=1.4, done=10, failed=1)  # a read an instant early
    assert behind.busy_us == 0
    assert tally.delta(up_s=1.0, busy_s=2.0, done=10, failed=1).busy_us == 500_000


def test_the_recorder_samples_the_jobs_the_sampler_takes_with_their_weights() -> None:
    # JobRecorder.finish runs Sampler.take's countdown itself, a job ahead: the same
    # jobs must be sampled, their wait and run each recorded once with their weight.
    expected = Sampler(every=7, target_per_s=1, rng=random.Random(5))
    weights = [expected.take() for _ in range(3000)]
    buffer = TelemetryBuffer()
    sampler = Sampler(every=7, target_per_s=1, rng=random.Random(5))
    jobs = JobRecorder(buffer, sampler, RedisTimeEstimate(offset_s=1000.0))
    waits, runs = [], []
    for i in range(3000):
        if jobs.sample_weight:
            jobs.start_sample(started_s=float(i), entry_id=b"1000000-0")
        waits.append(sum(d.wait.total() + d.run.total() for d in buffer.take().values()))
        jobs.finish(run_s=0.01)
        jobs.commit(now_s=float(i))
        runs.append(sum(d.run.total() + d.wait.total() for d in buffer.take().values()))
    assert 300 < sum(map(bool, weights)) < 600
    assert waits == weights
    assert runs == weights
