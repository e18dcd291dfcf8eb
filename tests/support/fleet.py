"""Helpers for tests that run real worker processes of the ledger app."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fleetscale.keys import GROUP, FleetKeys
from fleetscale.store import Client
from tests.support.procs import Proc, Processes

APP = "tests.apps.ledger:app"


@dataclass
class LedgerFleet:
    """Start worker processes of `tests.apps.ledger` for one test's fleet."""

    procs: Processes
    fleet: str
    redis_url: str
    ledger: Path

    @property
    def env(self) -> dict[str, str]:
        return {
            "FLEETSCALE_TEST_FLEET": self.fleet,
            "FLEETSCALE_TEST_LEDGER": str(self.ledger),
            "FLEETSCALE_REDIS_URL": self.redis_url,
        }

    def worker(
        self, *args: str, prefix: Sequence[str] = (), env: dict[str, str] | None = None
    ) -> Proc:
        argv = [*prefix, sys.executable, "-m", "fleetscale", "worker", APP, *args]
        return self.procs.spawn(argv, env={**self.env, **(env or {})}, name="worker")


def pending_of_pid(client: Client, keys: FleetKeys, pid: int) -> int:
    """Entries pending for the consumer(s) of the worker process `pid`."""
    total = 0
    for consumer in client.xinfo_consumers(keys.jobs, GROUP):
        if f":{pid}:" in consumer["name"].decode():
            total += int(consumer["pending"])
    return total


def build_skewclock(out_dir: Path) -> Path:
    """Compile the wall-clock shim (tests/support/skewclock.c) into `out_dir`."""
    source = Path(__file__).with_name("skewclock.c")
    target = out_dir / "skewclock.so"
    subprocess.run(
        ["cc", "-shared", "-fPIC", "-O2", "-o", str(target), str(source), "-ldl"], check=True
    )
    return target
