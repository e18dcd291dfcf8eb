"""The fleet's scaling policy in Redis: validated, versioned, swapped atomically.

Stored as one JSON string `{"version": n, "policy": {...}}`. `update` applies
`KEY=VALUE` changes to the stored policy, validates the result and writes it with
the next version only if nobody wrote in between (WATCH/MULTI); a bad value raises
`ConfigurationError` and leaves the stored policy as it was. The changes apply before
the stored values are checked, so a stored value that is invalid can be set right.
Controllers reload it every tick and swap their reference in one assignment.

Keys this version does not know (written by a newer version during a rolling upgrade)
are kept aside, ignored by this version's decisions and written back unchanged by its
updates, so an older controller or CLI neither stops on them nor erases them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import redis

from fleetscale.controller.policy import Policy
from fleetscale.controller.policytypes import is_policy_key
from fleetscale.errors import ConfigurationError, FleetscaleError
from fleetscale.keys import FleetKeys
from fleetscale.store import Client, read_bytes, redis_errors


@dataclass(frozen=True, slots=True)
class VersionedPolicy:
    """A policy, its version (1 for the first one stored) and the stored keys this
    version does not know (kept as stored, never used)."""

    policy: Policy
    version: int
    unknown: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        """The stored form."""
        stored = {**self.unknown, **self.policy.to_dict()}
        return json.dumps({"version": self.version, "policy": stored})

    def unknown_note(self) -> str:
        """A one-line note naming the stored keys this version ignores ('' if none)."""
        if not self.unknown:
            return ""
        return (
            f"policy version {self.version} sets keys this version of fleetscale does not "
            f"know and ignores: {', '.join(sorted(self.unknown))} (written by a newer version?)"
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> VersionedPolicy:
        """Parse the stored form; raises ConfigurationError if it is malformed or a
        known key's value is bad."""
        version, stored = _parse_stored(text)
        known, unknown = _split(stored)
        return cls(Policy.from_settings(known), version, unknown)


def _parse_stored(text: str | bytes) -> tuple[int, dict[str, Any]]:
    """The version and the `policy` object of the stored form (ConfigurationError if
    it is not that)."""
    try:
        body = json.loads(text)
        return int(body["version"]), dict(body["policy"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigurationError(
            f"the stored policy is not a JSON {{version, policy}} object: {exc}"
        ) from None


def _split(stored: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, Any]]:
    """The keys this version knows (values as strings, as `KEY=VALUE` gives them) and
    the others."""
    known = {k: str(v) for k, v in stored.items() if is_policy_key(k)}
    return known, {k: v for k, v in stored.items() if not is_policy_key(k)}


class PolicyStore:
    """Reads, seeds and updates one fleet's stored policy."""

    def __init__(self, client: Client, keys: FleetKeys, url: str) -> None:
        self.client = client
        self.keys = keys
        self.url = url

    def read(self) -> VersionedPolicy | None:
        """The stored policy, or None when the fleet has none yet.

        Raises:
            ConfigurationError: the stored policy is malformed or has a bad value; the
                message says how to set it right.
        """
        with redis_errors(self.url):
            raw = read_bytes(self.client, self.keys.policy)
        if not raw:
            return None
        try:
            return VersionedPolicy.from_json(raw)
        except ConfigurationError as exc:
            fleet = self.keys.fleet
            raise ConfigurationError(
                f"fleet {fleet!r} has a stored policy this version refuses: {exc}; set it "
                f"right with `fleetscale policy {fleet} set KEY=VALUE`"
            ) from None

    def seed(self, policy: Policy) -> VersionedPolicy:
        """Store `policy` as version 1 unless one is stored; return what is stored."""
        first = VersionedPolicy(policy.validate(), 1)
        with redis_errors(self.url):
            self.client.set(self.keys.policy, first.to_json(), nx=True)
        stored = self.read()
        assert stored is not None
        return stored

    def update(self, changes: Mapping[str, str]) -> VersionedPolicy:
        """Apply `KEY=VALUE` changes to the stored policy (or the defaults) atomically.

        Raises:
            ConfigurationError: an unknown key or a bad value; nothing is written.
            FleetscaleError: another writer kept changing it (after 5 tries).
        """
        if not changes:
            raise ConfigurationError("nothing to set: give KEY=VALUE pairs, e.g. target_p99=300ms")
        with redis_errors(self.url):
            for _ in range(5):
                pipe: Any
                with self.client.pipeline(transaction=True) as pipe:
                    try:
                        pipe.watch(self.keys.policy)
                        raw = pipe.get(self.keys.policy)
                        updated = _updated(raw, changes, self.keys.policy)
                        pipe.multi()
                        pipe.set(self.keys.policy, updated.to_json())
                        pipe.execute()
                        return updated
                    except redis.WatchError:
                        continue
        raise FleetscaleError("the policy kept changing under this update; try again")


def _updated(raw: bytes | None, changes: Mapping[str, str], key: str) -> VersionedPolicy:
    """The next version of the stored policy `raw` (None: the defaults, version 0) with
    `changes`. They apply to the stored values before those are checked, so a stored
    value that became invalid can be set right."""
    if raw is None:
        return VersionedPolicy(Policy().with_updates(**changes), 1)
    try:
        version, stored = _parse_stored(raw)
    except ConfigurationError as exc:
        raise ConfigurationError(
            f"{exc}; `policy set` cannot repair that: delete the key {key!r} (e.g. with "
            "redis-cli DEL) and set the policy again"
        ) from None
    known, unknown = _split(stored)
    return VersionedPolicy(Policy.from_settings({**known, **changes}), version + 1, unknown)
