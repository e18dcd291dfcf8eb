"""Rolling upgrades: controllers read a plan that a leader of another fleetscale version
wrote."""

from __future__ import annotations

import json

import pytest

from fleetscale.config import RedisSettings
from fleetscale.errors import ConfigurationError
from fleetscale.keys import FleetKeys
from fleetscale.store import Client
from tests.integration.test_reconciler import reconciler


def test_a_plan_this_version_cannot_parse_makes_the_host_hold_its_size_not_follow_the_last(
    client: Client, keys: FleetKeys, redis_settings: RedisSettings
) -> None:
    rec = reconciler(client, keys, redis_settings.url)
    rec.lead()
    rec.heartbeat()
    rec.decide()
    rec.converge()
    assert rec.plan is not None and rec.quota == 0, "it follows the plan it can read"
    stored = json.loads(client.get(keys.plan) or b"") | {"quotas": [["h1", 2]]}
    client.set(keys.plan, json.dumps(stored))
    with pytest.raises(ConfigurationError, match="plan this version cannot read"):
        rec.converge()
    assert rec.plan is None and rec.quota is None, "no plan: the host holds its size"
