"""Worker process lifecycle under a controller: signals, fork server, exit codes."""

from __future__ import annotations

import os
import signal

import pytest

from fleetscale.keys import FleetKeys
from fleetscale.producer import Producer
from fleetscale.store import Client
from tests.support.fleet import LedgerFleet, controller, host_fields
from tests.support.ledger import read_ledger
from tests.support.procs import wait_until


def started(fleet: LedgerFleet, key: str) -> bool:
    return any(e.kind == "start" and e.key == key for e in read_ledger(fleet.ledger))


def finished(fleet: LedgerFleet, key: str) -> bool:
    return any(e.kind == "done" and e.key == key for e in read_ledger(fleet.ledger))


@pytest.mark.timeout(120)
@pytest.mark.parametrize("spawn", ["fork", "exec"])
def test_ctrl_c_on_a_foreground_controller_drains_its_workers(
    ledger_fleet: LedgerFleet, client: Client, keys: FleetKeys, spawn: str
) -> None:
    """Ctrl-C in a terminal signals the whole foreground process group: the controller,
    its fork server and its workers. The controller drains the workers; a worker must
    not take the terminal's SIGINT as its first stop signal (the controller's SIGTERM
    would then be a second one and end it mid-job)."""
    proc = controller(ledger_fleet, "A", "--min", "1", "--max", "1", "--warm", "0",
                      "--spawn", spawn)  # fmt: skip
    wait_until(lambda: host_fields(client, keys, "A").get("ready") == "1", timeout_s=60,
               what="a ready worker")  # fmt: skip
    Producer(ledger_fleet.fleet, ledger_fleet.redis_url).submit("record", args=("slow", 2.0))
    wait_until(lambda: started(ledger_fleet, "slow"), timeout_s=30, what="the job to start")
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does
    assert proc.wait(timeout_s=60) == 0, proc.output()
    assert finished(ledger_fleet, "slow"), proc.output()
    assert "aborted" not in proc.output()
