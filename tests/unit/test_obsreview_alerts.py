"""The controller-down alert, for the scrape job names the docs use."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.test_deploy_files import assert_alert_test_passes


@pytest.mark.parametrize(
    ("job", "fires"),
    [("fleetscale-example", True), ("media-fleetscale", True), ("node", False)],
    ids=["the compose job", "the Kubernetes guide's job", "another exporter"],
)
def test_a_controller_not_answering_scrapes_fires_for_any_fleetscale_job(
    job: str, fires: bool, tmp_path: Path
) -> None:
    labels = f'alertname="FleetscaleControllerDown",instance="c:9108",job="{job}"'
    check = {
        "expr": 'ALERTS{alertname="FleetscaleControllerDown",alertstate="firing"}',
        "eval_time": "3m",
        "exp_samples": [{"labels": f'ALERTS{{{labels},alertstate="firing",severity="warning"}}',
                         "value": 1}] if fires else [],
    }  # fmt: skip
    test = {
        "interval": "15s",
        "input_series": [{"series": f'up{{job="{job}",instance="c:9108"}}', "values": "0x20"}],
        "promql_expr_test": [check],
    }
    assert_alert_test_passes(test, tmp_path)
