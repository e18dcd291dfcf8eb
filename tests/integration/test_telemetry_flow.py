"""Worker telemetry as the leader reads it, from a real worker and Redis: long jobs and
warm spares."""

from __future__ import annotations

import threading
import time

from fleetscale.app import App
from fleetscale.config import RedisSettings, WorkerSettings
from fleetscale.fleetview import FleetView, read_fleet_view
from fleetscale.keys import FleetKeys
from fleetscale.producer import Producer
from fleetscale.store import Client
from fleetscale.telemetry import WindowDelta
from fleetscale.worker.process import build_worker
from tests.support.inproc import worker_thread
from tests.support.procs import wait_until


def test_a_long_jobs_wait_and_busy_time_reach_the_leader_while_it_runs(
    fleet: str, redis_settings: RedisSettings, client: Client, keys: FleetKeys
) -> None:
    app = App(fleet)
    release = threading.Event()

    @app.task
    def long_job() -> None:
        release.wait(60)

    Producer(fleet, redis_settings.url).submit("long_job")
    with worker_thread(app, redis_settings):
        try:

            def seen_running() -> FleetView | None:
                view = read_fleet_view(client, keys, redis_settings.url, window_s=5.0)
                busy = view.busy_fraction or 0.0
                return view if view.wait_samples and busy > 0.5 else None

            view = wait_until(seen_running, timeout_s=20, what="the running job in telemetry")
            assert view.pending == 1, "the job was still running"
        finally:
            release.set()


def test_a_warm_spares_waiting_time_is_not_up_time(
    fleet: str, redis_settings: RedisSettings, client: Client, keys: FleetKeys
) -> None:
    parts = build_worker(App(fleet), redis_settings, WorkerSettings(block_ms=100))
    housekeeper = parts.housekeeper
    housekeeper.calibrate()
    housekeeper.warm = True
    housekeeper.flush()
    time.sleep(2.0)
    housekeeper.flush()  # two warm seconds
    housekeeper.warm = False
    housekeeper.flush()
    up_s = sum(window.up_us for window in windows(client, keys)) / 1e6
    assert up_s < 1.0, f"{up_s:.2f} s of up time recorded for a warm spare"
    housekeeper.retire()


def windows(client: Client, keys: FleetKeys) -> list[WindowDelta]:
    now_s = int(client.time()[0])
    raw = [client.hgetall(keys.telemetry(w)) for w in range(now_s - 10, now_s + 2)]
    return [WindowDelta.from_fields(r) for r in raw if r]


def test_the_arrival_rate_is_known_when_the_newest_sample_has_just_been_taken(
    fleet: str, redis_settings: RedisSettings, client: Client, keys: FleetKeys
) -> None:
    Producer(fleet, redis_settings.url).submit_many([("noop", (), {})] * 30)
    seconds, micros = client.time()
    now_ms = int(seconds) * 1000 + int(micros) // 1000
    # Samples a second or more apart: one just left the 2 s range, one was just taken.
    client.zadd(
        keys.arrivals, {f"{now_ms - 2500}:0": now_ms - 2500, f"{now_ms - 100}:30": now_ms - 100}
    )
    view = read_fleet_view(client, keys, redis_settings.url, arrival_window_s=2.0)
    assert view.arrival_rate_per_s is not None, "unknown for a second at every other tick"
    assert 30 / 2.7 < view.arrival_rate_per_s < 30 / 2.3
