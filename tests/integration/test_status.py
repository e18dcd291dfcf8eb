"""`fleetscale status`: every field DESIGN §3 promises, from a real fleet."""

from __future__ import annotations

import json
import subprocess
import sys

from fleetscale.app import App
from fleetscale.cli.status import render
from fleetscale.config import RedisSettings
from fleetscale.keys import FleetKeys
from fleetscale.producer import Producer
from fleetscale.status import read_status
from fleetscale.store import Client
from tests.support.inproc import worker_thread
from tests.support.procs import REPO, wait_until

DESIGN_FIELDS = {
    "fleet", "leader", "hosts", "workers", "backlog", "arrival_rate_per_s", "wait_p50_s",
    "wait_p99_s", "head_of_line_age_s", "policy",
}  # fmt: skip


def test_status_reports_every_design_field_for_a_fleet_without_a_controller(
    fleet: str, redis_settings: RedisSettings, client: Client, keys: FleetKeys
) -> None:
    app = App(fleet)
    done: list[int] = []

    @app.task
    def job(i: int) -> None:
        done.append(i)

    Producer(fleet, redis_settings.url).submit_many([("job", (i,), {}) for i in range(200)])
    with worker_thread(app, redis_settings):
        wait_until(lambda: len(done) == 200, timeout_s=20, what="the jobs")

        def with_telemetry() -> dict | None:
            status = read_status(client, keys, redis_settings.url)
            return status if status["wait_samples"] else None

        status = wait_until(with_telemetry, timeout_s=10, what="telemetry")
    assert set(status) >= DESIGN_FIELDS
    assert set(status["workers"]) == {"desired", "running", "ready"}
    assert status["workers"]["running"] == 1 and status["workers"]["desired"] is None
    (host,) = status["hosts"]
    assert {"host", "running", "ready", "quota"} <= set(host)
    assert status["backlog"] == 0 and status["wait_p99_s"] is not None
    assert status["policy"] is None and status["leader"] is None


def test_status_json_is_one_object_and_the_text_view_names_the_fleet(
    fleet: str, redis_settings: RedisSettings
) -> None:
    Producer(fleet, redis_settings.url).submit("job", (1,))
    argv = [sys.executable, "-m", "fleetscale", "status", fleet, "--redis-url", redis_settings.url]
    as_json = subprocess.run(
        [*argv, "--json"], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert json.loads(as_json.stdout)["backlog"] == 1
    text = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert f"fleet {fleet}" in text and "backlog  1" in text


def test_a_wait_beyond_the_histograms_top_shows_as_at_least_that(
    fleet: str, redis_settings: RedisSettings, client: Client, keys: FleetKeys
) -> None:
    Producer(fleet, redis_settings.url).submit("never_run")
    status = read_status(client, keys, redis_settings.url) | {"wait_p99_s": 600.0}
    assert "p99 ≥600s" in render(status)
