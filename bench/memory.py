"""Memory of the worker, the controller and the producer against raw redis-py baselines.

Measured in one run, on a private Redis (AOF everysec, as deployed):

- worker: one `fleetscale worker --burst` process draining no-op jobs, telemetry on
  and off, vs one raw redis-py consumer (`bench.rawconsumer`) on the same jobs. Its RSS
  is sampled from /proc against the jobs done (the group's entries-read): the RSS at the
  first sample after its first job, the RSS at the end, the peak (the kernel's
  high-water mark: VmHWM as sampled, or ru_maxrss as it is reaped, whichever is
  higher), and the growth per 100,000 jobs (least-squares slope over the samples past
  10 % of the jobs): a leak grows with jobs.
- controller: one `fleetscale controller` running a small fleet (2 worker processes at
  most, a warm spare among them, `--tick 100ms`, metrics served) under a steady load of
  short jobs. Its own RSS (not its workers') is sampled against its decision ticks (the
  decision log's entries-added): the RSS after its first ticks is the baseline, the
  growth per 1,000 ticks is the measure (slope over the samples past that baseline).
  `--previous REV` also runs the controller of an older commit (its `fleetscale` and
  `bench` from `git archive`).
- producer: a subprocess submitting a large batch of no-op jobs from a generator with
  one `Producer.submit_many` call, one a call per 10,000 jobs, and raw redis-py
  pipelined XADD (1000 a pipeline) of the same payload, whose result it drops: RSS
  after imports, peak RSS, and (each in a second run, as tracing costs memory of its
  own) the tracemalloc peak of Python allocations after imports.

Usage: `python -m bench.memory [--quick] [--jobs 1000000] [--ticks 3000]
[--submit-jobs 1000000] [--previous REV]`.
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import redis

from fleetscale.codec import Job, encode_job
from fleetscale.embedded import EmbeddedRedis
from fleetscale.jobstream import JobStream
from fleetscale.keys import GROUP, JOB_FIELD, FleetKeys
from fleetscale.producer import JobSpec, Producer

FLEET = "memory"
HOST = "memory-host"
PIPELINE = 1000
SAMPLE_EVERY_S = 0.05
WARMUP_SHARE = 0.1
"""Samples before this share of the jobs are left out of the growth slope: start-up."""
EARLY_TICKS = 50
"""The controller's baseline: its RSS at the first sample after this many ticks."""
LOAD_PER_S = 100
LOAD_JOB_S = 0.005
"""The controller's steady load: jobs a second, each a sleep of this many seconds."""
SUBMIT_CALL = 10_000
"""Jobs a `submit_many` call in the producer's chunked variant."""
MIB = 1 << 20


# -- reading a process's memory ---------------------------------------------------------


def memory_kib(pid: int) -> tuple[int, int] | None:
    """(VmRSS, VmHWM) of process `pid` in KiB, from one read of /proc/PID/status (so
    the high-water mark is at least the RSS), or None once the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            fields = dict(line.split(":", 1) for line in status)
        return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])
    except (FileNotFoundError, ProcessLookupError, KeyError):  # KeyError: a zombie
        return None


def reap_with_peak(proc: subprocess.Popen[bytes], block: bool) -> int | None:
    """Reap `proc` if it has exited (waiting when `block`); return its peak RSS in KiB
    (ru_maxrss, the kernel's VmHWM at exit), or None while it runs."""
    pid, status, usage = os.wait4(proc.pid, 0 if block else os.WNOHANG)
    if pid == 0:
        return None
    proc.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_maxrss


def growth(samples: Sequence[tuple[int, int]], per: int, after: int) -> float:
    """KiB of RSS gained per `per` units of x: the least-squares slope of (x, RSS KiB)
    over the samples with x ≥ `after` (nan with fewer than 3 distinct x)."""
    kept = [(x, rss) for x, rss in samples if x >= after]
    if len({x for x, _ in kept}) < 3:
        return float("nan")
    slope, _ = statistics.linear_regression([x for x, _ in kept], [rss for _, rss in kept])
    return slope * per


@dataclass(frozen=True)
class Footprint:
    """One process's RSS over a run, KiB; x counts jobs done (or decision ticks)."""

    name: str
    start_kib: int
    """At the first sample after the first job (or after `EARLY_TICKS` ticks)."""
    end_kib: int
    """At the last sample before it exited (or was stopped)."""
    peak_kib: int
    """The kernel's high-water mark: the most VmHWM read while it ran or, for a process
    that exits, its ru_maxrss if higher (the same count, read as it is reaped)."""
    samples: tuple[tuple[int, int], ...]
    """(x, RSS KiB) every `SAMPLE_EVERY_S` seconds (the controller: every second)."""
    growth_kib: float
    """KiB per `per` units of x past the start-up (see `growth`)."""
    per: int


# -- 1. worker --------------------------------------------------------------------------


def entries_done(client: redis.Redis, stream: str) -> int:
    """Entries the group has read and acknowledged."""
    for group in client.xinfo_groups(stream):
        if group["name"] == GROUP.encode():
            return int(group["entries-read"] or 0) - int(group["pending"])
    return 0


def refill(client: redis.Redis, url: str, jobs: int) -> None:
    """Empty the fleet's keys and queue `jobs` no-op jobs with a fresh consumer group."""
    keys = FleetKeys(FLEET)
    for key in client.scan_iter(match=keys.prefix.replace("{", "\\{").replace("}", "\\}") + "*"):
        client.delete(key)
    JobStream(client, keys, url).ensure_group()
    with Producer(FLEET, url) as producer:
        for start in range(0, jobs, SUBMIT_CALL):
            producer.submit_many([("noop", (), {})] * min(SUBMIT_CALL, jobs - start))


def bench_env(url: str) -> dict[str, str]:
    return {**os.environ, "FLEETSCALE_BENCH_FLEET": FLEET, "FLEETSCALE_REDIS_URL": url}


def consumer_argv(kind: str, url: str) -> list[str]:
    """`raw`, `telemetry_on` or `telemetry_off`: the command of one draining consumer."""
    if kind == "raw":
        return [sys.executable, "-m", "bench.rawconsumer", url, FleetKeys(FLEET).jobs, GROUP, "raw"]
    worker = [sys.executable, "-m", "fleetscale", "worker", "bench.apps:app", "--burst"]
    flags = ["--no-telemetry"] if kind == "telemetry_off" else []
    return [*worker, "--log-level", "warning", *flags]


def drain_footprint(url: str, kind: str, jobs: int) -> Footprint:
    """Queue `jobs` no-op jobs, drain them with one consumer of `kind` (see
    `consumer_argv`) and sample its RSS against the jobs done."""
    client = redis.Redis.from_url(url)
    stream = FleetKeys(FLEET).jobs
    refill(client, url, jobs)
    proc = subprocess.Popen(consumer_argv(kind, url), env=bench_env(url))
    samples: list[tuple[int, int]] = []
    hwm = 0
    try:
        while (peak := reap_with_peak(proc, block=False)) is None:
            memory = memory_kib(proc.pid)
            done = entries_done(client, stream)
            if memory is not None and done > 0:
                samples.append((done, memory[0]))
                hwm = max(hwm, memory[1])
            time.sleep(SAMPLE_EVERY_S)
    finally:
        if proc.returncode is None:
            proc.kill()
            reap_with_peak(proc, block=True)
        client.close()
    if proc.returncode != 0 or not samples:
        raise RuntimeError(f"{kind} exited {proc.returncode} after {len(samples)} samples")
    per = 100_000
    return Footprint(
        kind,
        samples[0][1],
        samples[-1][1],
        max(peak, hwm),
        tuple(samples),
        growth(samples, per, int(jobs * WARMUP_SHARE)),
        per,
    )


# -- 2. controller ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def steady_load(url: str, stop: threading.Event) -> None:
    """Submit `LOAD_PER_S` short sleeps a second, a tenth each 100 ms, until `stop`."""
    per_tick = max(1, LOAD_PER_S // 10)
    with Producer(FLEET, url) as producer:
        next_at = time.monotonic()
        while not stop.wait(max(0.0, next_at - time.monotonic())):
            producer.submit_many([("sleep", (LOAD_JOB_S,), {})] * per_tick)
            next_at += 0.1


def ticks_so_far(client: redis.Redis) -> int:
    """Decisions the leader has logged (the log is capped; entries-added is not)."""
    try:
        return int(client.xinfo_stream(FleetKeys(FLEET).decisions)["entries-added"])
    except redis.ResponseError:  # no decision yet
        return 0


def controller_argv(tick_s: float) -> list[str]:
    """A `fleetscale controller` of a small fleet: 2 worker processes at most, a warm spare
    among them, deciding every `tick_s` seconds, serving its metrics."""
    options = (
        f"--host-id {HOST} --capacity 2 --max 2 --warm 1 --tick {tick_s * 1000:.0f}ms "
        f"--stop-grace 5s --metrics-port {free_port()} --log-level warning"
    )
    return [sys.executable, "-m", "fleetscale", "controller", "bench.apps:app", *options.split()]


def controller_footprint(
    url: str, ticks: int, name: str = "controller", cwd: Path | None = None, tick_s: float = 0.1
) -> Footprint:
    """Run a controller (from `cwd`'s code when given) under a steady load until it has
    logged `ticks` decisions; sample its own RSS against its ticks each second."""
    client = redis.Redis.from_url(url)
    refill(client, url, 0)
    env = bench_env(url)
    if cwd is not None:
        env["PYTHONPATH"] = str(cwd)
    stop = threading.Event()
    load = threading.Thread(target=steady_load, args=(url, stop), daemon=True)
    proc = subprocess.Popen(controller_argv(tick_s), env=env, cwd=cwd)
    samples: list[tuple[int, int]] = []
    deadline = time.monotonic() + 60 + 5 * ticks * tick_s
    peak = 0
    try:
        load.start()
        while True:
            done = ticks_so_far(client)
            memory = memory_kib(proc.pid)
            if proc.poll() is not None or memory is None or time.monotonic() > deadline:
                raise RuntimeError(f"{name}: {done} of {ticks} ticks, exit {proc.returncode}")
            if done > 0:
                samples.append((done, memory[0]))
                peak = memory[1]
            if done >= ticks:
                break
            time.sleep(1.0)
    finally:
        stop.set()
        load.join(timeout=10)
        proc.terminate()
        proc.wait(timeout=60)
        client.close()
    early = next((rss for x, rss in samples if x >= min(EARLY_TICKS, ticks)), samples[-1][1])
    per = 1000
    return Footprint(
        name,
        early,
        samples[-1][1],
        peak,
        tuple(samples),
        growth(samples, per, min(EARLY_TICKS, ticks)),
        per,
    )


def git(*args: str) -> bytes:
    repo = Path(__file__).resolve().parent.parent
    return subprocess.run(["git", *args], check=True, capture_output=True, cwd=repo).stdout


def previous_code(rev: str, into: Path) -> tuple[str, Path]:
    """The short hash of commit `rev`, and its `fleetscale` and `bench` extracted under
    `into` (git archive)."""
    short = git("rev-parse", "--short", rev).decode().strip()
    archive = git("archive", "--format=tar", short, "fleetscale", "bench")
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return short, into


# -- 3. producer ------------------------------------------------------------------------


@dataclass(frozen=True)
class SubmitMemory:
    """A producer subprocess's memory, KiB."""

    name: str
    base_kib: int
    """RSS after imports and a connection, before the first job."""
    peak_kib: int
    traced_peak_kib: int
    """tracemalloc's peak of Python allocations after imports (a second run)."""
    seconds: float


SUBMIT_KINDS = ("submit_many", "submit_many_10k", "raw_xadd")


def submit_in_child(kind: str, url: str, jobs: int, trace: bool) -> dict[str, float]:
    """Submit `jobs` no-op jobs the `kind` way in this process; its memory figures."""
    payload = encode_job(Job("0" * 32, "noop"), MIB)
    specs: Iterator[JobSpec] = (("noop", (), {}) for _ in range(jobs))
    producer = Producer(FLEET, url)
    client = redis.Redis.from_url(url)
    client.ping()
    producer.backlog()  # connected, scripts loaded
    base_kib, _ = memory_kib(os.getpid()) or (0, 0)
    if trace:
        tracemalloc.start()
    started = time.perf_counter()
    if kind == "submit_many":
        producer.submit_many(specs)
    elif kind == "submit_many_10k":
        while producer.submit_many(itertools.islice(specs, SUBMIT_CALL)):
            pass
    else:
        stream = FleetKeys(FLEET).jobs
        for start in range(0, jobs, PIPELINE):
            pipe = client.pipeline(transaction=False)
            for _ in range(min(PIPELINE, jobs - start)):
                pipe.xadd(stream, {JOB_FIELD: payload})
            pipe.execute()
    seconds = time.perf_counter() - started
    traced = tracemalloc.get_traced_memory()[1] // 1024 if trace else 0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"base_kib": base_kib, "peak_kib": peak, "traced_peak_kib": traced, "seconds": seconds}


def run_submit_child(kind: str, url: str, jobs: int, trace: bool) -> dict[str, float]:
    argv = [sys.executable, "-m", "bench.memory", "--child", kind, url, str(jobs)]
    out = subprocess.run(
        argv + (["--trace"] if trace else []), check=True, capture_output=True, env=bench_env(url)
    ).stdout
    figures: dict[str, float] = json.loads(out)
    return figures


def submit_memory(url: str, kind: str, jobs: int) -> SubmitMemory:
    """Peak memory of a subprocess submitting `jobs` no-op jobs the `kind` way
    (see `SUBMIT_KINDS`); run twice, untraced and traced, on an emptied stream each."""
    client = redis.Redis.from_url(url)
    runs = []
    for trace in (False, True):
        refill(client, url, 0)
        runs.append(run_submit_child(kind, url, jobs, trace))
    client.close()
    plain, traced = runs
    return SubmitMemory(
        kind,
        int(plain["base_kib"]),
        int(plain["peak_kib"]),
        int(traced["traced_peak_kib"]),
        plain["seconds"],
    )


# -- the run and its report -------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    jobs: int
    """Jobs each consumer drains."""
    ticks: int
    """Decision ticks each controller runs."""
    submit_jobs: int
    """Jobs each producer submits."""
    previous: str | None = None
    """A git commit whose controller is measured too."""


@dataclass(frozen=True)
class Results:
    sizes: Sizes
    drains: tuple[Footprint, ...]
    controllers: tuple[Footprint, ...]
    submits: tuple[SubmitMemory, ...]


QUICK = Sizes(jobs=20_000, ticks=100, submit_jobs=20_000)


def run(sizes: Sizes) -> Results:
    no_rewrite = ("--auto-aof-rewrite-percentage", "0")
    with (
        tempfile.TemporaryDirectory() as tmp,
        EmbeddedRedis(Path(tmp) / "redis", extra_args=no_rewrite) as server,
    ):
        url = server.url
        drains = []
        for kind in ("raw", "telemetry_on", "telemetry_off"):
            print(f"worker: {kind}", file=sys.stderr)
            drains.append(drain_footprint(url, kind, sizes.jobs))
        print("controller", file=sys.stderr)
        controllers = [controller_footprint(url, sizes.ticks)]
        if sizes.previous:
            print(f"controller at {sizes.previous}", file=sys.stderr)
            short, code = previous_code(sizes.previous, Path(tmp) / "previous")
            controllers.append(
                controller_footprint(url, sizes.ticks, f"controller at {short}", code)
            )
        submits = []
        for kind in SUBMIT_KINDS:
            print(f"producer: {kind}", file=sys.stderr)
            submits.append(submit_memory(url, kind, sizes.submit_jobs))
    return Results(sizes, tuple(drains), tuple(controllers), tuple(submits))


def mib(kib: float) -> str:
    return f"{kib / 1024:.1f}"


def rss_at(samples: Sequence[tuple[int, int]], marks: Sequence[int]) -> Iterator[str]:
    """The RSS (MiB) of the first sample at or past each mark."""
    for mark in marks:
        rss = next((r for x, r in samples if x >= mark), None)
        yield "–" if rss is None else mib(rss)


def report(r: Results) -> str:
    jobs, ticks, submit_jobs = r.sizes.jobs, r.sizes.ticks, r.sizes.submit_jobs
    raw = r.drains[0]
    marks = [jobs * k // 10 for k in range(1, 11)]
    lines = [
        f"**Worker**: one consumer process draining {jobs:,} no-op jobs; ratios to the "
        "raw redis-py consumer.",
        "",
        "| consumer | RSS at first job MiB | RSS at end MiB | peak RSS MiB | peak ÷ raw | "
        "growth KiB per 100k jobs |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for f in r.drains:
        lines.append(
            f"| {f.name} | {mib(f.start_kib)} | {mib(f.end_kib)} | {mib(f.peak_kib)} | "
            f"{f.peak_kib / raw.peak_kib:.2f} | {f.growth_kib:+,.0f} |"
        )
    lines += [
        "",
        "RSS (MiB) at each tenth of the jobs: "
        + "; ".join(f"{f.name} {', '.join(rss_at(f.samples, marks))}" for f in r.drains),
    ]
    lines += [
        "",
        f"**Controller**: `--tick 100ms`, 2 worker processes at most (a warm spare among "
        f"them), {LOAD_PER_S} jobs/s of "
        f"{LOAD_JOB_S * 1000:.0f} ms; its own RSS, not its workers'; baseline its RSS after "
        f"{EARLY_TICKS} ticks.",
        "",
        f"| controller | ticks | RSS after {EARLY_TICKS} ticks MiB | RSS at end MiB | "
        "end ÷ early | peak RSS MiB | growth KiB per 1,000 ticks |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for f in r.controllers:
        lines.append(
            f"| {f.name} | {f.samples[-1][0]:,} | {mib(f.start_kib)} | "
            f"{mib(f.end_kib)} | {f.end_kib / f.start_kib:.3f} | {mib(f.peak_kib)} | "
            f"{f.growth_kib:+,.0f} |"
        )
    tick_marks = [ticks * k // 5 for k in range(1, 6)]
    lines += [
        "",
        "RSS (MiB) at each fifth of the ticks: "
        + "; ".join(f"{f.name} {', '.join(rss_at(f.samples, tick_marks))}" for f in r.controllers),
    ]
    base = next(s for s in r.submits if s.name == "raw_xadd")
    lines += [
        "",
        f"**Producer**: one subprocess submitting {submit_jobs:,} no-op jobs from a "
        "generator; ratios to raw pipelined XADD.",
        "",
        "| producer | RSS after imports MiB | peak RSS MiB | peak ÷ raw | peak − imports MiB "
        "| tracemalloc peak MiB | s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in r.submits:
        lines.append(
            f"| {s.name} | {mib(s.base_kib)} | {mib(s.peak_kib)} | "
            f"{s.peak_kib / base.peak_kib:.2f} | {mib(s.peak_kib - s.base_kib)} | "
            f"{mib(s.traced_peak_kib)} | {s.seconds:.1f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small sizes (20,000 jobs, 100 ticks): a check that it runs",
    )
    parser.add_argument("--jobs", type=int, default=1_000_000, help="jobs each worker drains")
    parser.add_argument("--ticks", type=int, default=3000, help="controller decision ticks")
    parser.add_argument(
        "--submit-jobs", type=int, default=1_000_000, help="jobs each producer submits"
    )
    parser.add_argument(
        "--previous", metavar="REV", help="also measure the controller of this git commit"
    )
    parser.add_argument("--child", nargs=3, metavar=("KIND", "URL", "JOBS"), help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, url, jobs = args.child
        print(json.dumps(submit_in_child(kind, url, int(jobs), args.trace)))
        return
    sizes = QUICK if args.quick else Sizes(args.jobs, args.ticks, args.submit_jobs)
    print(report(run(replace(sizes, previous=args.previous))))


if __name__ == "__main__":
    main()
