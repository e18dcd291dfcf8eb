"""The simulator's decision phase: decision ticks at phase + k × period, as a real
controller started before the load ticks at some phase of the trace's clock."""

from __future__ import annotations

import pytest

from bench.control import decision_phase
from fleetscale.errors import ConfigurationError
from fleetscale.sim.engine import SimConfig, simulate, ticks
from fleetscale.sim.service import service_time
from fleetscale.sim.trace import parse_trace
from tests.unit.test_sim_engine import Recorder

FLAT = parse_trace("t_s,rate_per_s\n0,5\n30,0\n", "flat")


def test_the_phase_shifts_the_decision_ticks_and_leaves_the_whole_seconds() -> None:
    assert list(ticks(1.0, 3.0, 0.25)) == [
        (0.0, True, False),  # the fleet the trace starts with
        (0.25, True, False),
        (1.0, False, True),
        (1.25, True, False),
        (2.0, False, True),
        (2.25, True, False),
        (3.0, False, True),
    ]


def test_the_scaler_decides_at_the_phase_and_the_timeline_keeps_a_row_a_second() -> None:
    recorder = Recorder(1)
    config = SimConfig(hosts=(("h", 4),), decision_phase_s=0.4)
    run = simulate(FLAT, recorder, service_time(0.1, 0), config)
    decided = [t for t, _ in recorder.seen]
    assert decided == pytest.approx([0.0] + [0.4 + k for k in range(30)])
    assert [row.t_s for row in run.timeline] == [float(s) for s in range(1, 31)]


def test_phase_zero_ticks_as_before() -> None:
    assert list(ticks(1.0, 30.0, 0.0)) == list(ticks(1.0, 30.0))
    assert list(ticks(1.0, 30.0))[:2] == [(0.0, True, False), (1.0, True, True)]


@pytest.mark.parametrize("phase_s", [-0.1, 1.0, 2.5, float("nan")])
def test_a_phase_outside_the_period_is_refused(phase_s: float) -> None:
    recorder = Recorder(1)
    with pytest.raises(ConfigurationError, match="decision phase"):
        simulate(FLAT, recorder, service_time(0.1, 0), SimConfig(decision_phase_s=phase_s))
    assert recorder.seen == []


@pytest.mark.parametrize(
    ("times_s", "phase_s"),
    [
        ([k + 0.313 for k in range(-5, 300)], 0.313),
        ([k + (0.99 if k % 2 else 0.01) for k in range(100)], 0.0),  # around the boundary
        ([k + 0.52 for k in range(50)] + [k + 0.48 for k in range(50)], 0.5),
    ],
    ids=["steady", "jitter across the boundary", "jitter mid-period"],
)
def test_bench_control_reads_the_phase_of_the_controllers_ticks(
    times_s: list[float], phase_s: float
) -> None:
    found = decision_phase(times_s, 1.0)
    assert 0.0 <= found < 1.0
    assert min(abs(found - phase_s), 1.0 - abs(found - phase_s)) == pytest.approx(0.0, abs=1e-9)
