"""Placing the fleet on hosts whose workers fail to start (`decide`'s last step)."""

from __future__ import annotations

import dataclasses

from fleetscale.controller.policy import HostView, Reason, decide
from tests.unit.test_policy import NOW_S, POLICY, need, observe, remembered

SIZE = need(50.0)  # the size `observe`'s fleet settles at, workers


def test_a_host_whose_workers_fail_to_start_hands_its_share_to_hosts_that_can() -> None:
    broken = HostView("broken", 16, 1, 0, 1, failing_starts=True)
    healthy = HostView("healthy", 16, SIZE // 2, SIZE // 2, 0)
    state = remembered(SIZE, quotas=(("broken", SIZE // 2), ("healthy", SIZE - SIZE // 2)))
    decision = decide(observe(SIZE, hosts=(broken, healthy)), state, POLICY, NOW_S)
    assert decision.desired == SIZE
    assert decision.quotas == {"broken": 2, "healthy": SIZE - 2}, "one more than it runs"


def test_with_no_host_to_take_it_the_failing_host_keeps_its_share_and_the_size_stands() -> None:
    alone = HostView("alone", 16, 0, 0, 0, failing_starts=True)
    decision = decide(observe(SIZE, hosts=(alone,)), remembered(SIZE), POLICY, NOW_S)
    assert decision.desired == SIZE and decision.reason is not Reason.HOST_CAPACITY
    assert decision.quotas == {"alone": SIZE}


def test_a_host_that_recovers_gets_nothing_back_until_the_fleet_grows() -> None:
    broken = HostView("broken", 16, 2, 2, 0, failing_starts=True)
    healthy = HostView("healthy", 16, SIZE - 2, SIZE - 2, 0)
    state = remembered(SIZE, quotas=(("broken", 2), ("healthy", SIZE - 2)))
    recovered = (dataclasses.replace(broken, failing_starts=False), healthy)
    decision = decide(observe(SIZE, hosts=recovered), state, POLICY, NOW_S)
    assert decision.quotas == {"broken": 2, "healthy": SIZE - 2}, "no churn back"
