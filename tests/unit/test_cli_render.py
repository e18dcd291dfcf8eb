"""The human views of `status` and `explain` say durations and rates the same way."""

from __future__ import annotations

from typing import Any

from fleetscale.cli.explain import render as render_decision


def decision(**observation: Any) -> dict[str, Any]:
    """A decision record as `explain --json` prints it, with the given observation."""
    seen = {"wait_p99_s": 0.2, "head_of_line_age_s": 0.0, "backlog": 0,
            "arrival_rate_per_s": 1.0, "service_time_s": 0.01, "telemetry_age_s": 0.2}  # fmt: skip
    return {
        "at_s": 1_700_000_000.0, "previous": 1, "desired": 3, "reason": "slo_breach",
        "quotas": {"host-a": 3}, "telemetry_age_s": 0.2,
        "inputs": {"observation": seen | observation, "capacity_workers": 3,
                   "drain_workers": 0, "wait_ratio": 2400.0},
    }  # fmt: skip


def test_explain_shows_a_wait_in_the_top_bucket_as_at_least_its_top_like_status() -> None:
    assert "wait p99 ≥600s" in render_decision(decision(wait_p99_s=600.0))


def test_explain_shows_large_and_small_values_without_scientific_notation() -> None:
    text = render_decision(
        decision(head_of_line_age_s=1234.5, arrival_rate_per_s=1234.5, service_time_s=0.000457)
    )
    assert "e+" not in text and "e-" not in text, text
    assert "head-of-line 1234.50s" in text and "service 457µs" in text, text
    assert "arrivals 1234.5/s" in text and "wait ratio 2400" in text, text


def test_explain_names_the_share_held_for_workers_whose_controller_lapsed() -> None:
    text = render_decision(decision(unattended=[["host-b", 2], ["host-c", 1]]))
    assert "held for workers whose controller lapsed: host-b 2 workers, host-c 1 worker" in text
    assert "held" not in render_decision(decision(unattended=[]))
