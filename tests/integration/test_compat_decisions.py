"""Rolling upgrades: `explain` shows decision records that leaders of other fleetscale
versions wrote."""

from __future__ import annotations

import json

from click.testing import CliRunner

from fleetscale.cli.root import main
from fleetscale.config import RedisSettings
from fleetscale.keys import FleetKeys
from fleetscale.producer import Producer
from fleetscale.store import Client


def test_explain_shows_records_of_another_shape_as_unknown_without_a_traceback(
    client: Client, keys: FleetKeys, redis_settings: RedisSettings
) -> None:
    Producer(keys.fleet, redis_settings.url).submit("job", (1,))
    client.xadd(keys.decisions, {"record": json.dumps({"desired": 3})})  # renamed field
    client.xadd(keys.decisions, {"d": json.dumps([3, "backlog"])})  # not an object
    client.xadd(keys.decisions, {"d": json.dumps({"desired": 4, "at_s": "2030-01-01T00:00Z",
                                                  "inputs": [["wait_ratio", 2]]})})  # fmt: skip
    args = ["explain", keys.fleet, "--redis-url", redis_settings.url]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert result.output.count("unknown → unknown workers") == 2
    assert "unknown → 4 workers" in result.output
    as_json = CliRunner().invoke(main, [*args, "--json"])
    assert json.loads(as_json.output)["decisions"][1:] == [{}, {}]
