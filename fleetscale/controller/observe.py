"""What the leader reads each tick, turned into the policy's `Observation` (pure)."""

from __future__ import annotations

from collections.abc import Iterable

from fleetscale.controller.policy import HostView, Observation
from fleetscale.fleetview import FleetView
from fleetscale.registry import Member


def host_view(member: Member) -> HostView:
    """A host's heartbeat fields as the policy's `HostView` (missing counts are 0)."""
    return HostView(
        host=member.id,
        capacity=member.count("capacity"),
        running=member.count("running"),
        ready=member.count("ready"),
        starting=member.count("starting"),
        dry_run=bool(member.count("dry_run")),
        failing_starts=bool(member.count("backoff")),
    )


def observation(view: FleetView, hosts: Iterable[Member]) -> Observation:
    """The fleet view and the live hosts as one `Observation`."""
    return Observation(
        wait_p50_s=view.wait_p50_s,
        wait_p99_s=view.wait_p99_s,
        head_of_line_age_s=view.head_of_line_age_s,
        backlog=view.backlog,
        arrival_rate_per_s=view.arrival_rate_per_s,
        service_time_s=view.service_time_s,
        service_cv=view.service_cv,
        completed_per_s=view.completed_per_s,
        busy_fraction=view.busy_fraction,
        telemetry_age_s=view.telemetry_age_s,
        hosts=tuple(sorted((host_view(m) for m in hosts), key=lambda h: h.host)),
    )
