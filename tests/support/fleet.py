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


def controller(
    fleet: LedgerFleet, host_id: str, *args: str, app: str = APP, env: dict[str, str] | None = None
) -> Proc:
    """Start `fleetscale controller` for the ledger app as host `host_id`, with short
    timings for tests (tick 0.5 s, lease 2 s, workers reclaim after 3 s)."""
    argv = [
        sys.executable, "-m", "fleetscale", "controller", app,
        "--host-id", host_id, "--tick", "0.5s", "--lease-ttl", "2s",
        "--worker-args", "--min-idle 3s", "--stop-grace", "10s", *args,
    ]  # fmt: skip
    return fleet.procs.spawn(argv, env={**fleet.env, **(env or {})}, name=f"controller-{host_id}")


def host_fields(client: Client, keys: FleetKeys, host_id: str) -> dict[str, str]:
    """A host's current heartbeat fields (empty when it has none)."""
    raw = client.hgetall(keys.host(host_id))
    return {k.decode(): v.decode() for k, v in raw.items()}


def worker_pids(client: Client, keys: FleetKeys, host_id: str) -> set[int]:
    """Pids of the live workers registered by host `host_id`."""
    now_ms = client.time()[0] * 1000
    pids = set()
    for member in client.zrangebyscore(keys.workers, now_ms, "+inf"):
        fields = client.hgetall(keys.worker(member.decode()))
        if fields.get(b"host") == host_id.encode():
            pids.add(int(fields[b"pid"]))
    return pids


def alive(pid: int) -> bool:
    """Whether a process with this pid exists (and is not a zombie of ours)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False
