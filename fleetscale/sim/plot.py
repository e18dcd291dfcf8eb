"""Draw a run: load, workers (ready and starting), observed p99 against the target, oracle.

Needs matplotlib (the optional `plot` extra); it is imported only when a plot is drawn.
"""

from __future__ import annotations

from pathlib import Path

from fleetscale.plotting import pyplot
from fleetscale.sim.scenario import Outcome


def plot_outcome(outcome: Outcome, path: str | Path, target_p99_s: float) -> None:
    """Write a three-panel PNG of the run to `path`.

    Raises:
        ConfigurationError: when matplotlib is not installed.
    """
    plt = pyplot()
    rows = outcome.run.timeline
    t = [row.t_s for row in rows]
    figure, (load, workers, waits) = plt.subplots(3, 1, sharex=True, figsize=(10, 7))
    summary = outcome.summary
    figure.suptitle(
        f"{summary.trace} · {summary.policy}: attainment {summary.slo_attainment:.3f}, "
        f"{summary.worker_seconds / max(summary.oracle_worker_seconds, 1e-9):.2f}× oracle cost"
    )
    load.plot(t, [row.arrivals for row in rows], lw=0.6, color="grey", label="arrivals/s")
    load.plot(t, [row.rate_per_s for row in rows], lw=1.2, color="black", label="trace rate")
    load.set_ylabel("jobs/s")
    load.legend(loc="upper right", fontsize=8)
    workers.plot(t, [row.ready for row in rows], lw=1.0, label="ready")
    workers.plot(t, [row.ready + row.starting for row in rows], lw=0.8, ls=":", label="+starting")
    workers.plot(t, list(outcome.oracle_per_second), lw=1.0, color="green", label="oracle")
    workers.set_ylabel("workers")
    workers.legend(loc="upper right", fontsize=8)
    observed = [row.observed_p99_s if row.observed_p99_s else float("nan") for row in rows]
    waits.semilogy(t, observed, lw=0.8, label="p99 wait seen by the policy")
    waits.axhline(target_p99_s, color="red", lw=1.0, ls="--", label="target")
    waits.set_ylabel("seconds")
    waits.set_xlabel("time (s)")
    waits.legend(loc="upper right", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
