"""Throughput of the producer and the worker against the raw redis-py limits.

Measured in one run, on a private Redis (AOF everysec, as deployed), with the same
payload for raw and fleetscale:

- submit: `Producer.submit_many` vs bare pipelined XADD (1000 per pipeline), the
  baseline of its target, and vs the fastest bare redis-py way to add entries, a Lua
  loop of XADDs, one EVALSHA per 1000 (what `submit_many` does since it beat pipelined
  XADD), for information;
- drain: two `fleetscale worker --burst` processes running no-op jobs, with telemetry
  on and off, vs two bare consumers (XREADGROUP COUNT 256 + one XACK per batch).

Drain rates are timed from the Redis side (the group's entries-read, polled) between 5 %
and 95 % of the jobs, so process start-up is not counted. Each measurement is repeated;
rates are medians, ratios medians of the ratios within each repeat. Telemetry on and off
alternate in which goes first, and Redis rewrites its AOF between measurements, never
during one (an automatic rewrite forks mid-measurement). Usage: `python -m
bench.throughput [--jobs 200000] [--repeats 3]`.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import redis

from fleetscale.codec import Job, encode_job
from fleetscale.embedded import EmbeddedRedis
from fleetscale.jobstream import JobStream
from fleetscale.keys import GROUP, JOB_FIELD, FleetKeys
from fleetscale.producer import Producer

WORKERS = 2
PIPELINE = 1000


def raw_xadd(client: redis.Redis, stream: str, payload: bytes, jobs: int) -> float:
    """Seconds to XADD `jobs` entries with bare redis-py pipelines."""
    started = time.perf_counter()
    for start in range(0, jobs, PIPELINE):
        pipe = client.pipeline(transaction=False)
        for _ in range(min(PIPELINE, jobs - start)):
            pipe.xadd(stream, {JOB_FIELD: payload})
        pipe.execute()
    return time.perf_counter() - started


RAW_BATCH_LUA = """
for i = 1, #ARGV do redis.call('XADD', KEYS[1], '*', 'j', ARGV[i]) end
return #ARGV
"""


def raw_script(client: redis.Redis, stream: str, payload: bytes, jobs: int) -> float:
    """Seconds to XADD `jobs` entries with a bare redis-py script, 1000 per call."""
    add = client.register_script(RAW_BATCH_LUA)
    started = time.perf_counter()
    for start in range(0, jobs, PIPELINE):
        add(keys=[stream], args=[payload] * min(PIPELINE, jobs - start))
    return time.perf_counter() - started


def fleetscale_submit(producer: Producer, jobs: int) -> float:
    """Seconds to submit `jobs` no-op jobs with `submit_many`."""
    specs = [("noop", (), {})] * jobs
    started = time.perf_counter()
    producer.submit_many(specs, chunk=PIPELINE)
    return time.perf_counter() - started


def entries_read(client: redis.Redis, stream: str) -> int:
    for group in client.xinfo_groups(stream):
        if group["name"] == GROUP.encode():
            return int(group["entries-read"] or 0) - int(group["pending"])
    return 0


def children_cpu_s() -> float:
    """CPU seconds (user + system) of this process's reaped children so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def consumers_cpu_s(start_consumers: Callable[[], list[subprocess.Popen[bytes]]]) -> float:
    """CPU seconds the consumers spend from start to exit (on an empty stream: their
    start-up and shutdown)."""
    before = children_cpu_s()
    for p in start_consumers():
        p.wait(timeout=120)
    return children_cpu_s() - before


def timed_drain(
    client: redis.Redis,
    stream: str,
    jobs: int,
    start_consumers: Callable[[], list[subprocess.Popen[bytes]]],
) -> tuple[float, float]:
    """Jobs per second drained between 5 % and 95 % of `jobs`, from the Redis side, and
    the CPU seconds the consumers used from start to exit."""
    low, high = int(jobs * 0.05), int(jobs * 0.95)
    cpu_before = children_cpu_s()
    procs = start_consumers()
    t_low = t_high = None
    try:
        while t_high is None:
            done = entries_read(client, stream)
            now = time.perf_counter()
            if t_low is None and done >= low:
                t_low = now
            if done >= high:
                t_high = now
            if all(p.poll() is not None for p in procs) and t_high is None:
                raise RuntimeError(f"consumers exited after {done} of {jobs} jobs")
            time.sleep(0.002)
    finally:
        for p in procs:
            p.wait(timeout=120)
    assert t_low is not None
    return (high - low) / (t_high - t_low), children_cpu_s() - cpu_before


def fresh_stream(client: redis.Redis, keys: FleetKeys, url: str) -> None:
    """Delete the fleet's keys, shrink the AOF to match, and make the group again."""
    client.delete(keys.jobs, keys.prefix + "workers")
    for key in client.scan_iter(match=keys.prefix.replace("{", "\\{").replace("}", "\\}") + "*"):
        client.delete(key)
    client.bgrewriteaof()
    while True:  # the rewrite's fork and write, here rather than inside a measurement
        persistence = client.info("persistence")
        if not persistence["aof_rewrite_in_progress"] and not persistence["aof_rewrite_scheduled"]:
            break
        time.sleep(0.01)
    JobStream(client, keys, url).ensure_group()


def run(jobs: int, repeats: int) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {
        k: []
        for k in (
            "raw_xadd",
            "raw_script",
            "submit_many",
            "raw_drain",
            "drain_telemetry_on",
            "drain_telemetry_off",
            "cpu_telemetry_on",
            "cpu_telemetry_off",
            "cpu_idle",
        )
    }
    # AOF on as deployed, rewritten between measurements (`fresh_stream`) and never
    # automatically: that fork would land in whichever measurement crossed the threshold.
    no_rewrite = ("--auto-aof-rewrite-percentage", "0")
    with (
        tempfile.TemporaryDirectory() as tmp,
        EmbeddedRedis(Path(tmp), extra_args=no_rewrite) as server,
    ):
        url = server.url
        client = redis.Redis.from_url(url)
        keys = FleetKeys("bench")
        env = {**os.environ, "FLEETSCALE_BENCH_FLEET": "bench", "FLEETSCALE_REDIS_URL": url}
        payload = encode_job(Job("0" * 32, "noop"), 1 << 20)
        producer = Producer("bench", url)

        def raw_consumers() -> list[subprocess.Popen[bytes]]:
            return [
                subprocess.Popen(
                    [sys.executable, "-m", "bench.rawconsumer", url, keys.jobs, GROUP, f"raw{i}"],
                    env=env,
                )
                for i in range(WORKERS)
            ]

        def workers(*flags: str) -> Callable[[], list[subprocess.Popen[bytes]]]:
            argv = [
                sys.executable,
                "-m",
                "fleetscale",
                "worker",
                "bench.apps:app",
                "--burst",
                "--log-level",
                "warning",
                *flags,
            ]
            return lambda: [subprocess.Popen(argv, env=env) for _ in range(WORKERS)]

        for r in range(repeats):
            print(f"repeat {r + 1}/{repeats}", file=sys.stderr)
            fresh_stream(client, keys, url)
            # Each measurement next to its baseline, so their ratio is a fair pair.
            results["raw_xadd"].append(jobs / raw_xadd(client, keys.jobs, payload, jobs))
            fresh_stream(client, keys, url)
            results["raw_script"].append(jobs / raw_script(client, keys.jobs, payload, jobs))
            fresh_stream(client, keys, url)
            results["submit_many"].append(jobs / fleetscale_submit(producer, jobs))
            results["raw_drain"].append(timed_drain(client, keys.jobs, jobs, raw_consumers)[0])
            fresh_stream(client, keys, url)
            results["cpu_idle"].append(consumers_cpu_s(workers()))
            # On and off take turns going first: whichever runs second meets a Redis
            # with a longer AOF and a warmer machine.
            drains = [
                ("telemetry_on", workers()),
                ("telemetry_off", workers("--no-telemetry")),
            ]
            for name, consumers in drains if r % 2 == 0 else drains[::-1]:
                fresh_stream(client, keys, url)
                producer.submit_many([("noop", (), {})] * jobs, chunk=PIPELINE)
                rate, cpu_s = timed_drain(client, keys.jobs, jobs, consumers)
                results[f"drain_{name}"].append(rate)
                results[f"cpu_{name}"].append(cpu_s)
        client.close()
    return results


def paired(results: dict[str, list[float]], measured: str, baseline: str) -> float:
    """The median over repeats of `measured` ÷ `baseline` within each repeat.

    Both are measured seconds apart in one repeat, so a machine whose speed drifts
    between repeats (a shared host) moves both alike; the ratio of two medians taken
    from different repeats would carry that drift.
    """
    pairs = zip(results[measured], results[baseline], strict=True)
    return statistics.median(m / b for m, b in pairs)


def cpu_cost(results: dict[str, list[float]]) -> float:
    """Telemetry's share of the workers' CPU per job: the median over repeats of
    (on − off) ÷ (off − idle), where idle is the workers' start-up and exit on an empty
    stream. CPU time, unlike the drain rate, hardly moves with what else the machine
    runs, and idle takes out the start-up that both runs share."""
    triples = zip(
        results["cpu_telemetry_on"], results["cpu_telemetry_off"], results["cpu_idle"], strict=True
    )
    return statistics.median((on - off) / (off - idle) for on, off, idle in triples)


def report(results: dict[str, list[float]], jobs: int, repeats: int) -> str:
    med = {k: statistics.median(v) for k, v in results.items()}
    rows = [
        ("submit: raw pipelined XADD, 1000 a pipeline", med["raw_xadd"], None, ""),
        ("submit: raw Lua XADD loop, 1000 a call", med["raw_script"], None, ""),
        (
            "submit: `Producer.submit_many`",
            med["submit_many"],
            paired(results, "submit_many", "raw_xadd"),
            "≥ 0.60 of raw pipelined XADD",
        ),
        (
            "submit: `Producer.submit_many` against the raw Lua loop",
            med["submit_many"],
            paired(results, "submit_many", "raw_script"),
            "",
        ),
        ("drain: raw XREADGROUP 256 + XACK, 2 procs", med["raw_drain"], None, ""),
        (
            "drain: 2 workers, telemetry on",
            med["drain_telemetry_on"],
            paired(results, "drain_telemetry_on", "raw_drain"),
            "≥ 0.50 of raw drain",
        ),
        (
            "drain: 2 workers, telemetry off",
            med["drain_telemetry_off"],
            paired(results, "drain_telemetry_off", "raw_drain"),
            "",
        ),
    ]
    lines = [
        f"{jobs} no-op jobs per measurement, median of {repeats} repeats, "
        f"{WORKERS} consumer processes; ratios are medians of the ratios within each "
        "repeat.",
        "",
        "| measurement | jobs/s | ratio | target |",
        "| --- | ---: | ---: | --- |",
    ]
    for name, rate, ratio, target in rows:
        lines.append(
            f"| {name} | {rate:,.0f} | {'' if ratio is None else f'{ratio:.2f}'} | {target} |"
        )
    lines.append(f"| telemetry cost, worker CPU a job | | {cpu_cost(results):+.1%} | ≤ 5 % |")
    wall = 1 - paired(results, "drain_telemetry_on", "drain_telemetry_off")
    lines.append(f"| telemetry cost, drain rate (1 − on/off) | | {wall:+.1%} | |")
    lines.append("")
    rates = {k: v for k, v in results.items() if not k.startswith("cpu_")}
    lines.append(
        "Each repeat (jobs/s): "
        + "; ".join(f"{k} {', '.join(f'{x:,.0f}' for x in v)}" for k, v in rates.items())
    )
    cpus = {k: v for k, v in results.items() if k.startswith("cpu_")}
    lines.append(
        "Each repeat (CPU s of the 2 workers): "
        + "; ".join(f"{k} {', '.join(f'{x:.2f}' for x in v)}" for k, v in cpus.items())
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(report(run(args.jobs, args.repeats), args.jobs, args.repeats))


if __name__ == "__main__":
    main()
