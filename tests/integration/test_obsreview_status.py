"""`fleetscale status` in the states a fleet passes through: leader gone, host holding."""

from __future__ import annotations

from fleetscale.config import RedisSettings
from fleetscale.jobstream import JobStream
from fleetscale.keys import FleetKeys
from fleetscale.metrics import PrometheusRecorder
from fleetscale.status import read_status
from fleetscale.store import Client
from tests.integration.test_obsreview_metrics import controller


def test_without_a_leader_the_desired_size_is_unknown_and_the_last_decision_stays(
    fleet: str, redis_settings: RedisSettings, client: Client, keys: FleetKeys
) -> None:
    url = redis_settings.url
    JobStream(client, keys, url).ensure_group()
    rec = controller(client, keys, url, "a", PrometheusRecorder("a"))
    try:
        rec.lead()
        rec.heartbeat()
        rec.decide()
        rec.converge()
        rec.heartbeat()
        status = read_status(client, keys, url)
        assert status["leader"] == "a" and status["workers"]["desired"] == 2
        assert [h["quota"] for h in status["hosts"]] == [2]

        rec.quota = None  # its plan went stale: the host holds its size
        rec.heartbeat()
        client.delete(keys.leader)  # and no controller leads any more
        status = read_status(client, keys, url)
        assert status["leader"] is None
        assert status["workers"]["desired"] is None, "a stopped leader's plan is not current"
        assert [h["quota"] for h in status["hosts"]] == [None], "the host follows no quota"
        assert status["last_decision"]["desired"] == 2, "the last decision is still shown"
    finally:
        rec.supervisor.stop_all()
