"""A controller whose workers' app takes seconds to import keeps leading meanwhile.

This module is also the app: `tests.integration.test_lifecyclereview_slowimport:app`.
Imported by a worker process (its fork server included) it sleeps
FLEETSCALE_TEST_IMPORT_S seconds first, like an app that loads a model at import.
"""

from __future__ import annotations

import os
import sys
import time

import pytest

from fleetscale.app import App
from fleetscale.keys import FleetKeys
from fleetscale.store import Client
from tests.support.fleet import LedgerFleet, controller, host_fields
from tests.support.procs import wait_until

app = App(os.environ.get("FLEETSCALE_TEST_FLEET", "test"))
if "worker" in sys.argv:
    time.sleep(float(os.environ.get("FLEETSCALE_TEST_IMPORT_S", "0")))


@app.task
def noop() -> None:
    """Do nothing."""


@pytest.mark.timeout(120)
def test_a_slow_app_import_in_the_fork_server_does_not_stall_the_controller(
    ledger_fleet: LedgerFleet, client: Client, keys: FleetKeys
) -> None:
    """The fork server imports the app before it can fork; the controller's loop
    (leader lease of 2 s, heartbeats) must run on meanwhile, not wait for it."""
    proc = controller(ledger_fleet, "A", "--min", "1", "--max", "1", "--warm", "0",
                      app=f"{__name__}:app", env={"FLEETSCALE_TEST_IMPORT_S": "8"})  # fmt: skip
    wait_until(lambda: client.exists(keys.leader), timeout_s=30, what="a leader")
    gaps: list[bool] = []

    def worker_ready() -> bool:
        assert proc.alive(), proc.output()
        gaps.append(not client.exists(keys.leader))
        return host_fields(client, keys, "A").get("ready") == "1"

    wait_until(worker_ready, timeout_s=60, every_s=0.1, what="a ready worker")
    assert not any(gaps), f"the leader lease lapsed while the app imported:\n{proc.output()}"
    assert "worker fork server" in proc.output() and "ready after" in proc.output()
