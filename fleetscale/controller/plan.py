"""The leader's plan and decision log: their JSON forms and how they are read and written.

The plan is one JSON string: the fencing token it was written with, the desired fleet
size, per-host quotas, the reason, when (Redis seconds), the policy version, and the
policy's `State`, so a new leader resumes the old one's history (stabilisation
windows, smoothing) instead of starting cold. Writes go through `publish.lua`, which
refuses a stale token.
"""

from __future__ import annotations

import dataclasses
import json
import types
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, get_args, get_origin, get_type_hints

from redis.typing import EncodableT

from fleetscale.controller.policy import Decision, State
from fleetscale.errors import ConfigurationError
from fleetscale.keys import FleetKeys
from fleetscale.store import Client, read_bytes, redis_errors, script, stream_range


def _tuples(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value


def _fits(value: Any, hint: Any) -> bool:
    """Whether `value` (JSON, its lists made tuples) has the type `hint` of a State field.

    A whole number fits a float field (JSON does not tell 1 from 1.0); a bool fits no
    number field.
    """
    if hint is type(None):
        return value is None
    if hint is float or hint is int:
        numbers = (int, float) if hint is float else (int,)
        return isinstance(value, numbers) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    args = get_args(hint)
    if isinstance(hint, types.UnionType):
        return any(_fits(value, arg) for arg in args)
    if get_origin(hint) is tuple and isinstance(value, tuple):
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_fits(item, args[0]) for item in value)
        return len(value) == len(args) and all(map(_fits, value, args))
    return False


def state_to_dict(state: State) -> dict[str, Any]:
    """The policy state as JSON-ready fields."""
    return dataclasses.asdict(state)


def state_from_dict(data: Mapping[str, Any]) -> State:
    """Rebuild a policy state from its JSON fields, by the rolling-upgrade rules (see
    `fleetscale.keys`): unknown fields are ignored, and a field of another type (written
    by another version, `"desired": "3"`) reads as missing: it gets its default."""
    hints = get_type_hints(State)
    known = {k: _tuples(v) for k, v in data.items() if k in hints}
    return State(**{k: v for k, v in known.items() if _fits(v, hints[k])})


@dataclass(frozen=True, slots=True)
class Plan:
    """What the leader decided, as every host reads it.

    Attributes:
        token: the fencing token it was written with.
        leader: the leading host id.
        desired: the fleet size, workers.
        quotas: host id → workers.
        reason: the decision's reason code.
        decided_at_s: Redis time of the decision, seconds.
        policy_version: the version of the policy it applied.
        state: the policy state after the decision.
    """

    token: int
    leader: str
    desired: int
    quotas: Mapping[str, int]
    reason: str
    decided_at_s: float
    policy_version: int
    state: State

    def to_json(self) -> str:
        """The stored form."""
        body = dataclasses.asdict(self)
        body["state"] = state_to_dict(self.state)
        return json.dumps(body, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> Plan:
        """Parse the stored form; fields of a newer version are ignored (a rollout runs
        controllers and CLIs of both versions against one plan).

        Raises:
            TypeError: a field is missing or of another type; KeyError, ValueError:
                the quotas are missing or not numbers.
        """
        stored = json.loads(text)
        body = {f.name: stored[f.name] for f in dataclasses.fields(cls) if f.name in stored}
        hints = get_type_hints(cls)
        for name, value in body.items():
            if name not in ("quotas", "state") and not _fits(value, hints[name]):
                raise TypeError(f"its {name!r} is {value!r}, not of type {hints[name].__name__}")
        body["state"] = state_from_dict(stored.get("state", {}))
        body["quotas"] = {str(k): int(v) for k, v in stored["quotas"].items()}
        return cls(**body)


def decision_record(
    decision: Decision, *, leader: str, at_s: float, previous: int | None, dry_run: bool,
    policy_version: int, telemetry_age_s: float | None,
) -> dict[str, Any]:  # fmt: skip
    """A decision as `explain` shows it: outcome, reason and every input.

    `telemetry_age_s` is the age as read, before the policy judged it stale (the
    observation in the inputs shows stale signals as unknown).
    """
    inputs = dataclasses.asdict(decision.inputs)
    return {
        "at_s": at_s,
        "leader": leader,
        "dry_run": dry_run,
        "previous": previous,
        "desired": decision.desired,
        "quotas": dict(decision.quotas),
        "reason": decision.reason.value,
        "policy_version": policy_version,
        "telemetry_age_s": telemetry_age_s,
        "inputs": inputs,
    }


class PlanStore:
    """Reads the plan and the decision log; the leader publishes through it."""

    def __init__(self, client: Client, keys: FleetKeys, url: str) -> None:
        self.client = client
        self.keys = keys
        self.url = url
        self._publish = script(client, "publish")

    def read(self) -> Plan | None:
        """The current plan, or None before any leader wrote one.

        Raises:
            ConfigurationError: the plan is one this version cannot parse (a controller
                then holds its size as without a plan, instead of following its last one).
        """
        with redis_errors(self.url):
            raw = read_bytes(self.client, self.keys.plan)
        try:
            return Plan.from_json(raw) if raw else None
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigurationError(
                f"fleet {self.keys.fleet!r} has a plan this version cannot read "
                f"({type(exc).__name__}: {exc}); run the fleetscale version its controllers "
                "run (a leader rewrites the plan at each decision)"
            ) from None

    def publish(
        self, lease_id: str, token: int, plan: Plan | None, record: Mapping[str, Any]
    ) -> bool:
        """Write `plan` (None: only log) and the decision record, if `token` is current."""
        args: list[EncodableT] = [
            lease_id,
            token,
            plan.to_json() if plan else "",
            json.dumps(record),
        ]
        keys = [self.keys.leader, self.keys.fence, self.keys.plan, self.keys.decisions]
        with redis_errors(self.url):
            return bool(self._publish(keys=keys, args=args))

    def decisions(self, last: int) -> list[dict[str, Any]]:
        """The last `last` decision records, newest first; one that is not a JSON object
        in field `d` (another version's) is an empty record: its fields are unknown."""
        with redis_errors(self.url):
            entries = stream_range(self.client, self.keys.decisions, last, newest_first=True)
        return [_record(fields.get(b"d")) for _, fields in entries]


def _record(raw: bytes | None) -> dict[str, Any]:
    try:
        record = json.loads(raw or b"")
    except ValueError:  # UnicodeDecodeError too
        return {}
    return record if isinstance(record, dict) else {}
