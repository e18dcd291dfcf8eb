"""A dry-run controller beside a real one, as real processes."""

from __future__ import annotations

import pytest

from fleetscale.controller.leader import host_of
from fleetscale.keys import FleetKeys
from fleetscale.store import Client
from tests.support.fleet import LedgerFleet, controller, worker_pids
from tests.support.procs import wait_until


def leader(client: Client, keys: FleetKeys) -> str | None:
    return host_of((client.get(keys.leader) or b"").decode() or None)


@pytest.mark.timeout(90)
def test_a_dry_run_controller_that_leads_hands_the_lead_to_a_real_one_which_runs_the_fleet(
    ledger_fleet: LedgerFleet, client: Client, keys: FleetKeys
) -> None:
    controller(ledger_fleet, "dry", "--dry-run", "--capacity", "4", "--min", "2", "--max", "4")
    wait_until(lambda: leader(client, keys) == "dry", timeout_s=30, what="the dry run to lead")
    controller(ledger_fleet, "real", "--capacity", "4", "--min", "2", "--max", "4", "--warm", "0")
    wait_until(lambda: leader(client, keys) == "real", timeout_s=30, what="the real one to lead")
    wait_until(lambda: len(worker_pids(client, keys, "real")) == 2, timeout_s=30,
               what="the fleet's min of 2 workers on the real host")  # fmt: skip
