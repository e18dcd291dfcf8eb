"""A picture of a demo run (needs matplotlib: `pip install 'fleetscale[plot]'`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fleetscale.demo.view import Frame
from fleetscale.plotting import pyplot


def save_plot(path: Path, frames: Sequence[Frame], target_p99_s: float) -> None:
    """Load, workers and p99 wait against the target, one point a second."""
    plt = pyplot()
    t = [f.t_s for f in frames]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    top.plot(t, [f.running for f in frames], label="workers running")
    top.plot(t, [f.running + f.starting for f in frames], label="+ starting", linestyle=":")
    top.plot(t, [f.desired or 0 for f in frames], label="desired", linestyle="--")
    load = top.twinx()
    load.fill_between(t, [f.rate_per_s for f in frames], color="grey", alpha=0.2, label="load")
    load.set_ylabel("jobs/s")
    top.set_ylabel("workers")
    top.legend(loc="upper left")
    bottom.plot(t, [f.wait_p99_s for f in frames], label="p99 wait (last 5 s)")
    bottom.plot(t, [f.wait_p50_s for f in frames], label="p50 wait", alpha=0.6)
    bottom.axhline(target_p99_s, color="red", linestyle=":", label="target")
    bottom.set_ylabel("seconds")
    bottom.set_xlabel("time (s)")
    bottom.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
