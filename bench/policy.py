"""Every policy × every trace in the simulator, the acceptance checks, and decide's cost.

Run from the repository root:

    python bench/policy.py            # tables on stdout, RESULTS.md section and plots
    python bench/policy.py --no-write # tables only

Traces: the shipped synthetic ones, plus the real ones in `../shared/traces` (relative to
the repository root) when that folder exists. Writes the `## Policy × trace` section of
`bench/RESULTS.md` (other sections are kept) and one plot per trace to `bench/plots/`.
Besides the main table: the default policy over seeds 1–6, the reactive bound on the
bursty trace (what any policy could do with a 1 s cold start), and, for information,
the default policy with one warm spare per host. About five minutes on one core.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from fleetscale.controller.policy import HostView, Observation, Policy, State, decide
from fleetscale.sim.engine import SimConfig, simulate
from fleetscale.sim.plot import plot_outcome
from fleetscale.sim.pool import StartUp
from fleetscale.sim.report import Summary, per_hour, summarise
from fleetscale.sim.scaler import POLICIES, ReactiveBound, StaticScaler
from fleetscale.sim.scenario import Outcome, run_scenario, trace_service
from fleetscale.sim.trace import SHIPPED, Trace, load_trace

REPO = Path(__file__).resolve().parent.parent
REAL_TRACES = REPO / ".." / "shared" / "traces"
RESULTS = REPO / "bench" / "RESULTS.md"
PLOTS = REPO / "bench" / "plots"
SECTION = "## Policy × trace"
STATIONARY_OR_SLOW = ("steady", "ramp", "diurnal", "heavy_tail")
BASELINES = ("hpa", "keda", "celery", "static")
SEEDS = (1, 2, 3, 4, 5, 6)
BOUND_DELAYS_S = (0.1, 0.25, 0.5, 1.0)
BOUND_FLOORS = tuple(range(12, 21))
BOUND_SEEDS = (1, 2, 3)
HEAVY_TAIL_FLEETS = (16, 17, 18)


BEFORE = {
    "steady": (0.997, 1.10, 1),
    "step": (0.982, 1.17, 7),
    "spike": (0.982, 1.25, 3),
    "ramp": (0.994, 1.07, 2),
    "diurnal": (0.989, 1.11, 11),
    "bursty": (0.932, 1.59, 50),
    "heavy_tail": (0.983, 1.08, 18),
    "real_azure_llm_code": (0.673, 4.27, 67),
    "real_azure_llm_conv": (0.927, 1.17, 67),
    "real_nasa_http": (0.943, 1.36, 47),
}
"""The default policy at seed 1 before this round (commit 560a8eb, the first issue-3
policy): attainment, × oracle, reversals after the first minute; kept to show what
changed."""


def traces() -> list[tuple[Trace, bool]]:
    """(trace, shipped?) for every shipped trace and every real one found."""
    found = [(load_trace(name), True) for name in SHIPPED]
    if REAL_TRACES.is_dir():
        found += [(load_trace(str(path)), False) for path in sorted(REAL_TRACES.glob("real_*.csv"))]
    return found


def cost(summary: Summary) -> float:
    return summary.worker_seconds / max(summary.oracle_worker_seconds, 1e-9)


def row(summary: Summary) -> str:
    recovery = "–" if summary.recovery_s is None else f"{summary.recovery_s:.0f}"
    return (
        f"| {summary.trace} | {summary.policy} | {summary.slo_attainment:.3f} | "
        f"{summary.worker_seconds:,.0f} | {cost(summary):.2f} | {summary.scale_actions} | "
        f"{per_hour(summary, summary.reversals):.1f} | {summary.wait_p99_s:.3f} | {recovery} |"
    )


def versus(mine: Summary, other: Summary, base: str) -> str:
    """Acceptance c against one baseline, as a check mark."""
    if other.slo_attainment >= 0.98:
        ok = mine.worker_seconds <= other.worker_seconds
        return f"vs {base}: cheaper {'✓' if ok else '✗'}"
    ok = mine.slo_attainment > other.slo_attainment
    return f"vs {base}: attains more {'✓' if ok else '✗'}"


def acceptance(results: dict[tuple[str, str], Summary], names: list[str]) -> list[str]:
    """The b, c and d checks (d on the stationary and slow traces), one line a trace."""
    lines = []
    for name in names:
        mine = results[(name, "default")]
        checks = [f"cost {cost(mine):.2f}× oracle {'✓' if cost(mine) <= 1.3 else '✗'}"]
        if name != "spike":
            checks.append(f"attainment {mine.slo_attainment:.3f} "
                          f"{'✓' if mine.slo_attainment >= 0.98 else '✗'}")  # fmt: skip
        if name == "step":
            ok = (mine.recovery_s or 0) <= 10
            checks.append(f"recovery {mine.recovery_s} s {'✓' if ok else '✗'}")
        if name in STATIONARY_OR_SLOW:
            rate = per_hour(mine, mine.reversals)
            checks.append(f"reversals {rate:.1f}/h {'✓' if rate <= 6 else '✗'}")
        checks += [versus(mine, results[(name, base)], base) for base in BASELINES]
        lines.append(f"- **{name}**: " + "; ".join(checks))
    return lines


def progress_rows(results: dict[tuple[str, str], Summary], names: list[str]) -> list[str]:
    """Before (commit 560a8eb) → now, for the default policy at seed 1."""
    lines = [
        "| trace | attainment | × oracle | reversals/h |",
        "|---|---|---|---|",
    ]
    for name in names:
        if name not in BEFORE:
            continue
        now = results[(name, "default")]
        att, ratio, count = BEFORE[name]
        lines.append(
            f"| {name} | {att:.3f} → {now.slo_attainment:.3f} | {ratio:.2f} → {cost(now):.2f} | "
            f"{per_hour(now, count):.1f} → {per_hour(now, now.reversals):.1f} |"
        )
    return lines


def decide_cost_us(calls: int = 3000) -> float:
    """Median wall time of one `decide` for a fleet of 50 hosts, microseconds."""
    hosts = tuple(HostView(f"host-{i:02d}", 8, 4, 4, 0) for i in range(50))
    policy = Policy(max=400)
    state = State()
    samples = []
    for tick in range(calls):
        observation = Observation(
            wait_p50_s=0.02,
            wait_p99_s=0.2 + 0.01 * (tick % 7),
            head_of_line_age_s=0.05,
            backlog=220 + tick % 13,
            arrival_rate_per_s=800.0 + 5 * (tick % 11),
            service_time_s=0.2,
            busy_fraction=0.8,
            telemetry_age_s=1.0,
            hosts=hosts,
            service_cv=1.0,
            completed_per_s=800.0,
        )
        start = time.perf_counter_ns()
        decision = decide(observation, state, policy, float(tick))
        samples.append(time.perf_counter_ns() - start)
        state = decision.state
    return statistics.median(samples) / 1000.0


def seed_rows(shipped: list[Trace]) -> list[str]:
    """Attainment / × oracle / reversals an hour of the default policy over `SEEDS`."""
    lines = ["| trace | " + " | ".join(f"seed {s}" for s in SEEDS) + " |"]
    lines.append("|---|" + "---|" * len(SEEDS))
    for trace in shipped:
        cells = []
        for seed in SEEDS:
            summary = run_scenario(trace, "default", config=SimConfig(seed=seed)).summary
            rate = per_hour(summary, summary.reversals)
            cells.append(f"{summary.slo_attainment:.3f} / {cost(summary):.2f} / {rate:.0f}")
        lines.append(f"| {trace.name} | " + " | ".join(cells) + " |")
    return lines


def static_rows() -> list[str]:
    """Attainment of fixed fleets around static's size on heavy_tail over `SEEDS`."""
    trace = load_trace("heavy_tail")
    service = trace_service(trace)
    lines = ["| fixed fleet | " + " | ".join(f"seed {s}" for s in SEEDS) + " |"]
    lines.append("|---|" + "---|" * len(SEEDS))
    for workers in HEAVY_TAIL_FLEETS:
        cells = []
        for seed in SEEDS:
            run = simulate(trace, StaticScaler(workers), service, SimConfig(seed=seed))
            cells.append(f"{summarise(run, service, 0.5).slo_attainment:.3f}")
        lines.append(f"| {workers} | " + " | ".join(cells) + " |")
    return lines


def bound_rows() -> tuple[list[str], list[str]]:
    """The reactive bound on bursty: table rows, and per delay the least floor for 0.98."""
    trace = load_trace("bursty")
    service = trace_service(trace)
    lines = ["| quiet floor | " + " | ".join(f"told {d:g} s late" for d in BOUND_DELAYS_S) + " |"]
    lines.append("|---|" + "---|" * len(BOUND_DELAYS_S))
    least: dict[float, str] = {}
    for floor in BOUND_FLOORS:
        cells = []
        for delay_s in BOUND_DELAYS_S:
            runs = []
            for seed in BOUND_SEEDS:
                scaler = ReactiveBound(trace, service, 0.5, floor, delay_s)
                config = SimConfig(seed=seed, period_s=delay_s)
                runs.append(summarise(simulate(trace, scaler, service, config), service, 0.5))
            worst = min(run.slo_attainment for run in runs)
            ratio = max(cost(run) for run in runs)
            cells.append(f"{worst:.3f} / {ratio:.2f}")
            if worst >= 0.98 and delay_s not in least:
                least[delay_s] = f"{floor} workers at {ratio:.2f}× the oracle"
        lines.append(f"| {floor} | " + " | ".join(cells) + " |")
    notes = [f"  - told {d:g} s late: {least.get(d, 'over 20 workers')}" for d in BOUND_DELAYS_S]
    return lines, notes


def warm_rows(shipped: list[Trace]) -> list[str]:
    """The default policy with one warm spare per host (information, not acceptance)."""
    lines = [
        "| trace | attainment | × oracle (spares included) | reversals/h |",
        "|---|---|---|---|",
    ]
    for trace in shipped:
        config = SimConfig(startup=StartUp(spares_per_host=1))
        summary = run_scenario(trace, "default", config=config).summary
        rate = per_hour(summary, summary.reversals)
        lines.append(
            f"| {trace.name} | {summary.slo_attainment:.3f} | {cost(summary):.2f} | {rate:.1f} |"
        )
    return lines


def write_section(text: str) -> None:
    """Replace (or add) the `## Policy × trace` section of RESULTS.md."""
    old = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmark results\n"
    start = old.find(SECTION)
    if start < 0:
        RESULTS.write_text(old.rstrip() + "\n\n" + text, encoding="utf-8")
        return
    end = old.find("\n## ", start + len(SECTION))
    rest = old[end + 1 :] if end >= 0 else ""
    RESULTS.write_text(old[:start] + text + ("\n" + rest if rest else ""), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    results: dict[tuple[str, str], Summary] = {}
    table = [
        "| trace | policy | SLO attainment | worker-s | × oracle | actions | reversals/h | "
        "p99 wait s | recovery s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    print("\n".join(table))
    all_traces = traces()
    for trace, _ in all_traces:
        for name in POLICIES:
            outcome: Outcome = run_scenario(trace, name)
            results[(trace.name, name)] = outcome.summary
            table.append(row(outcome.summary))
            print(table[-1], flush=True)
            if name == "default" and not args.no_write:
                PLOTS.mkdir(exist_ok=True)
                plot_outcome(outcome, PLOTS / f"{trace.name}.png", 0.5)
    shipped = [trace for trace, is_shipped in all_traces if is_shipped]
    real = [trace.name for trace, is_shipped in all_traces if not is_shipped]
    tables = {
        "progress": progress_rows(results, [trace.name for trace, _ in all_traces]),
        "checks": acceptance(results, [trace.name for trace in shipped]),
        "real": acceptance(results, real),
        "seeds": seed_rows(shipped),
        "warm": warm_rows(shipped),
        "static": static_rows(),
    }
    tables["bound"], tables["least"] = bound_rows()
    bursty = results[("bursty", "default")]
    tables["bursty"] = [f"{bursty.slo_attainment:.3f}", f"{cost(bursty):.2f}"]
    # The lowest of three medians: the machine's speed, not what else ran meanwhile
    # (on a shared 2-core machine one run's median moves by 2x between runs).
    cost_us = min(decide_cost_us() for _ in range(3))
    for lines in tables.values():
        print("\n".join(lines))
    print(f"decide: median {cost_us:.0f} µs per call (50 hosts, lowest of 3 runs)")
    if not args.no_write:
        write_section(render(table, tables, cost_us, all_traces))


def render(
    table: list[str],
    tables: dict[str, list[str]],
    cost_us: float,
    all_traces: list[tuple[Trace, bool]],
) -> str:
    """The markdown of the section: the measured tables inside the fixed text."""
    plots = " · ".join(f"[{t.name}](plots/{t.name}.png)" for t, _ in all_traces)
    return TEMPLATE.format(
        table="\n".join(table),
        progress="\n".join(tables["progress"]),
        checks="\n".join(tables["checks"]),
        real="\n".join(tables["real"]),
        seeds="\n".join(tables["seeds"]),
        bound="\n".join(tables["bound"]),
        least="\n".join(tables["least"]),
        warm="\n".join(tables["warm"]),
        static="\n".join(tables["static"]),
        bursty_att=tables["bursty"][0],
        bursty_cost=tables["bursty"][1],
        cost_us=f"{cost_us:.0f}",
        plots=plots,
    )


TEMPLATE = """## Policy × trace

`python bench/policy.py` (seed 1, target p99 500 ms, cold start-up 1 s, no warm
spares, decision period 1 s for the default policy, 8 hosts × 64, run time
lognormal mean 200 ms cv 1 unless the trace sets its own; `heavy_tail` cv 3).
Attainment: share of 10 s arrival windows after the first minute whose p99 wait
≤ 500 ms. × oracle: worker-seconds over the Erlang-C lower bound. Reversals
per hour of the trace after the first minute. `real_*` are the traces in `../shared/traces`.

{table}

### What the default policy does now

- **Two speeds of estimate** (`controller/estimate.py`). A fast EWMA of the arrival
  rate (5 s) sizes urgent scale-ups; the capacity model sizes on a slow one (30 s; run
  time 600 s), which jumps to the fast one on a change beyond 4 standard errors (a step,
  a burst, a deploy) and starts as a running mean. The run-time cv comes from the
  smoothed first and second moments (the telemetry now reports it), so heavy-tailed run
  times are sized by M/G/c (Allen–Cunneen) instead of a correction learned from breaches.
- **A noise band instead of a tolerance** (`controller/recommend.py`). The fleet covers the
  slow rate plus 1.5 × the rate's own spread (measured as the fast–slow gap beyond what
  Poisson noise explains: real traffic moves by the second, Poisson traffic does not).
  It grows when even the low end of a 2-standard-error band needs more workers, and
  shrinks to the band's high end when that needs fewer. On a stationary load neither
  happens: that is what ended the flapping. (Scale-up stabilisation now defaults to
  off: the band does its job, and the window only delayed real rises.)
- **A fluid drain** (`controller/breach.py`). An urgent scale-up goes to the fleet that
  serves new arrivals within the target 3 s after its workers are up, counting the queue
  that grows during the 1 s start-up, instead of surge + the whole queue within the
  target (3–5× overshoots, undone seconds later).
- **An urgent hold** (`controller/damping.py`). After an urgent scale-up of at most ×2, a
  scale-down within 60 s goes all the way back or waits: on a rising load a partial
  give-back is undone again (two reversals each time).
- **SLO-budget learning** (`controller/learn.py`). The model correction follows the share
  of breaching ticks at model size (30 min EWMA) against the 2 % budget, instead of
  growing by the breach ratio on every single breach (which inflated heavy_tail by 25 %).

### Before (commit 560a8eb) → now, default policy, seed 1

{progress}

### Acceptance checks on the shipped traces (seed 1)

{checks}
- **decide cost**: median {cost_us} µs per call for 50 hosts, the lowest of three runs of
  3,000 calls (limit 200 µs)

Met except two, kept as strict xfail with the arguments below: bursty (attainment and
cost together) and heavy_tail against static.

### Default policy over seeds (attainment / × oracle / reversals an hour)

{seeds}

### Real traces against the baselines (information: acceptance covers shipped traces)

{real}

### bursty: 0.98 at ≤ 1.3× the oracle is out of reach with a 1 s cold start

The trace is a two-state Markov-modulated Poisson process, the textbook model of on-off
traffic: 40 jobs/s quiet, 120/s in bursts, exponential sojourns of mean 120 s and 40 s.
After the first minute it has 26 onsets, each a sudden ×3. It is left as it is: sudden
onsets are what makes it bursty, and the real Azure code trace is far burstier (bursts to
770/s from nothing).

- **Each onset costs a window unless the quiet fleet absorbs it.** 354 windows are scored;
  0.98 lets 7 fail, so at least 19 of the 26 onsets must be absorbed by workers already
  up. With N quiet workers (N ÷ 0.2 s jobs a second) the queue grows at 120 − 5N jobs a
  second from the onset until new workers are up; arrivals wait over 0.5 s once it holds
  2.5 N jobs, which takes 2.5 N ÷ (120 − 5N) s: 0.5 s at N = 12 (the oracle's quiet
  size is 11), 1 s at N = 16, 1.5 s at N = 18. Detection plus the 1 s cold start has to
  fit in about that (a window forgives its 1 % slowest jobs, a dozen or so).
- **Quiet spells are memoryless**, so an onset is as likely in any second of one as in
  any other: no placement of those workers beats a constant floor through the quiet
  spells, and the floor is what costs. The oracle spends 48,582 worker-s; 1.3× allows
  an average of 17.5 workers over the hour, and the bursts alone need 26.
- **The bound.** `ReactiveBound` is told each new rate exactly, d seconds after it starts,
  never false-alarms, runs the oracle's size otherwise and drains any queue within the
  target. Worst attainment / highest × oracle over seeds 1–3 for each quiet floor:

{bound}

  Least quiet floor for 0.98 on all three seeds:

{least}

  Told within 0.1 s, 15 quiet workers just make it (0.980–0.983 at 1.2996×): the
  obstacle is learning of the onset in time, not the cold start alone.
- **Detection takes time.** Telling a ×3 onset from Poisson noise at 40/s gathers
  evidence at 120 ln 3 − 80 ≈ 52 nats a second. The optimal detector (CUSUM on the
  arrivals, simulated) with a 12-nat threshold raises a false alarm once in about 1.5 h
  of quiet traffic and needs 0.22 s on average, and then knows the new rate only
  roughly (about 26 arrivals). Deciding within 0.1 s takes a 5-nat threshold (0.085 s):
  a false alarm every 5 s of quiet traffic, each starting a dozen workers for a second
  or two, hundreds an hour, against a cost margin the 0.1 s column has already spent.
  The default policy decides every second (the acceptance's period, and the
  controller's tick) and acts when the head of the line gets old, 1–2 s after an onset:
  the bound's 1 s column.

So the pair is out of reach for any policy that learns of onsets from the arrivals:
0.1 s would do with exact knowledge of the new rate and no false alarm, which Poisson
evidence cannot give; at 0.25 s, about the best with one false alarm an hour, it takes 17
quiet workers at 1.42×. The default policy attains {bursty_att} at {bursty_cost}×
(before: 0.932 at 1.59×: a few windows bought with a 3–5× overshoot at every onset); it
beats every baseline that misses the SLO and costs less than static, which meets it.

### heavy_tail against static: "no more worker-seconds" asks to match the oracle

On this stationary trace static is the oracle: 18 workers, the exact M/G/c size for the
true rate, mean and cv, 64,800 worker-s, attaining 0.986. Fixed fleets around it
(attainment, seeds 1–6):

{static}

A fleet of 17 misses at seed 1 and meets 0.98 by a few windows on the other seeds: the
edge lies between 17 and 18, and no estimate from an hour of run times places it more
finely. "Where a baseline meets 0.98 the default costs no more" therefore asks an online
policy never to run above the clairvoyant size on average. The default must estimate the
cv of a lognormal with cv 3 from its moments (biased low for minutes: a sample of 3,600
run times gives 2.7 in the median), sizes with the model's 20 % wait headroom and its
noise band, and so runs 18 to 20 workers: 1.02–1.11× over seeds 1–6 with attainment
0.986–1.000. To land below it would have to learn that the Allen–Cunneen tail is
pessimistic for this distribution, from breaches that come in rare clusters at 1–2 %:
telling 1 % from 2 % takes hours. (With the wait headroom removed it lands at
0.99–1.02×, below static on 2 seeds of 6 and at 0.983 attainment on seed 1: a coin flip,
not a design, so the headroom stays.) Kept as a strict xfail.

### Warm spares (information; acceptance keeps cold 1 s start-ups)

One warm spare per host (8 in all, each counted as a worker all hour), default policy,
seed 1:

{warm}

They buy little here: a scale-up uses the host's spare and starts the rest cold, and on
bursty the delay is detection (the head of the line must get old), not start-up.

### The reversal metric

Checked, kept: `reversals` counts consecutive changes of the desired size in opposite
directions, after the first minute, starting from the last size decided before it. A
rise in several steps is no reversal; a rise undone later is one, however late.

Plots of the default policy (load, workers and oracle, observed p99): {plots}
"""


if __name__ == "__main__":
    main()
