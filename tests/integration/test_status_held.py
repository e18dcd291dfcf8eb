"""`fleetscale status` with a paused controller: the share the plan holds for its
workers shows on their host's row, and the text view says why."""

from __future__ import annotations

from fleetscale.cli.status import render
from fleetscale.config import RedisSettings
from fleetscale.controller.plan import Plan
from fleetscale.controller.policy import State
from fleetscale.keys import FleetKeys
from fleetscale.registry import LiveSet, Registry
from fleetscale.status import read_status
from fleetscale.store import Client, redis_time_s


def test_a_lapsed_hosts_running_workers_show_the_share_the_plan_holds_for_them(
    redis_settings: RedisSettings, client: Client, keys: FleetKeys
) -> None:
    url = redis_settings.url
    client.set(keys.leader, "A#1")
    LiveSet(client, url, keys.hosts, keys.host).heartbeat(
        "A", 10, {"host": "A", "capacity": 4, "running": 2, "ready": 2, "quota": 2}
    )
    workers = Registry(client, keys, url)
    for n, host in enumerate("AABB"):
        fields = {"host": host, "state": "running", "controller": "7"}
        workers.heartbeat(f"{host}:{n}:w", 10, fields)
    # B's controller is paused: its registration lapsed, the leader holds B's share.
    plan = Plan(1, "A", 4, {"A": 2, "B": 2}, "at_target", redis_time_s(client), 1, State())
    client.set(keys.plan, plan.to_json())
    status = read_status(client, keys, url)
    rows = {row["host"]: row for row in status["hosts"]}
    assert (rows["B"]["running"], rows["B"]["quota"], rows["B"]["capacity"]) == (2, 2, None)
    assert rows["A"]["quota"] == 2
    assert "host B: running 2  ready 2  quota 2  capacity -" in render(status)
    assert "the plan holds this share for its workers" in render(status)
