"""The fleet's merged wait quantiles against the exact waits of the same jobs."""

from __future__ import annotations

import math
import os
import shutil
import time
from pathlib import Path

import msgpack
import pytest

from fleetscale.fleetview import FleetView, read_fleet_view
from fleetscale.keys import JOB_FIELD, FleetKeys
from fleetscale.producer import Producer
from fleetscale.store import Client
from tests.support.fleet import LedgerFleet, build_skewclock
from tests.support.ledger import read_ledger
from tests.support.procs import wait_until

BURSTS = 10
BURST_JOBS = 2000
JOB_S = 0.002


def exact_quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def skewed_clock_env(tmp_path: Path, skew_s: float) -> dict[str, str]:
    """Environment that runs a process with its wall clock `skew_s` seconds ahead."""
    if shutil.which("cc") is None:
        if os.environ.get("CI"):
            pytest.fail("a C compiler (cc) is needed to build the clock-skew shim")
        pytest.skip("no C compiler for the clock-skew shim")
    shim = build_skewclock(tmp_path)
    return {
        "LD_PRELOAD": str(shim),
        "SKEWCLOCK_OFFSET_S": str(skew_s),
        "FLEETSCALE_TEST_SKEW_S": str(skew_s),
    }


def exact_waits(client: Client, keys: FleetKeys, ledger_path) -> list[float]:
    """Wait of every job: its start (ledger, true time) minus its enqueue time (entry id)."""
    enqueued = {}
    for entry_id, fields in client.xrange(keys.jobs):
        key = msgpack.unpackb(fields[JOB_FIELD])["args"][0]
        enqueued[key] = int(entry_id.split(b"-")[0]) / 1000
    return [e.wall_s - enqueued[e.key] for e in read_ledger(ledger_path) if e.kind == "start"]


@pytest.mark.parametrize("skewed", [False, True], ids=["clocks-agree", "one-worker-5s-ahead"])
@pytest.mark.timeout(240)
def test_the_merged_p99_of_four_sampling_workers_is_within_10_percent_of_exact(
    ledger_fleet: LedgerFleet, client: Client, keys: FleetKeys, skewed: bool, tmp_path: Path
) -> None:
    workers = [ledger_fleet.worker("--sample-every", "10") for _ in range(3)]
    env = skewed_clock_env(tmp_path, 5.0) if skewed else {}
    workers.append(ledger_fleet.worker("--sample-every", "10", env=env))
    producer = Producer(ledger_fleet.fleet, ledger_fleet.redis_url)
    started = time.monotonic()
    total = BURSTS * BURST_JOBS
    for b in range(BURSTS):
        # Bursts queue up: waits spread from 0 to about a second.
        producer.submit_many([("record", (f"k{b}-{i}", JOB_S), {}) for i in range(BURST_JOBS)])
        wait_until(lambda b=b: len(read_ledger(ledger_fleet.ledger)) >= 2 * (b + 1) * BURST_JOBS,
                   timeout_s=60, what=f"burst {b} done")  # fmt: skip

    def merged_view() -> FleetView:
        return read_fleet_view(client, keys, ledger_fleet.redis_url, time.monotonic() - started + 5)

    # Sampled weights add up to about the job count once every flush has landed.
    wait_until(
        lambda: merged_view().wait_samples >= 0.9 * total, timeout_s=20, what="all telemetry"
    )
    view = merged_view()
    waits = exact_waits(client, keys, ledger_fleet.ledger)
    assert len(waits) == total
    for q, merged in ((0.5, view.wait_p50_s), (0.99, view.wait_p99_s)):
        exact = exact_quantile(waits, q)
        error = abs(merged - exact) / exact
        print(f"p{q * 100:g}: merged {merged:.4f}s, exact {exact:.4f}s, error {error:.1%}")
    exact_p99 = exact_quantile(waits, 0.99)
    assert view.wait_p99_s is not None
    assert abs(view.wait_p99_s - exact_p99) / exact_p99 <= 0.10
    assert all(w.alive() for w in workers)
