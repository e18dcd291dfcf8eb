"""The status of a fleet, as `fleetscale status` prints it: one place that composes
the fleet view, the hosts and their quotas, the live workers, the leader, the plan,
the policy and the dead-letter count."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from fleetscale.config import redact_url
from fleetscale.controller.leader import host_of
from fleetscale.controller.plan import Plan, PlanStore
from fleetscale.controller.policystore import PolicyStore
from fleetscale.deadletters import DeadLetters
from fleetscale.errors import ConfigurationError
from fleetscale.fleetview import read_fleet_view
from fleetscale.keys import FleetKeys
from fleetscale.registry import LiveSet, Member, Registry
from fleetscale.store import Client, read_bytes, redis_errors


def _quota(member: Member) -> int | None:
    """The quota a host's controller follows now, as its heartbeat says; None while it
    holds its size (no fresh plan) or only recommends (dry run)."""
    return member.number("quota")


def hosts_of(
    workers: list[Member], hosts: list[Member], planned: Mapping[str, int] | None = None
) -> list[dict[str, Any]]:
    """One row per host: from its controller's heartbeat where it has one (with quota,
    capacity, warm spares and start-up errors), else from its workers' heartbeats, with
    the quota the current plan (`planned`: host → quota) holds for them, if any: a
    paused controller's workers keep their share while it is away."""
    planned = planned or {}
    rows = [
        {
            "host": h.id,
            "running": h.count("running"),
            "ready": h.count("ready"),
            "quota": _quota(h),
            "capacity": h.count("capacity"),
            "warm": h.count("warm"),
            "spawn_failures": h.count("spawn_failures"),
            "last_error": h.fields.get("last_error") or None,
        }
        for h in hosts
    ]
    controlled = {h.id for h in hosts}
    running = Counter(w.host for w in workers if w.host not in controlled)
    ready = Counter(
        w.host for w in workers if w.host not in controlled and w.fields.get("state") == "running"
    )
    rows += [
        {"host": name, "running": running[name], "ready": ready[name], "quota": planned.get(name),
         "capacity": None, "warm": 0, "spawn_failures": 0, "last_error": None}
        for name in running
    ]  # fmt: skip
    return sorted(rows, key=lambda r: str(r["host"]))


def current_desired(plan: Plan | None, leader: str | None) -> int | None:
    """The fleet size hosts are being sized to: the plan of the controller leading now.

    None without a leader (hosts then hold their size; the plan left by a controller
    that has since stopped is history, shown as the last decision) and while the
    leader only recommends (a dry run writes no plan).
    """
    return (
        plan.desired if plan is not None and leader is not None and plan.leader == leader else None
    )


def fleet_exists(client: Client, keys: FleetKeys, url: str) -> bool:
    """Whether this Redis holds anything of the fleet: jobs, workers, dead letters,
    hosts or a policy (one round trip)."""
    with redis_errors(url):
        return bool(client.exists(keys.jobs, keys.workers, keys.dlq, keys.hosts, keys.policy))


def require_fleet(client: Client, keys: FleetKeys, url: str) -> None:
    """Refuse a fleet this Redis holds nothing of (a likely typo in its name or the URL).

    Raises:
        ConfigurationError: the fleet has no trace in this Redis.
    """
    if not fleet_exists(client, keys, url):
        raise ConfigurationError(
            f"unknown fleet {keys.fleet!r}: nothing of it in Redis at {redact_url(url)}; "
            "check the fleet name and --redis-url"
        )


def read_status(
    client: Client, keys: FleetKeys, url: str, window_s: float = 10.0
) -> dict[str, Any]:
    """Everything `status --json` reports (field names documented in the README).

    Raises:
        ConfigurationError: the fleet has no trace in this Redis (a likely typo).
    """
    require_fleet(client, keys, url)
    with redis_errors(url):
        leader = read_bytes(client, keys.leader)
    view = read_fleet_view(client, keys, url, window_s)
    workers = Registry(client, keys, url).live()
    hosts = LiveSet(client, url, keys.hosts, keys.host).live()
    plan = PlanStore(client, keys, url).read()
    policy = PolicyStore(client, keys, url).read()
    leader_host = host_of(leader.decode()) if leader else None
    current = plan if current_desired(plan, leader_host) is not None else None
    rows = hosts_of(workers, hosts, current.quotas if current else None)
    return {
        "fleet": keys.fleet,
        "leader": leader_host,
        "hosts": rows,
        "workers": {
            "desired": current_desired(plan, leader_host),
            "running": sum(r["running"] for r in rows),
            "ready": sum(r["ready"] for r in rows),
        },
        **{k: v for k, v in view.to_dict().items() if k != "fleet"},
        "dead_letters": DeadLetters(client, keys, url).count(),
        "last_decision": {"reason": plan.reason, "at_s": plan.decided_at_s, "desired": plan.desired}
        if plan
        else None,
        "policy": {**policy.policy.to_dict(), "version": policy.version} if policy else None,
    }
