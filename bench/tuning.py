"""The tuning guide's plots: one policy knob varied at a time, on a shipped trace.

Run from the repository root (needs matplotlib, in the dev group):

    python -m bench.tuning              # plots into docs/tuning/, table on stdout
    python -m bench.tuning --only tolerance

Each experiment runs the default policy three times on one shipped trace in the
simulator, changing one knob and nothing else, and draws the workers and the p99 wait
the policy saw, one line per value. The table on stdout (pasted into
controller/README.md) gives the judged outcome of each run.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fleetscale.sim.engine import SimConfig
from fleetscale.sim.pool import StartUp
from fleetscale.sim.scenario import Outcome, run_scenario, sim_policy
from fleetscale.sim.trace import Trace, load_trace

OUT = Path(__file__).resolve().parent.parent / "docs" / "tuning"
COLOURS = ("tab:blue", "tab:orange", "tab:green")


def idle_gaps_trace() -> Trace:
    """One-minute bursts at 20 jobs/s between idle gaps of 2, 4, 8 and 16 minutes."""
    steps, t_s = [], 0.0
    for gap_s in (120.0, 240.0, 480.0, 960.0):
        steps += [(t_s, 20.0), (t_s + 60.0, 0.0)]
        t_s += 60.0 + gap_s
    steps.append((t_s, 20.0))
    return Trace("idle_gaps", tuple(steps), t_s + 300.0)


@dataclass(frozen=True)
class Experiment:
    """One knob, its values, the trace that shows it (a shipped name or a trace), and
    the window to draw."""

    knob: str
    values: tuple[str, ...]
    trace: str | Trace
    window_s: tuple[float, float]
    note: str
    startup_s: float = 1.0
    fixed: dict[str, str] = field(default_factory=dict)


EXPERIMENTS = (
    Experiment(
        "target_p99",
        ("250ms", "500ms", "2s"),
        "step",
        (240, 1000),
        "a looser target runs fewer workers",
    ),
    Experiment(
        "target_utilisation",
        ("0.6", "0.85", "1.0"),
        "step",
        (240, 1000),
        "headroom above the load the capacity model provisions",
    ),
    Experiment(
        "tolerance",
        ("0", "0.1", "0.3"),
        "diurnal",
        (0, 3600),
        "the band inside which the model does not move the fleet",
    ),
    Experiment(
        "rate_smoothing",
        ("1s", "5s", "30s"),
        "step",
        (240, 480),
        "how fast the sizing rate follows the measured one",
    ),
    Experiment(
        "scale_up_step_ratio",
        ("1.2", "2", "10"),
        "spike",
        (560, 700),
        "how much the fleet may grow per scale-up period",
        fixed={"scale_up_step_workers": "1"},
    ),
    Experiment(
        "scale_up_stabilisation",
        ("0s", "10s", "60s"),
        "ramp",
        (0, 3600),
        "a capacity scale-up waits until the recommendations agree",
    ),
    Experiment(
        "startup_grace",
        ("0s", "10s", "30s"),
        "spike",
        (560, 720),
        "how long measured waits do not compound a scale-up (10 s cold start)",
        startup_s=10.0,
    ),
    Experiment(
        "scale_down_stabilisation",
        ("0s", "15s", "120s"),
        "bursty",
        (0, 600),
        "the highest recommendation of this window is the floor of a scale-down",
    ),
    Experiment(
        "scale_down_step_ratio",
        ("0.1", "0.5", "1.0"),
        "step",
        (860, 1000),
        "the share of the fleet one scale-down period may remove",
    ),
    Experiment(
        "scale_to_zero_after",
        ("1m", "5m", "15m"),
        idle_gaps_trace(),
        (0, 2460),
        "with min 0, how long an idle fleet keeps its last worker",
    ),
    Experiment(
        "change_budget",
        ("5", "20", "60"),
        "bursty",
        (0, 600),
        "non-urgent size changes allowed per 10 minutes",
    ),
)


def run(experiment: Experiment, value: str) -> Outcome:
    """The default policy on the experiment's trace with `knob=value`."""
    settings = {**experiment.fixed, experiment.knob: value}
    policy = sim_policy(**settings)
    config = SimConfig(
        target_p99_s=policy.target_p99_s, startup=StartUp(cold_s=experiment.startup_s)
    )
    return run_scenario(trace_of(experiment), "default", policy=policy, config=config)


def trace_of(experiment: Experiment) -> Trace:
    """The experiment's trace, loaded when it is a shipped trace's name."""
    trace = experiment.trace
    return trace if isinstance(trace, Trace) else load_trace(trace)


def draw(experiment: Experiment, outcomes: list[tuple[str, Outcome]], path: Path) -> None:
    """Load, workers and observed p99 over the experiment's window, one colour per value."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (load, workers, waits) = plt.subplots(
        3, 1, sharex=True, figsize=(9, 7.5), gridspec_kw={"height_ratios": [1, 2, 2]}
    )
    start, end = experiment.window_s
    figure.suptitle(
        f"{experiment.knob}: {experiment.note}\n({trace_of(experiment).name} trace)", fontsize=11
    )
    first = outcomes[0][1].run.timeline
    shown = [row for row in first if start <= row.t_s <= end]
    load.plot([r.t_s for r in shown], [r.rate_per_s for r in shown], color="black", lw=1.2)
    load.set_ylabel("jobs/s")
    for (value, outcome), colour in zip(outcomes, COLOURS, strict=False):
        rows = [row for row in outcome.run.timeline if start <= row.t_s <= end]
        t = [row.t_s for row in rows]
        summary = outcome.summary
        label = (
            f"{experiment.knob}={value}: attainment {summary.slo_attainment:.2f}, "
            f"cost {summary.worker_seconds / max(summary.oracle_worker_seconds, 1e-9):.2f}× "
            f"oracle, {summary.scale_actions} changes"
        )
        workers.plot(t, [row.ready + row.starting for row in rows], color=colour, lw=1.0,
                     label=label)  # fmt: skip
        observed = [row.observed_p99_s or float("nan") for row in rows]
        waits.semilogy(t, observed, color=colour, lw=0.8)
        waits.axhline(_target(experiment, value), color=colour, lw=0.8, ls="--")
    workers.set_ylabel("workers\n(ready + starting)")
    waits.set_ylabel("p99 wait seen (s)")
    waits.set_xlabel("time (s); dashed: the target")
    figure.legend(loc="lower center", fontsize=8, ncol=1, frameon=False)
    figure.tight_layout(rect=(0, 0.09, 1, 1))
    figure.savefig(path, dpi=80)
    plt.close(figure)


def _target(experiment: Experiment, value: str) -> float:
    settings: dict[str, Any] = {**experiment.fixed, experiment.knob: value}
    return sim_policy(**settings).target_p99_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--only", help="run only the experiment of this knob")
    options = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    print("| knob | value | trace | SLO attainment | worker-hours | cost (× oracle) | changes | "
          "reversals | p99 wait (s) |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for experiment in EXPERIMENTS:
        if options.only and experiment.knob != options.only:
            continue
        outcomes = [(value, run(experiment, value)) for value in experiment.values]
        draw(experiment, outcomes, OUT / f"{experiment.knob}.png")
        for value, outcome in outcomes:
            s = outcome.summary
            cost = s.worker_seconds / max(s.oracle_worker_seconds, 1e-9)
            print(f"| {experiment.knob} | {value} | {s.trace} | {s.slo_attainment:.3f} | "
                  f"{s.worker_seconds / 3600:.1f} | {cost:.2f} | {s.scale_actions} | "
                  f"{s.reversals} | {s.wait_p99_s:.3f} |")  # fmt: skip


if __name__ == "__main__":
    main()
