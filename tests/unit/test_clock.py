"""Redis-time estimation, the drift-free schedule, and the guarded duties on it."""

from __future__ import annotations

import logging

import pytest

from fleetscale.clock import RedisTimeEstimate, Schedule
from fleetscale.duties import Duties


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_offset_is_measured_at_the_middle_of_the_round_trip() -> None:
    clock = FakeClock()
    estimate = RedisTimeEstimate(monotonic=clock)

    def redis_time() -> float:
        clock.now += 0.010  # 10 ms each way
        server = 5000.0
        clock.now += 0.010
        return server

    estimate.calibrate(redis_time)
    assert estimate.now_s() == pytest.approx(5000.0 + 0.010)


def test_a_sample_with_a_longer_round_trip_does_not_replace_a_better_one() -> None:
    clock = FakeClock()
    estimate = RedisTimeEstimate(monotonic=clock)
    estimate.calibrate(lambda: 5000.0)
    offset = estimate.offset_s

    def slow() -> float:
        clock.now += 1.0
        return 9999.0

    estimate.calibrate(slow)
    assert estimate.offset_s == offset


def test_the_estimate_ignores_the_wall_clock_entirely() -> None:
    clock = FakeClock()
    estimate = RedisTimeEstimate(monotonic=clock)
    estimate.calibrate(lambda: 1_000_000.0)
    clock.now += 2.5
    assert estimate.now_s() == pytest.approx(1_000_002.5)


def test_using_the_estimate_before_calibration_is_an_error() -> None:
    with pytest.raises(RuntimeError):
        RedisTimeEstimate().now_s()


def test_duties_fire_on_their_own_periods_without_drift() -> None:
    schedule = Schedule(start_s=0.0, periods_s={"fast": 1.0, "slow": 3.0})
    fired = {t / 10: schedule.due(t / 10) for t in range(0, 70, 5)}
    fast_times = [t for t, names in fired.items() if "fast" in names]
    slow_times = [t for t, names in fired.items() if "slow" in names]
    assert fast_times == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert slow_times == [0.0, 3.0, 6.0]


def test_a_late_loop_skips_missed_ticks_instead_of_bursting() -> None:
    schedule = Schedule(start_s=0.0, periods_s={"tick": 1.0})
    assert schedule.due(0.0) == ["tick"]
    assert schedule.due(5.3) == ["tick"]
    assert schedule.due(5.9) == []
    assert schedule.next_deadline() == pytest.approx(6.0)


def test_a_duty_that_raises_a_bug_is_logged_once_and_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ran: list[str] = []

    def broken() -> None:
        ran.append("broken")
        raise OverflowError("cannot convert float infinity to integer")

    duties = Duties(
        0.0,
        {"decide": (1.0, broken), "heartbeat": (1.0, lambda: ran.append("heartbeat"))},
        logging.getLogger("test.duties"),
        "host-a",
    )
    for now_s in (0.0, 1.0, 2.0):
        duties.run_due(now_s)
    assert ran == ["broken", "heartbeat"] * 3
    failures = [r for r in caplog.records if "decide failed unexpectedly" in r.getMessage()]
    assert len(failures) == 1 and failures[0].exc_info is not None
