"""An example producer: submits jobs of `example_app` at the rate a load trace gives.

The compose file's `producer` service runs it; run it by hand the same way:

    python example_producer.py --trace load.csv --loop

The trace is a shipped name (`step`, `spike`, … see `fleetscale simulate --help`) or a
`t_s,rate_per_s` CSV such as `load.csv` here. Jobs are mostly `resize` (I/O-bound,
exponential run time around `--cost-ms`), some `report.digest` (CPU-bound) and a few
`flaky` ones that show retries and dead letters. With the backlog at `--max-backlog` the
producer backs off, as a real one should, instead of filling Redis.

Environment: `FLEETSCALE_REDIS_URL` (as everywhere), `EXAMPLE_FLEET` (default `example`).
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import signal
import threading
import time

from fleetscale import FleetscaleError, Overloaded, Producer
from fleetscale.sim.trace import load_trace

log = logging.getLogger("example_producer")


def jobs_for(count: int, rng: random.Random, cost_ms: float) -> list[tuple[str, tuple, dict]]:
    """`count` jobs of the example app's tasks, in the example's mix."""
    jobs: list[tuple[str, tuple, dict]] = []
    for _ in range(count):
        draw = rng.random()
        if draw < 0.02:
            jobs.append(("flaky", (f"k{rng.randrange(10**9)}",), {"failure_rate": 0.5}))
        elif draw < 0.12:
            jobs.append(("report.digest", (f"r{rng.randrange(10**9)}",), {"rounds": 20_000}))
        else:
            cost = rng.expovariate(1.0 / cost_ms)
            jobs.append(("resize", (f"img-{rng.randrange(10**9)}", 640), {"cost_ms": cost}))
    return jobs


def parse_options() -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--trace", default="load.csv", help="shipped trace name or CSV path")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the trace's rate")
    parser.add_argument("--loop", action="store_true", help="start the trace again at its end")
    parser.add_argument("--cost-ms", type=float, default=50.0, help="mean resize run time")
    parser.add_argument("--max-backlog", type=int, default=20_000, help="back off at this backlog")
    parser.add_argument("--seed", type=int, default=None)
    return parser.parse_args()


def submit(producer: Producer, jobs: list[tuple[str, tuple, dict]], stop: threading.Event) -> int:
    """Submit `jobs`; return how many were taken (0 when refused or Redis is away)."""
    try:
        producer.submit_many(jobs)
    except Overloaded as exc:
        log.warning("%s", exc)
        stop.wait(exc.retry_after_s)
        return 0
    except FleetscaleError as exc:
        log.warning("cannot submit (%s); retrying in 1s", exc)
        stop.wait(1.0)
        return 0
    return len(jobs)


def main() -> None:
    """Submit jobs at the trace's rate until the trace ends (or, with --loop, forever)."""
    options = parse_options()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    trace = load_trace(options.trace)
    producer = Producer(os.environ.get("EXAMPLE_FLEET", "example"), max_backlog=options.max_backlog)
    rng = random.Random(options.seed)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    start = last = time.monotonic()
    owed, submitted, next_log_s = 0.0, 0, 0.0
    while not stop.wait(0.05):
        now = time.monotonic()
        if now - start >= trace.duration_s:
            if not options.loop:
                break
            start, next_log_s = now, 0.0
        t_s = now - start
        owed += trace.rate_at(t_s) * options.scale * (now - last)
        last = now
        if owed >= 1:
            taken = submit(producer, jobs_for(int(owed), rng, options.cost_ms), stop)
            submitted += taken
            # What the fleet refused is shed, as a real source would (no catch-up burst).
            owed = owed - int(owed) if taken else 0.0
        if t_s >= next_log_s:
            log.info("t=%.0fs rate %.0f/s, %d jobs so far", t_s, trace.rate_at(t_s), submitted)
            next_log_s += 10.0
    producer.close()
    log.info("stopped after %d jobs", submitted)


if __name__ == "__main__":
    main()
