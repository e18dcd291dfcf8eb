"""The fleet view: the load signals of one fleet, read in two round trips.

`read_fleet_view` reads the stream's live figures at one Redis instant (backlog,
head-of-line age, entries-added for the arrival rate, live workers) with one script,
then the telemetry windows of the last `window_s` seconds with one pipeline. The cost is
O(buckets × windows), whatever the number of workers. `summarize` is the pure part.

A signal that cannot be known is None: no wait samples in the window, no arrival
history yet, no telemetry at all. Callers must treat None as unknown, not as zero.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from fleetscale.histogram import Histogram
from fleetscale.keys import ARRIVAL_HISTORY_S, GROUP, TELEMETRY_WINDOW_S, FleetKeys
from fleetscale.store import Client, redis_errors, script
from fleetscale.telemetry import WindowDelta

FLUSH_LAG_S = 2.0
"""Windows younger than this may still receive flushes; rates skip them."""


@dataclass(frozen=True, slots=True)
class StreamSnapshot:
    """The stream's figures at one Redis instant (from `observe.lua`)."""

    now_s: float
    backlog: int | None
    pending: int
    head_of_line_age_s: float
    entries_added: int
    arrival_rate_per_s: float | None
    workers_live: int


@dataclass(frozen=True, slots=True)
class TelemetrySummary:
    """Merged telemetry of the recent windows."""

    wait: Histogram
    wait_samples: int
    service_time_s: float | None
    service_cv: float | None
    busy_fraction: float | None
    completed_per_s: float | None
    failed_per_s: float | None
    telemetry_age_s: float | None


@dataclass(frozen=True, slots=True)
class FleetView:
    """What the fleet looks like now. Times are seconds; None means unknown.

    Attributes:
        fleet: the fleet name.
        observed_at_s: Redis time of the reading, seconds since the epoch.
        window_s: the sliding window of the wait quantiles and rates, seconds.
        backlog: jobs queued or running (group lag + pending).
        pending: jobs delivered to a worker and not yet acknowledged.
        head_of_line_age_s: age of the oldest job not yet delivered (0 when none).
        arrival_rate_per_s: jobs added per second, from `entries-added` samples.
        wait_p50_s / wait_p99_s: queue-wait quantiles of jobs started in the window.
        wait_samples: weighted number of waits behind those quantiles.
        service_time_s: mean run time per job finished (completed or failed).
        service_cv: coefficient of variation of run times (from the sampled run-time
            histogram).
        busy_fraction: share of worker up-time spent running jobs (0..1).
        completed_per_s / failed_per_s: job outcomes per second.
        workers_live: workers whose heartbeat is current.
        telemetry_age_s: age of the newest telemetry window with data.
    """

    fleet: str
    observed_at_s: float
    window_s: float
    backlog: int | None
    pending: int
    head_of_line_age_s: float
    arrival_rate_per_s: float | None
    wait_p50_s: float | None
    wait_p99_s: float | None
    wait_samples: int
    service_time_s: float | None
    service_cv: float | None
    busy_fraction: float | None
    completed_per_s: float | None
    failed_per_s: float | None
    workers_live: int
    telemetry_age_s: float | None

    def to_dict(self) -> dict[str, Any]:
        """The view as JSON-ready fields (the names `status --json` uses)."""
        return asdict(self)


def _arrival_sample(member: bytes) -> tuple[int, int] | None:
    """`(Redis ms, entries-added)` of an `arrivals` member `<ms>:<count>[:…]`; None
    for one this version cannot read (readers of every version add samples to the
    set, so a rolling upgrade may hold another version's)."""
    ms, _, rest = member.partition(b":")
    count = rest.partition(b":")[0]
    if not (ms.isdigit() and count.isdigit()):
        return None
    return int(ms), int(count)


def _parse_snapshot(reply: list[Any]) -> StreamSnapshot:
    now_ms, exists, added, lag, pending, head, live, oldest = reply
    now_ms, added = int(now_ms), int(added)
    rate = None
    sample = _arrival_sample(oldest[0]) if oldest else None
    if sample is not None:
        sample_ms, sample_count = sample
        if now_ms - sample_ms >= 1000:
            rate = max(0, added - sample_count) / ((now_ms - sample_ms) / 1000)
    head_ms = int(head.split(b"-")[0]) if head else now_ms
    return StreamSnapshot(
        now_s=now_ms / 1000,
        backlog=None if int(lag) < 0 else int(lag) + int(pending),
        pending=int(pending),
        head_of_line_age_s=max(0.0, (now_ms - head_ms) / 1000) if exists else 0.0,
        entries_added=added,
        arrival_rate_per_s=rate,
        workers_live=int(live),
    )


def summarize(windows: dict[int, WindowDelta], now_s: float, window_s: float) -> TelemetrySummary:
    """Merge telemetry windows into the view's signals (pure).

    Wait quantiles use every window of the last `window_s` seconds, the current one
    included (a quantile does not care that a window is still filling). Rates and
    fractions use the `window_s` seconds of whole windows that ended at least
    `FLUSH_LAG_S` ago, which are complete. The service time is busy time per job
    finished, failed ones included: they took a worker's time too.
    """
    recent = [d for w, d in windows.items() if w > now_s - window_s - TELEMETRY_WINDOW_S]
    wait = Histogram().merged(*(d.wait for d in recent))
    settled_end = math.floor((now_s - FLUSH_LAG_S) / TELEMETRY_WINDOW_S) * TELEMETRY_WINDOW_S
    settled_start = math.ceil((settled_end - window_s) / TELEMETRY_WINDOW_S) * TELEMETRY_WINDOW_S
    settled = [d for w, d in windows.items() if settled_start <= w < settled_end]
    run = Histogram().merged(*(d.run for d in settled))
    busy_us = sum(d.busy_us for d in settled)
    up_us = sum(d.up_us for d in settled)
    done = sum(d.done for d in settled)
    failed = sum(d.failed for d in settled)
    span_s = settled_end - settled_start if settled else 0.0
    with_data = [w for w, d in windows.items() if d.up_us or d.done or d.samples]
    return TelemetrySummary(
        wait=wait,
        wait_samples=wait.total(),
        service_time_s=busy_us / 1e6 / (done + failed) if done + failed else None,
        service_cv=run.cv(),
        busy_fraction=min(1.0, busy_us / up_us) if up_us else None,
        completed_per_s=done / span_s if span_s else None,
        failed_per_s=failed / span_s if span_s else None,
        telemetry_age_s=max(0.0, now_s - (max(with_data) + TELEMETRY_WINDOW_S))
        if with_data
        else None,
    )


def read_fleet_view(
    client: Client,
    keys: FleetKeys,
    url: str,
    window_s: float = 10.0,
    arrival_window_s: float | None = None,
) -> FleetView:
    """Read the fleet's signals now (two round trips). Raises FleetscaleError subclasses.

    Args:
        window_s: the window of wait quantiles and rates, seconds.
        arrival_window_s: the span of `entries-added` samples behind the arrival rate
            (default `window_s`); shorter follows a step in load sooner, seconds.
    """
    with redis_errors(url):
        reply = script(client, "observe")(
            keys=[keys.jobs, keys.arrivals, keys.workers],
            args=[GROUP, ARRIVAL_HISTORY_S * 1000, int((arrival_window_s or window_s) * 1000)],
        )
        snap = _parse_snapshot(reply)
        first = int((snap.now_s - window_s - FLUSH_LAG_S) // TELEMETRY_WINDOW_S) - 1
        last = int(snap.now_s // TELEMETRY_WINDOW_S)
        starts = [i * TELEMETRY_WINDOW_S for i in range(first, last + 1)]
        pipe = client.pipeline(transaction=False)
        for start in starts:
            pipe.hgetall(keys.telemetry(start))
        raw = pipe.execute()
    windows = {s: WindowDelta.from_fields(r) for s, r in zip(starts, raw, strict=True) if r}
    tm = summarize(windows, snap.now_s, window_s)
    return FleetView(
        fleet=keys.fleet,
        observed_at_s=snap.now_s,
        window_s=window_s,
        backlog=snap.backlog,
        pending=snap.pending,
        head_of_line_age_s=snap.head_of_line_age_s,
        arrival_rate_per_s=snap.arrival_rate_per_s,
        wait_p50_s=tm.wait.quantile(0.5),
        wait_p99_s=tm.wait.quantile(0.99),
        wait_samples=tm.wait_samples,
        service_time_s=tm.service_time_s,
        service_cv=tm.service_cv,
        busy_fraction=tm.busy_fraction,
        completed_per_s=tm.completed_per_s,
        failed_per_s=tm.failed_per_s,
        workers_live=snap.workers_live,
        telemetry_age_s=tm.telemetry_age_s,
    )
