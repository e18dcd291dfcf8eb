"""`fleetscale status` in the states a fleet passes through: leader gone, host holding."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from fleetscale.config import RedisSettings
from fleetscale.exitcode import ExitCode
from fleetscale.jobstream import JobStream
from fleetscale.keys import FleetKeys
from fleetscale.metrics import PrometheusRecorder
from fleetscale.producer import Producer
from fleetscale.status import read_status
from fleetscale.store import Client
from tests.integration.test_obsreview_metrics import controller
from tests.support.procs import REPO


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


@pytest.mark.parametrize(
    "stored",
    ['{"token": 1}', "not json", "[]", '{"token": 1, "leader": "a", "desired": 1, '
     '"quotas": {"a": "x"}, "reason": "r", "decided_at_s": 1, "policy_version": 1}'],
    ids=["fields missing", "not json", "not an object", "bad quota"],
)  # fmt: skip
def test_a_plan_this_version_cannot_read_is_one_line_and_a_usage_exit(
    stored: str, fleet: str, redis_settings: RedisSettings, client: Client, keys: FleetKeys
) -> None:
    Producer(fleet, redis_settings.url).submit("job")
    client.set(keys.plan, stored)
    result = subprocess.run(
        [sys.executable, "-m", "fleetscale", "status", fleet, "--json",
         "--redis-url", redis_settings.url],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == ExitCode.USAGE, result.stderr
    assert result.stderr.startswith("fleetscale: error: ") and result.stderr.count("\n") == 1
    assert "plan this version cannot read" in result.stderr and result.stdout == ""


def test_explain_json_is_strict_json_even_when_a_stored_decision_holds_a_nan(
    fleet: str, redis_settings: RedisSettings, client: Client, keys: FleetKeys
) -> None:
    Producer(fleet, redis_settings.url).submit("job")
    record = {"at_s": 1.0, "previous": 1, "desired": 1, "reason": "hold_unknown",
              "inputs": {"wait_ratio": math.nan, "correction": math.inf}}  # fmt: skip
    client.xadd(keys.decisions, {"d": json.dumps(record)})
    result = subprocess.run(
        [sys.executable, "-m", "fleetscale", "explain", fleet, "--json",
         "--redis-url", redis_settings.url],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip

    def refuse(token: str) -> None:
        raise AssertionError(f"explain --json printed {token}, which is no JSON")

    (decision,) = json.loads(result.stdout, parse_constant=refuse)["decisions"]
    assert decision["inputs"] == {"wait_ratio": None, "correction": None}
