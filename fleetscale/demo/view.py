"""The demo's live view and its summary, computed from what was recorded (pure)."""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fleetscale.words import counted


@dataclass(frozen=True, slots=True)
class Frame:
    """One second of the demo, as the live view shows it."""

    t_s: float
    rate_per_s: float
    desired: int | None
    running: int
    starting: int
    warm: int
    backlog: int | None
    wait_p50_s: float | None
    wait_p99_s: float | None
    reason: str | None


def _ms(value: float | None) -> str:
    return "   -  " if value is None else f"{value * 1000:5.0f}ms"


def frame_line(frame: Frame, target_s: float) -> str:
    """One line: time, load, workers (bar), backlog, waits against the target, reason."""
    bar = "█" * frame.running + "░" * frame.starting
    ok = "" if frame.wait_p99_s is None else (" ✓" if frame.wait_p99_s <= target_s else " ✗")
    desired = "-" if frame.desired is None else str(frame.desired)
    backlog = "-" if frame.backlog is None else str(frame.backlog)
    return (
        f"{frame.t_s:5.0f}s  load {frame.rate_per_s:5.0f}/s  workers {frame.running:2d}"
        f" (+{frame.starting} starting, {frame.warm} warm) desired {desired:>2}  {bar:<24}"
        f" backlog {backlog:>5}  wait p50 {_ms(frame.wait_p50_s)} p99 {_ms(frame.wait_p99_s)}"
        f"{ok}  {frame.reason or ''}"
    )


@dataclass(frozen=True, slots=True)
class Summary:
    """How the demo went.

    Attributes:
        jobs: jobs submitted.
        completed: distinct jobs that ran.
        lost: submitted jobs that never ran and are no longer queued.
        duplicated: jobs that ran more than once.
        unfinished: submitted jobs that never ran and were still queued when the demo
            stopped (its drain wait ended first).
        wait_p50_s / wait_p99_s: queue wait from the ledger (start − submit), seconds.
        worker_seconds: the fleet's cost: running and warm workers, summed each second.
        static_workers: the smallest fixed fleet that would have met the target on the
            same load (simulated).
        static_worker_seconds: its cost over the same time.
        target_p99_s: the target.
    """

    jobs: int
    completed: int
    lost: int
    duplicated: int
    unfinished: int
    wait_p50_s: float | None
    wait_p99_s: float | None
    worker_seconds: float
    static_workers: int | None
    static_worker_seconds: float | None
    target_p99_s: float

    def lines(self) -> list[str]:
        """The summary as the demo prints it."""
        p99_ok = self.wait_p99_s is not None and self.wait_p99_s <= self.target_p99_s
        unfinished = (
            f", unfinished {self.unfinished} (still queued at the end)" if self.unfinished else ""
        )
        lines = [
            f"jobs {self.jobs}, completed {self.completed}, lost {self.lost}, "
            f"duplicated {self.duplicated}{unfinished}",
            f"wait p50 {_ms(self.wait_p50_s).strip()}, p99 {_ms(self.wait_p99_s).strip()} "
            f"(target {self.target_p99_s * 1000:.0f}ms: {'met' if p99_ok else 'missed'})",
            f"cost {self.worker_seconds:.0f} worker-seconds",
        ]
        if self.static_workers is not None and self.static_worker_seconds:
            share = self.worker_seconds / self.static_worker_seconds
            lines.append(
                f"a fixed fleet meeting the target needs {counted(self.static_workers, 'worker')}: "
                f"{self.static_worker_seconds:.0f} worker-seconds (fleetscale used {share:.0%})"
            )
        return lines


def ledger_waits(
    submitted: Mapping[str, float], started: Mapping[str, Sequence[float]]
) -> list[float]:
    """Each job's wait: its first start minus its submit, seconds."""
    return sorted(min(started[k]) - t for k, t in submitted.items() if k in started)


def quantile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank quantile of sorted values, None when empty."""
    if not values:
        return None
    return values[max(0, min(len(values) - 1, int(q * len(values) + 0.999999) - 1))]


def summarise(
    submitted: Mapping[str, float],
    started: Mapping[str, Sequence[float]],
    queued: Collection[str],
    frames: Sequence[Frame],
    *,
    target_p99_s: float,
    static: tuple[int, float] | None,
) -> Summary:
    """The demo's summary from its ledger, the jobs still `queued` and its frames."""
    waits = ledger_waits(submitted, started)
    never_ran = [k for k in submitted if k not in started]
    unfinished = sum(1 for k in never_ran if k in queued)
    return Summary(
        jobs=len(submitted),
        completed=len(submitted) - len(never_ran),
        lost=len(never_ran) - unfinished,
        unfinished=unfinished,
        duplicated=sum(1 for v in started.values() if len(v) > 1),
        wait_p50_s=quantile(waits, 0.5),
        wait_p99_s=quantile(waits, 0.99),
        worker_seconds=float(sum(f.running + f.starting + f.warm for f in frames)),
        static_workers=static[0] if static else None,
        static_worker_seconds=static[1] if static else None,
        target_p99_s=target_p99_s,
    )


def summary_dict(summary: Summary, frames: Sequence[Frame]) -> dict[str, Any]:
    """The summary and the timeline as one JSON-ready object (`demo --json`)."""
    return {
        "jobs": summary.jobs,
        "completed": summary.completed,
        "lost": summary.lost,
        "duplicated": summary.duplicated,
        "unfinished": summary.unfinished,
        "wait_p50_s": summary.wait_p50_s,
        "wait_p99_s": summary.wait_p99_s,
        "worker_seconds": summary.worker_seconds,
        "static_workers": summary.static_workers,
        "static_worker_seconds": summary.static_worker_seconds,
        "target_p99_s": summary.target_p99_s,
        "timeline": [dataclasses.asdict(f) for f in frames],
        "median_workers": statistics.median([f.running for f in frames]) if frames else 0,
    }
