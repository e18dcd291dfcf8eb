"""A real fleet against a load trace, beside the simulator on the same trace.

A private Redis (AOF everysec), one `fleetscale controller` process running worker
processes of `bench.apps:app` (a `timed_sleep` task: 50 ms of sleep, so dozens of
workers fit on two cores), and a producer here that submits Poisson arrivals following
the trace. Every job's ground-truth wait is its start time (written by the task to a
ledger outside Redis) minus its submit time; the fleet size is read each second from the
host's heartbeat. The same trace then runs through the simulator with the same policy,
service time, warm spares, the cold start-up measured here and the controller's decision
phase: its decision ticks (from the fleet's decision log) fall at some fraction of the
period after the trace's start, and a step in the load is met up to a period sooner or
later with it, which moves the whole-run p99 wait. Prints both side by side and the
acceptance checks, and saves a plot.

Usage: `python -m bench.control [--plot bench/plots/control-step.png]`.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.ledger import read_starts
from fleetscale.config import RedisSettings
from fleetscale.controller.capacity import workers_for_wait
from fleetscale.controller.plan import PlanStore
from fleetscale.controller.policy import Policy
from fleetscale.embedded import EmbeddedRedis
from fleetscale.keys import FleetKeys
from fleetscale.producer import Producer
from fleetscale.sim.engine import SimConfig
from fleetscale.sim.pool import StartUp
from fleetscale.sim.report import nearest_rank
from fleetscale.sim.scenario import Outcome, run_scenario
from fleetscale.sim.service import service_time
from fleetscale.sim.trace import Trace, parse_trace
from fleetscale.store import connect

FLEET = "control"
HOST = "bench-host"
JOB_S = 0.05
PERIOD_S = 1.0
TARGET_S = 0.5
CAPACITY = 40
WARM = 2
STEP_TRACE = "t_s,rate_per_s\n0,20\n60,200\n180,20\n300,0\n"
STEP_UP_S, STEP_DOWN_S = 60.0, 180.0
SETTLE_AFTER_STEP_S = 10.0
WINDOW_S = 10.0


@dataclass
class Recording:
    """What the real run produced."""

    submitted_wall: dict[str, float] = field(default_factory=dict)
    started_wall: dict[str, list[float]] = field(default_factory=dict)
    per_second: list[tuple[float, int, int, int, int]] = field(default_factory=list)
    """(t_s, running, ready, warm, desired) each second."""
    startup_s: dict[float, float] = field(default_factory=dict)
    """The host's median spawn-to-ready time as reported each second."""
    t0_wall: float = 0.0
    decisions: list[tuple[float, int]] = field(default_factory=list)
    """(t_s from the trace's start, desired workers) of every decision the leader logged."""


def produce(producer: Producer, trace: Trace, rec: Recording, seed: int) -> None:
    arrivals = trace.arrival_times(random.Random(seed))
    start = time.monotonic()
    rec.t0_wall = time.time()
    i = 0
    while i < len(arrivals):
        now = time.monotonic() - start
        due = [a for a in arrivals[i : i + 2000] if a <= now]
        if due:
            keys = [f"k{i + n}" for n in range(len(due))]
            wall = time.time()
            producer.submit_many([("timed_sleep", (k, JOB_S), {}) for k in keys])
            for k in keys:
                rec.submitted_wall[k] = wall
            i += len(due)
        else:
            time.sleep(min(0.005, max(0.0, arrivals[i] - now)))


def sample_fleet(client_url: str, keys: FleetKeys, rec: Recording, stop: threading.Event) -> None:
    client = connect(RedisSettings(url=client_url))
    plans = PlanStore(client, keys, client_url)
    start = time.monotonic()
    while not stop.wait(max(0.0, 1.0 - (time.monotonic() - start) % 1.0)):
        fields = {k.decode(): v.decode() for k, v in client.hgetall(keys.host(HOST)).items()}
        plan = plans.read()
        t = round(time.monotonic() - start)
        if fields.get("startup_s"):
            rec.startup_s[t] = float(fields["startup_s"])
        rec.per_second.append(
            (
                t,
                int(fields.get("running", 0) or 0),
                int(fields.get("ready", 0) or 0),
                int(fields.get("warm", 0) or 0),
                plan.desired if plan else 0,
            )
        )


def run_real(trace: Trace, tmp: Path, seed: int) -> tuple[Recording, float]:
    """Run the real fleet; return the recording and the cold start-up of an idle machine."""
    ledger = tmp / "ledger.txt"
    with EmbeddedRedis(tmp / "redis") as server:
        env = {
            **os.environ,
            "FLEETSCALE_BENCH_FLEET": FLEET,
            "FLEETSCALE_BENCH_LEDGER": str(ledger),
            "FLEETSCALE_REDIS_URL": server.url,
        }
        cold_s = measure_cold_start(env)
        argv = [
            sys.executable,
            "-m",
            "fleetscale",
            "controller",
            "bench.apps:app",
            "--host-id",
            HOST,
            "--capacity",
            str(CAPACITY),
            "--max",
            str(CAPACITY),
            "--target-p99",
            f"{TARGET_S}s",
            "--warm",
            str(WARM),
            "--tick",
            f"{PERIOD_S}s",
            "--log-level",
            "warning",
        ]
        controller = subprocess.Popen(argv, env=env)
        rec = Recording()
        stop = threading.Event()
        keys = FleetKeys(FLEET)
        sampler = threading.Thread(target=sample_fleet, args=(server.url, keys, rec, stop))
        try:
            time.sleep(5)  # the controller registers and starts its warm spares
            sampler.start()
            produce(Producer(FLEET, server.url), trace, rec, seed)
            time.sleep(5)
            plans = PlanStore(connect(RedisSettings(url=server.url)), keys, server.url)
            rec.decisions = [
                (d["at_s"] - rec.t0_wall, d["desired"]) for d in reversed(plans.decisions(2000))
            ]
        finally:
            stop.set()
            controller.terminate()
            controller.wait(timeout=60)
            if sampler.is_alive():
                sampler.join()
    for key, _pid, wall in read_starts(ledger):
        rec.started_wall.setdefault(key, []).append(wall)
    return rec, cold_s


def decision_phase(times_s: list[float], period_s: float) -> float:
    """Where in the period decisions at `times_s` fall, seconds in [0, period_s).

    Their circular mean modulo the period: a drift-free schedule ticks at one phase, and
    the jitter of a tick read just before and one just after a period boundary cancels
    instead of averaging to half a period.
    """
    angles = [2 * math.pi * (t % period_s) / period_s for t in times_s]
    mean = math.atan2(sum(map(math.sin, angles)), sum(map(math.cos, angles)))
    phase_s = (mean / (2 * math.pi) * period_s) % period_s
    return 0.0 if phase_s >= period_s else phase_s  # -1e-17 % 1.0 is 1.0


def phase_spread(times_s: list[float], period_s: float, phase_s: float) -> float:
    """Median distance of the decisions at `times_s` from `phase_s` in the period, s."""
    gaps = sorted(abs((t - phase_s + period_s / 2) % period_s - period_s / 2) for t in times_s)
    return gaps[len(gaps) // 2] if gaps else math.nan


def simulate_step(trace: Trace, cold_s: float, seed: int, phase_s: float) -> Outcome:
    """The simulator on `trace` as the real fleet ran: its policy, service time, spares,
    start-up `cold_s` (seconds) and decision ticks at `phase_s` + k × `PERIOD_S`."""
    config = SimConfig(
        target_p99_s=TARGET_S,
        period_s=PERIOD_S,
        startup=StartUp(cold_s=cold_s, warm_s=0.005, spares_per_host=WARM),
        hosts=((HOST, CAPACITY),),
        seed=seed,
        decision_phase_s=phase_s,
    )
    return run_scenario(
        trace,
        "default",
        policy=Policy(target_p99_s=TARGET_S, max=CAPACITY),
        service=service_time(JOB_S, 0.0),
        config=config,
    )


def first_change_after(changes: list[tuple[float, int]], after_s: float) -> str:
    """'t=61.4s → 12' for the first decision at or after `after_s` that changed the size."""
    sizes = iter(changes)
    previous = next(sizes, (0.0, 0))[1]
    for t_s, desired in sizes:
        if t_s >= after_s and desired != previous:
            return f"t={t_s:.2f}s → {desired}"
        previous = desired
    return "none"


def measure_cold_start(env: dict[str, str]) -> float:
    """Median seconds from spawning a worker to its `ready` status line (3 tries)."""
    times = []
    for _ in range(3):
        read_fd, write_fd = os.pipe()
        worker_env = {**env, "FLEETSCALE_STATUS_FD": str(write_fd)}
        started = time.monotonic()
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "fleetscale",
                "worker",
                "bench.apps:app",
                "--log-level",
                "warning",
            ],
            env=worker_env,
            pass_fds=(write_fd,),
        )
        os.close(write_fd)
        with os.fdopen(read_fd) as status:
            status.readline()
        times.append(time.monotonic() - started)
        proc.terminate()
        proc.wait()
    return sorted(times)[1]


@dataclass(frozen=True)
class RealSummary:
    jobs: int
    lost: int
    duplicated: int
    waits: list[tuple[float, float]]  # (arrival s from start, wait s)
    worker_seconds: float


def summarise_real(rec: Recording) -> RealSummary:
    waits = []
    for key, submitted in rec.submitted_wall.items():
        starts = rec.started_wall.get(key)
        if starts:
            waits.append((submitted - rec.t0_wall, min(starts) - submitted))
    lost = sum(1 for k in rec.submitted_wall if k not in rec.started_wall)
    duplicated = sum(1 for v in rec.started_wall.values() if len(v) > 1)
    worker_seconds = sum(running + warm for _, running, _, warm, _ in rec.per_second)
    return RealSummary(
        len(rec.submitted_wall), lost, duplicated, sorted(waits), float(worker_seconds)
    )


def window_p99(waits: list[tuple[float, float]], start_s: float, end_s: float) -> float | None:
    inside = sorted(w for a, w in waits if start_s <= a < end_s)
    return nearest_rank(inside, 0.99) if inside else None


def capacity_model(rate_per_s: float, policy: Policy) -> int:
    """The policy's capacity model for a steady rate: enough for the utilisation target
    and at least the Erlang-C workers that meet the p99 target."""
    by_utilisation = math.ceil(rate_per_s * JOB_S / policy.target_utilisation)
    return max(by_utilisation, workers_for_wait(rate_per_s, JOB_S, policy.target_p99_s, cv=0.0))


def checks(real: RealSummary, rec: Recording, sim_p99: float, sim_ws: float) -> list[str]:
    policy = Policy(target_p99_s=TARGET_S, max=CAPACITY)
    lines = []
    windows = [
        (s, window_p99(real.waits, s, s + WINDOW_S))
        for s in [STEP_UP_S + SETTLE_AFTER_STEP_S + WINDOW_S * k for k in range(11)]
        if s < STEP_DOWN_S
    ]
    after_step = [w for a, w in real.waits if STEP_UP_S + SETTLE_AFTER_STEP_S <= a < STEP_DOWN_S]
    worst = max(p for _, p in windows if p is not None)
    within = sum(w <= TARGET_S for w in after_step) / len(after_step)
    lines.append(
        f"a1 jobs arriving 10 s+ after the step up: worst 10 s-window p99 {worst:.3f}s "
        f"(target {TARGET_S}s) → {'PASS' if worst <= TARGET_S else 'FAIL'}; "
        f"{within:.2%} waited ≤ target, max {max(after_step):.3f}s"
    )
    model = capacity_model(20, policy)
    deadline = STEP_DOWN_S + policy.scale_down_stabilisation_s + 30
    shrunk = [
        (t, running)
        for t, running, *_ in rec.per_second
        if t >= STEP_DOWN_S and running <= 1.2 * model
    ]
    reached = shrunk[0][0] if shrunk else None
    ok = reached is not None and reached <= deadline
    lines.append(
        f"a2 after the step down: capacity model {model} workers; the fleet was within 20 %"
        f" at t={reached}s (deadline t={deadline:.0f}s) → {'PASS' if ok else 'FAIL'}"
    )
    lines.append(
        f"a3 jobs {real.jobs}, lost {real.lost}, duplicated {real.duplicated} → "
        f"{'PASS' if real.lost == 0 and real.duplicated == 0 else 'FAIL'}"
    )
    real_p99 = nearest_rank(sorted(w for _, w in real.waits), 0.99)
    p99_err = abs(sim_p99 - real_p99) / real_p99
    ws_err = abs(sim_ws - real.worker_seconds) / real.worker_seconds
    ok = p99_err <= 0.25 and ws_err <= 0.25
    lines.append(
        f"b  wait p99 real {real_p99:.3f}s vs sim {sim_p99:.3f}s ({p99_err:.0%});"
        f" worker-s real {real.worker_seconds:.0f} vs sim {sim_ws:.0f} ({ws_err:.0%})"
        f" → {'PASS' if ok else 'FAIL'} (≤ 25 % each)"
    )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--plot", type=Path, default=Path("bench/plots/control-step.png"))
    args = parser.parse_args()
    trace = parse_trace(STEP_TRACE, "step-20-200-20")
    with tempfile.TemporaryDirectory() as tmp:
        rec, idle_cold_s = run_real(trace, Path(tmp), args.seed)
    real = summarise_real(rec)
    # The simulator gets the start-up the fleet really had: the host's median
    # spawn-to-ready time once the step-up's workers have started (slower than on an idle
    # machine: they start together, on two busy cores).
    after_step = [v for t, v in sorted(rec.startup_s.items()) if t >= STEP_UP_S + 15]
    cold_s = after_step[0] if after_step else idle_cold_s
    ticks_s = [t for t, _ in rec.decisions]
    phase_s = decision_phase(ticks_s, PERIOD_S)
    sim = simulate_step(trace, cold_s, args.seed, phase_s)
    sim_p99 = nearest_rank(sorted(sim.run.waits_s), 0.99)
    unaligned = simulate_step(trace, cold_s, args.seed, 0.0)
    print(
        f"trace {trace.name}: 20 → 200 → 20 jobs/s, {JOB_S * 1000:.0f} ms jobs, target p99 "
        f"{TARGET_S}s, worker start-up {cold_s * 1000:.0f} ms as the host measured it in the run"
        f" (a fresh interpreter: {idle_cold_s * 1000:.0f} ms on an idle machine),"
        f" {WARM} warm spares, decision ticks at {phase_s:.3f}s + k × {PERIOD_S:g}s"
        f" as the controller's fell ({len(ticks_s)} decisions logged, half within"
        f" {phase_spread(ticks_s, PERIOD_S, phase_s) * 1000:.1f} ms of that)\n"
    )
    print(
        "| t (s) | rate/s | real running | real desired | sim ready+starting"
        " | real p99 (10 s) | sim p99 (10 s) |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    sim_rows = {int(r.t_s): r for r in sim.run.timeline}
    sim_waits = list(zip(sim.run.arrivals_s, sim.run.waits_s, strict=True))
    for t, running, _ready, _warm, desired in rec.per_second:
        if t % 10 == 0 and t < trace.duration_s:
            s = sim_rows.get(t)
            rp, sp = window_p99(real.waits, t, t + 10), window_p99(sim_waits, t, t + 10)
            print(
                f"| {t} | {trace.rate_at(t):.0f} | {running} | {desired} | "
                f"{(s.ready + s.starting) if s else '-'} | {rp if rp is None else f'{rp:.3f}'} | "
                f"{sp if sp is None else f'{sp:.3f}'} |"
            )
    print()
    print(
        f"first size change after the step up: real {first_change_after(rec.decisions, STEP_UP_S)}"
        f", sim {first_change_after(sim.run.changes, STEP_UP_S)}"
    )
    for line in checks(real, rec, sim_p99, sim.summary.worker_seconds):
        print(line)
    print(
        f"   (the simulator ticking at whole seconds of the trace, phase 0: wait p99"
        f" {nearest_rank(sorted(unaligned.run.waits_s), 0.99):.3f}s)"
    )
    plot(args.plot, trace=trace, rec=rec, real=real, sim_rows=sim_rows, sim_waits=sim_waits)


def plot(
    path: Path, *, trace: Trace, rec: Recording, real: RealSummary, sim_rows: dict, sim_waits: list
) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot", file=sys.stderr)
        return
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    ts = [t for t, *_ in rec.per_second]
    ax1.plot(ts, [r[1] for r in rec.per_second], label="real running")
    ax1.plot(ts, [r[4] for r in rec.per_second], label="real desired", linestyle="--")
    st = sorted(sim_rows)
    ax1.plot(
        st, [sim_rows[t].ready + sim_rows[t].starting for t in st], label="sim workers", alpha=0.7
    )
    ax1b = ax1.twinx()
    ax1b.plot(st, [trace.rate_at(t) for t in st], color="grey", alpha=0.4, label="load (jobs/s)")
    ax1.set_ylabel("workers")
    ax1b.set_ylabel("jobs/s")
    ax1.legend(loc="upper left")
    windows = list(range(0, int(trace.duration_s), 10))
    ax2.plot(
        windows,
        [window_p99(real.waits, w, w + 10) for w in windows],
        marker="o",
        label="real p99 wait",
    )
    ax2.plot(
        windows,
        [window_p99(sim_waits, w, w + 10) for w in windows],
        marker="x",
        label="sim p99 wait",
    )
    ax2.axhline(TARGET_S, color="red", linestyle=":", label="target")
    ax2.set_ylabel("wait p99 per 10 s (s)")
    ax2.set_xlabel("time (s)")
    ax2.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    print(f"plot saved to {path}")


if __name__ == "__main__":
    main()
