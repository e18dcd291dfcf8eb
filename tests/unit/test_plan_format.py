"""The stored plan is read by controllers and CLIs of other versions during a rollout."""

from __future__ import annotations

import json

from fleetscale.controller.plan import Plan
from fleetscale.controller.policy import State


def test_a_plan_with_a_field_a_newer_version_added_is_read_ignoring_it() -> None:
    plan = Plan(7, "a", 3, {"a": 2, "b": 1}, "backlog", 1000.5, 4, State(desired=3))
    newer = json.loads(plan.to_json()) | {"zone_quotas": {"eu": 3}}
    assert Plan.from_json(json.dumps(newer)) == plan


def test_a_plan_survives_its_stored_form() -> None:
    plan = Plan(7, "a", 3, {"a": 2, "b": 1}, "backlog", 1000.5, 4, State(desired=3))
    assert Plan.from_json(plan.to_json()) == plan
