"""One row's system under test: a private Redis, a fleet, real worker and controller
processes of the fault app, and the ledger they write.

Every process logs JSON lines (`FLEETSCALE_LOG_FORMAT=json`), so the harness can read
when a worker noticed a fault. `settled()` is the end of a run: nothing undelivered,
nothing pending, nothing delayed, and no live worker inside a job — from then on no job
can run again, so the ledger is final.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgpack

from fleetscale.config import RedisSettings
from fleetscale.embedded import EmbeddedRedis
from fleetscale.fleetview import read_fleet_view
from fleetscale.keys import GROUP, JOB_FIELD, FleetKeys
from fleetscale.store import Client, connect, redis_time_s
from tests.faults.checker import JobHistory, Verdict, check, histories
from tests.faults.ledger import DONE, START, ProducerLedger, read_ledger
from tests.faults.load import Submitter, new_submitter
from tests.support.fleet import alive
from tests.support.procs import Proc, Processes, wait_until

if TYPE_CHECKING:
    from tests.faults.rows import RowEnv

APP = "tests.faults.app:app"
SETTLE_TIMEOUT_S = 120.0


def log_lines(proc: Proc) -> list[dict[str, Any]]:
    """The JSON log lines a process wrote so far (other output is skipped)."""
    lines = []
    for text in proc.output().splitlines():
        if text.startswith("{"):
            try:
                lines.append(json.loads(text))
            except json.JSONDecodeError:
                continue
    return lines


def first_log_s(proc: Proc, needle: str, after_s: float = 0.0) -> float | None:
    """Wall time of the first log line at or after `after_s` containing `needle`."""
    for line in log_lines(proc):
        if line["ts"] >= after_s and needle in line["msg"]:
            return float(line["ts"])
    return None


@dataclass
class Cluster:
    """A private Redis and the fleet of one row (see the module docstring).

    Args:
        directory: the row's own directory (Redis data, ledger, logs).
        procs: starts and reaps the processes.
        min_idle_s: the workers' `--min-idle`.
        redis: the server (started by `start_cluster`).
    """

    directory: Path
    procs: Processes
    redis: EmbeddedRedis
    min_idle_s: float = 3.0
    host: str = "127.0.0.1"

    def __post_init__(self) -> None:
        self.fleet = f"f{uuid.uuid4().hex[:8]}"
        self.keys = FleetKeys(self.fleet)
        self.ledger_dir = self.directory / "ledger"
        self.producer_ledger = ProducerLedger(self.ledger_dir)
        self.workers: list[Proc] = []
        self.unsettled = False
        self._client: Client | None = None
        self.started_redis_s = redis_time_s(self.client)

    @property
    def url(self) -> str:
        """The Redis URL as this machine's processes reach it."""
        return f"redis://{self.host}:{self.redis.port}/0"

    @property
    def client(self) -> Client:
        """A client of the row's Redis (bounded timeouts)."""
        if self._client is None:
            self._client = connect(RedisSettings(url=self.url))
        return self._client

    def env(self, url: str | None = None) -> dict[str, str]:
        """The environment of the row's worker and controller processes."""
        return {
            "FAULTS_FLEET": self.fleet,
            "FAULTS_LEDGER": str(self.ledger_dir),
            "FLEETSCALE_REDIS_URL": url or self.url,
            "FLEETSCALE_LOG_FORMAT": "json",
        }

    def worker(
        self,
        *args: str,
        prefix: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        url: str | None = None,
        name: str = "worker",
    ) -> Proc:
        """Start `fleetscale worker` for the fault app (with `--min-idle`)."""
        argv = [*prefix, sys.executable, "-m", "fleetscale", "worker", APP,
                "--min-idle", f"{self.min_idle_s}s", *args]  # fmt: skip
        proc = self.procs.spawn(argv, env={**self.env(url), **(env or {})}, name=name)
        self.workers.append(proc)
        return proc

    def controller(
        self,
        host_id: str,
        *args: str,
        prefix: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> Proc:
        """Start `fleetscale controller` as `host_id` with short timings (tick 0.5 s,
        lease 2 s, no warm spare) and workers with this cluster's `--min-idle`."""
        argv = [
            *prefix, sys.executable, "-m", "fleetscale", "controller", APP,
            "--host-id", host_id, "--tick", "0.5s", "--lease-ttl", "2s", "--warm", "0",
            "--worker-args", f"--min-idle {self.min_idle_s}s", "--stop-grace", "10s", *args,
        ]  # fmt: skip
        return self.procs.spawn(argv, env={**self.env(), **(env or {})}, name=f"ctl-{host_id}")

    def submitter(self, *, explicit_ids: bool = False) -> Submitter:
        """A producer of this fleet that notes every submission in the ledger."""
        return new_submitter(self.url, self.fleet, self.producer_ledger, explicit_ids=explicit_ids)

    # -- reading the outcome -----------------------------------------------------------

    def jobs(self) -> dict[str, JobHistory]:
        """The ledger so far, by job key."""
        return histories(read_ledger(self.ledger_dir))

    def dead_keys(self) -> set[str]:
        """Keys of the jobs in the dead-letter stream: the first argument, read best
        effort (a letter's job may be malformed; letters without a key are skipped)."""
        keys = set()
        for _, fields in self.client.xrange(self.keys.dlq, count=100_000):
            key = key_of(fields.get(JOB_FIELD, b""))
            if key is not None:
                keys.add(key)
        return keys

    def stream_quiet(self) -> bool:
        """Nothing undelivered, pending or delayed in Redis."""
        if self.client.zcard(self.keys.delayed):
            return False
        if not self.client.exists(self.keys.jobs):
            return True
        info = self.client.xinfo_stream(self.keys.jobs)
        for group in self.client.xinfo_groups(self.keys.jobs):
            if group["name"] == GROUP.encode():
                delivered = group["last-delivered-id"] == info["last-generated-id"]
                return bool(delivered and group["pending"] == 0)
        return info["length"] == 0

    def busy_pids(self) -> set[int]:
        """Live processes inside a job: their last ledger record is a `start`. A worker
        runs one job at a time, so a later record means the job before it ended — done,
        failed, or interrupted at its time limit (which writes no `done`)."""
        last: dict[int, str] = {}
        for record in read_ledger(self.ledger_dir):
            if record.kind in (START, DONE):
                last[record.pid] = record.kind
        return {pid for pid, kind in last.items() if kind == START and alive(pid)}

    def settled(self) -> bool:
        """Whether no job can run again (see the module docstring)."""
        return self.stream_quiet() and not self.busy_pids()

    def wait_settled(self, timeout_s: float = SETTLE_TIMEOUT_S) -> bool:
        """Wait, polling, until the run is settled; False if it did not in `timeout_s`."""
        try:
            wait_until(self.settled, timeout_s=timeout_s, every_s=0.2, what="settling")
        except AssertionError:
            return False
        return True

    def telemetry_done(self) -> int:
        """Jobs done according to the fleet's telemetry windows since the row started."""
        first = int(self.started_redis_s) - 1
        last = int(redis_time_s(self.client)) + 1
        pipe = self.client.pipeline(transaction=False)
        for window in range(first, last + 1):
            pipe.hget(self.keys.telemetry(window), "done")
        return sum(int(n) for n in pipe.execute() if n)

    def wait_telemetry(self, timeout_s: float = 5.0) -> None:
        """Give live workers time to flush what they did (about once a second): wait
        until the telemetry counts at least the jobs they did, or `timeout_s`."""
        expected = sum(1 for r in read_ledger(self.ledger_dir) if r.kind == DONE and alive(r.pid))
        deadline = time.monotonic() + timeout_s
        while self.telemetry_done() < expected and time.monotonic() < deadline:
            time.sleep(0.2)

    def merged_p99_s(self) -> float | None:
        """The fleet's merged p99 queue wait since the row started (from telemetry),
        once live workers have flushed."""
        self.wait_telemetry()
        window_s = redis_time_s(self.client) - self.started_redis_s + 1.0
        return read_fleet_view(self.client, self.keys, self.url, window_s).wait_p99_s

    def verdict(self) -> Verdict:
        """The checker's counts for the ledger and dead letters as they are now."""
        return check(self.jobs(), self.dead_keys())

    def close(self) -> None:
        """Close the client and kill Redis (processes are reaped by `procs`)."""
        if self._client is not None:
            self._client.close()
        self.redis.kill()


def start_cluster(
    env: RowEnv,
    *,
    min_idle_s: float = 3.0,
    appendonly: bool = True,
    redis_args: Sequence[str] = (),
    host: str = "127.0.0.1",
) -> Cluster:
    """Start a private Redis in the row's directory; return the row's cluster on it.

    The cluster is closed (Redis killed) when the row ends.
    """
    server = EmbeddedRedis(env.directory / "redis", appendonly=appendonly,
                           extra_args=tuple(redis_args))  # fmt: skip
    env.cleanups.append(server.kill)
    server.start()
    cluster = Cluster(env.directory, env.procs, server, min_idle_s, host)
    env.cleanups.append(cluster.close)
    return cluster


def key_of(raw: bytes) -> str | None:
    """The job key (first argument) of a msgpack job, however malformed, if any."""
    try:
        body = msgpack.unpackb(raw, raw=False, strict_map_key=False)
    except Exception:
        return None
    args = body.get("args") if isinstance(body, dict) else None
    if isinstance(args, list) and args and isinstance(args[0], str):
        return args[0]
    return None


class Keeper:
    """Keeps `count` workers of a cluster running, replacing any that exit (what a
    process supervisor would do), and remembers the pids that died.

    Args:
        cluster: whose workers to keep.
        count: how many to keep running.
        args: extra `fleetscale worker` arguments.
    """

    def __init__(self, cluster: Cluster, count: int, *args: str) -> None:
        self.cluster = cluster
        self.args = args
        self.running = [cluster.worker(*args) for _ in range(count)]
        self.exited: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="keeper", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            for proc in [p for p in self.running if not p.alive()]:
                self.running.remove(proc)
                self.exited.append(proc.pid)
                self.running.append(self.cluster.worker(*self.args))

    def stop(self) -> None:
        """Stop replacing workers (they keep running)."""
        self._stop.set()
        self._thread.join()
