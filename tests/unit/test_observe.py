"""The leader's reading of host heartbeats."""

from __future__ import annotations

from fleetscale.controller.observe import host_view
from fleetscale.registry import Member


def test_a_host_view_says_whether_its_controller_only_recommends() -> None:
    real = host_view(Member("r1", {"capacity": "4", "running": "1", "dry_run": "0"}))
    dry = host_view(Member("r2", {"capacity": "4", "dry_run": "1"}))
    assert (real.dry_run, real.capacity, real.running) == (False, 4, 1)
    assert (dry.dry_run, dry.capacity) == (True, 4)


def test_a_host_view_says_whether_its_workers_fail_to_start() -> None:
    backing_off = host_view(Member("b", {"capacity": "4", "running": "0", "backoff": "1"}))
    fine = host_view(Member("f", {"capacity": "4", "running": "2", "backoff": "0"}))
    older = host_view(Member("o", {"capacity": "4"}))  # a controller without the field
    assert (backing_off.failing_starts, fine.failing_starts, older.failing_starts) == (
        True, False, False,
    )  # fmt: skip
