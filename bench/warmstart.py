"""From a scale-up to the new worker's first job: warm spare, fork server, fresh process.

A real supervisor starts real `fleetscale worker` processes on a private Redis whose
stream already holds jobs; the clock starts when `ensure(1)` is called and stops at the
new worker's first job (its ledger line). Three ways to start it:

- `warm`: a warm spare (connected and registered, not consuming) is woken;
- `fork`: no spare; the fork server forks a preloaded parent (the default launcher);
- `exec`: no spare; a fresh interpreter imports everything (`--spawn exec`).

Usage: `python -m bench.warmstart [--repeats 15]`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.ledger import read_starts
from fleetscale.controller.forkserver import ForkServer, fork_launcher
from fleetscale.controller.supervisor import (
    Launcher,
    Supervisor,
    SupervisorSettings,
    exec_launcher,
    worker_command,
)
from fleetscale.embedded import EmbeddedRedis
from fleetscale.producer import Producer

FLEET = "warmstart"


def first_job_after(ledger: Path, pid: int, deadline_s: float) -> float:
    while time.monotonic() < deadline_s:
        for _, job_pid, wall in read_starts(ledger):
            if job_pid == pid:
                return wall
        time.sleep(0.001)
    raise RuntimeError(f"worker {pid} took no job")


def launcher(kind: str, url: str) -> Launcher:
    run = worker_command("bench.apps:app", url, "bench", ["--log-level", "warning"])
    return exec_launcher(run) if kind == "exec" else fork_launcher(run)


def one_start(url: str, ledger: Path, kind: str) -> float:
    """Seconds from `ensure(1)` to the first job of the worker it brought in."""
    producer = Producer(FLEET, url)
    producer.submit_many([("timed_sleep", (f"j{i}", 0.0), {}) for i in range(2000)])
    warm = kind == "warm"
    launch = launcher(kind, url)
    if isinstance(launch, ForkServer):
        launch(warm=False, status_fd=os.open(os.devnull, os.O_WRONLY)).kill()  # preload first
    sup = Supervisor(launch, SupervisorSettings(warm=1 if warm else 0, stop_grace_s=5))  # fmt: skip
    try:
        if warm:
            deadline = time.monotonic() + 30
            while sup.counts().warm < 1 and time.monotonic() < deadline:
                sup.ensure(0)
                time.sleep(0.01)
        started = time.time()
        sup.ensure(1)
        (worker,) = [h for h in sup.workers if not h.spare]
        return first_job_after(ledger, worker.pid, time.monotonic() + 30) - started
    finally:
        sup.stop_all(grace_s=5)
        if isinstance(launch, ForkServer):
            launch.close()
        producer.client.delete(*producer.client.keys(f"fs:{{{FLEET}}}:*"))
        producer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(Path(tmp) / "redis") as server:
        ledger = Path(tmp) / "ledger.txt"
        os.environ.update(FLEETSCALE_BENCH_FLEET=FLEET, FLEETSCALE_BENCH_LEDGER=str(ledger))
        results: dict[str, list[float]] = {"warm": [], "fork": [], "exec": []}
        for r in range(args.repeats):
            print(f"repeat {r + 1}/{args.repeats}", file=sys.stderr)
            for kind, times in results.items():
                ledger.unlink(missing_ok=True)
                times.append(one_start(server.url, ledger, kind))
    print(f"{args.repeats} starts each, scale-up call to the new worker's first job:\n")
    print("| start | median ms | min ms | max ms | target |")
    print("| --- | ---: | ---: | ---: | --- |")
    for kind, target in (("warm", "median ≤ 50 ms"), ("fork", ""), ("exec", "")):
        v = [x * 1000 for x in results[kind]]
        print(f"| {kind} | {statistics.median(v):.1f} | {min(v):.1f} | {max(v):.1f} | {target} |")
    print(
        "\nEach (ms): "
        + "; ".join(f"{k} " + ", ".join(f"{x * 1000:.0f}" for x in v) for k, v in results.items())
    )


if __name__ == "__main__":
    main()
