"""The stored policy across versions: keys a newer fleetscale wrote are ignored and kept."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from fleetscale.cli import main
from fleetscale.config import RedisSettings
from fleetscale.controller.policystore import PolicyStore
from fleetscale.errors import ConfigurationError
from fleetscale.keys import FleetKeys
from fleetscale.store import Client

NEWER = {"version": 4, "policy": {"target_p99_s": 0.3, "max": 9, "future_knob": "x"}}


def test_a_key_from_a_newer_version_is_ignored_and_kept_through_updates(
    redis_settings: RedisSettings, client: Client, keys: FleetKeys
) -> None:
    client.set(keys.policy, json.dumps(NEWER))
    store = PolicyStore(client, keys, redis_settings.url)
    stored = store.read()
    assert stored is not None
    assert (stored.policy.target_p99_s, stored.policy.max, stored.version) == (0.3, 9, 4)
    assert stored.unknown == {"future_knob": "x"}
    assert "future_knob" in stored.unknown_note()

    store.update({"min": "2"})
    written = json.loads(client.get(keys.policy) or "")
    assert written["version"] == 5
    assert (written["policy"]["min"], written["policy"]["future_knob"]) == (2, "x")


def test_policy_show_lists_a_newer_versions_key_as_ignored(
    fleet: str, redis_settings: RedisSettings, client: Client, keys: FleetKeys
) -> None:
    client.set(keys.policy, json.dumps(NEWER))
    url = ("--redis-url", redis_settings.url)
    shown = CliRunner().invoke(main, ["policy", fleet, "show", "--json", *url])
    assert shown.exit_code == 0, shown.output
    body = json.loads(shown.output)
    assert (body["version"], body["policy"]["max"], body["ignored"]) == (4, 9, {"future_knob": "x"})
    text = CliRunner().invoke(main, ["policy", fleet, "show", *url])
    assert "future_knob = x  (ignored: unknown to this version)" in text.output, text.output


@pytest.mark.parametrize(
    ("stored", "change"),
    [({"min": 9, "max": 3}, {"max": "12"}),
     ({"target_p99_s": "soon", "max": 9}, {"target_p99": "1s"})],
    ids=["min above max", "an unreadable value, set under its alias"],
)  # fmt: skip
def test_policy_set_repairs_a_stored_value_that_is_invalid(
    redis_settings: RedisSettings,
    client: Client,
    keys: FleetKeys,
    stored: dict[str, object],
    change: dict[str, str],
) -> None:
    client.set(keys.policy, json.dumps({"version": 7, "policy": stored}))
    store = PolicyStore(client, keys, redis_settings.url)
    says = f"set it right with `fleetscale policy {keys.fleet} set"
    with pytest.raises(ConfigurationError, match=says):
        store.read()
    updated = store.update(change)
    assert updated.version == 8
    assert store.read() == updated


def test_policy_set_on_a_stored_policy_that_is_not_json_says_how_to_start_over(
    redis_settings: RedisSettings, client: Client, keys: FleetKeys
) -> None:
    client.set(keys.policy, '{"version": 3, "policy": {"max": ')
    with pytest.raises(ConfigurationError, match="DEL") as raised:
        PolicyStore(client, keys, redis_settings.url).update({"max": "8"})
    assert keys.policy in str(raised.value)
