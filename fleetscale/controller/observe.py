"""What the leader reads each tick, turned into the policy's `Observation` (pure)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable

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


IDLE_STATES = ("warm", "draining")
"""Worker registration states (field `state`) of workers that take no jobs."""


def lapsed_hosts(quotas: Iterable[tuple[str, int]], hosts: Iterable[Member]) -> set[str]:
    """Hosts of the last plan (`quotas`: host, quota) whose controller registration has
    lapsed: their workers, if any still run, run unattended. A quota of 0 counts too: a
    host held at 0 (the fleet was smaller than its workers) may still run them."""
    live = {member.id for member in hosts}
    return {host for host, _ in quotas if host not in live}


def unattended_workers(
    workers: Iterable[Member], lapsed: Collection[str]
) -> tuple[tuple[str, int], ...]:
    """(host, workers taking jobs there) for each host of `lapsed` that still has live
    worker registrations, by host name. Only workers a controller started count (field
    `controller`): one started by hand names its machine, often a controller's host id
    too, and no plan counts it. A warm spare or a draining worker takes no jobs."""
    counts = Counter(
        worker.host
        for worker in workers
        if worker.host in lapsed
        and "controller" in worker.fields
        and worker.fields.get("state") not in IDLE_STATES
    )
    return tuple(sorted(counts.items()))


def observation(
    view: FleetView, hosts: Iterable[Member], unattended: tuple[tuple[str, int], ...] = ()
) -> Observation:
    """The fleet view, the live hosts and the workers no controller attends as one
    `Observation`."""
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
        unattended=unattended,
    )
