"""The values `decide` consumes and returns: Observation, Policy, State, Decision.

Import them from `fleetscale.controller.policy`, which re-exports every name here. All are
frozen slotted dataclasses; seconds at every boundary, units in the names.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from fleetscale.config import parse_duration
from fleetscale.errors import ConfigurationError
from fleetscale.histogram import MAX_VALUE_S


@dataclass(frozen=True, slots=True)
class HostView:
    """One registered host as the leader sees it this tick.

    Attributes:
        host: the host's name (its controller's identity).
        capacity: the most workers the host may run (registered by its controller).
        running: live worker processes on the host that are not stopping
            (`ready + starting`).
        ready: workers that have registered and are taking jobs.
        starting: workers started but not ready yet.
        dry_run: its controller only recommends: it starts no worker.
        failing_starts: its workers have been failing to start (its supervisor backs
            off until one stays up), so quota placed there may not run.
    """

    host: str
    capacity: int
    running: int
    ready: int
    starting: int
    dry_run: bool = False
    failing_starts: bool = False


@dataclass(frozen=True, slots=True)
class Observation:
    """The fleet signals the leader reads each tick; None means unknown.

    Attributes:
        wait_p50_s: median queue wait over the sliding telemetry window, seconds.
        wait_p99_s: 99th-percentile queue wait over that window, seconds (from the
            merged, weighted, 1-in-N sampled histograms of every worker).
        head_of_line_age_s: age of the oldest undelivered entry, seconds (0 when
            nothing is waiting). Read live from the stream.
        backlog: jobs waiting plus jobs delivered but not acknowledged (lag + pending).
        arrival_rate_per_s: jobs added per second, from `entries-added` samples.
        service_time_s: mean run time per job over the window, seconds.
        busy_fraction: share of worker time spent running jobs, 0..1.
        telemetry_age_s: age of the newest telemetry window read, seconds; telemetry
            older than the policy's `max_signal_age_s` (or of unknown age) is ignored.
        hosts: every registered host.
        service_cv: coefficient of variation (std ÷ mean) of run times over the
            window, from the run-time histogram; the capacity model's Allen–Cunneen
            correction for run times less regular than exponential.
        completed_per_s: jobs completed per second over the window: how many run
            times `service_time_s` and `service_cv` rest on.
        unattended: (host, workers) for each host of the previous plan whose
            controller registration has lapsed while workers registered there still
            take jobs (a paused or hung controller): nobody can stop them, so they keep
            their share of the fleet.
    """

    wait_p50_s: float | None = None
    wait_p99_s: float | None = None
    head_of_line_age_s: float | None = None
    backlog: int | None = None
    arrival_rate_per_s: float | None = None
    service_time_s: float | None = None
    busy_fraction: float | None = None
    telemetry_age_s: float | None = None
    hosts: tuple[HostView, ...] = ()
    service_cv: float | None = None
    completed_per_s: float | None = None
    unattended: tuple[tuple[str, int], ...] = ()


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigurationError(message)


_ALIASES = {
    "target_p99": "target_p99_s",
    "stabilisation": "scale_down_stabilisation_s",
    "stabilisation_s": "scale_down_stabilisation_s",
}


DURATION_BOUNDS_S: dict[str, tuple[bool, float]] = {
    "scale_up_period_s": (False, 1800.0),
    "scale_down_period_s": (False, 1800.0),
    "scale_up_stabilisation_s": (True, 3600.0),
    "scale_down_stabilisation_s": (True, 3600.0),
    "startup_grace_s": (True, 3600.0),
    "max_signal_age_s": (False, 3600.0),
    "rate_smoothing_s": (True, 3600.0),
    "change_budget_window_s": (False, 86_400.0),
    "scale_to_zero_after_s": (True, 86_400.0),
}
"""Each duration field of `Policy`: (whether it may be 0, its most seconds). The bounds
catch typos: a stabilisation window keeps a recommendation a tick in the stored plan
state, so one of days (`1e12`) would write megabytes a tick and never scale down; the
Kubernetes HPA caps its windows at an hour and its periods at 30 minutes too."""


@dataclass(frozen=True, slots=True)
class Policy:
    """A fleet's scaling policy; validated, versioned and hot-reloaded by the controller.

    Attributes:
        target_p99_s: the SLO: 99th-percentile queue wait, seconds.
        min: the fewest workers (0 lets an idle fleet scale to zero).
        max: the most workers.
        tolerance: a scale-down by less than this share of the fleet (0.1 = 10 %) is
            not worth a change, and a wait must exceed the target by this share to count
            as a breach. (The capacity model's own hysteresis is its noise band, see
            `fleetscale.controller.recommend`.)
        target_utilisation: the capacity model provisions arrival rate × service time
            ÷ this, and at least the Erlang-C workers for the p99 target.
        scale_up_step_workers: growth allowed per period regardless of size, workers.
        scale_up_step_ratio: growth allowed per period as a multiple of the smallest
            size in the period (10 = ×10).
        scale_up_period_s: the window of the scale-up limit, seconds.
        scale_down_step_ratio: the share of the largest size in the period that may be
            removed per period (0.5 = half).
        scale_down_period_s: the window of the scale-down limit, seconds.
        scale_down_stabilisation_s: scale-down goes no lower than the highest
            recommendation within this window, seconds.
        scale_up_stabilisation_s: a capacity scale-up goes no higher than the lowest
            recommendation within this window, seconds (urgent scale-ups skip it; 0,
            the default, turns it off: the noise band already keeps a noisy rate from
            growing the fleet, and this window only delayed real rises).
        startup_grace_s: after a scale-up, measured waits do not compound further
            scale-ups for this long (new workers are starting and p99 lags), seconds.
        change_budget: the most non-urgent size changes per budget window; urgent
            scale-ups (breach, backlog, from zero) always pass.
        change_budget_window_s: the window of the change budget, seconds.
        max_signal_age_s: telemetry older than this is unknown, seconds.
        rate_smoothing_s: time constant of the fast arrival-rate EWMA (urgent sizing
            and change detection), seconds; the capacity model sizes on slower
            estimates (`fleetscale.controller.estimate`).
        scale_to_zero_after_s: with `min` 0, the fleet lets its last worker go once it
            has been idle this long (no arrivals, nothing waiting, no worker busy),
            seconds; KEDA's `cooldownPeriod` plays this part. Before that, the decaying
            rate estimates size it.
    """

    target_p99_s: float = 0.5
    min: int = 0
    max: int = 64
    tolerance: float = 0.1
    target_utilisation: float = 0.85
    scale_up_step_workers: int = 4
    scale_up_step_ratio: float = 10.0
    scale_up_period_s: float = 10.0
    scale_down_step_ratio: float = 0.5
    scale_down_period_s: float = 2.0
    scale_down_stabilisation_s: float = 15.0
    scale_up_stabilisation_s: float = 0.0
    startup_grace_s: float = 10.0
    change_budget: int = 60
    change_budget_window_s: float = 600.0
    max_signal_age_s: float = 10.0
    rate_smoothing_s: float = 5.0
    scale_to_zero_after_s: float = 300.0

    def validate(self) -> Policy:
        """Check every field; return self so calls chain. Raises ConfigurationError."""
        for name, value in self.to_dict().items():
            _require(
                isinstance(value, int | float) and math.isfinite(value),
                f"{name}={value!r} must be a finite number",
            )
        _require(self.target_p99_s > 0, f"target_p99_s={self.target_p99_s} must be > 0, e.g. 500ms")
        _require(
            self.target_p99_s <= MAX_VALUE_S,
            f"target_p99_s={self.target_p99_s:g} must be at most {MAX_VALUE_S:g} s (10m): "
            "waits are measured up to 10 minutes, so a longer target could never be missed",
        )
        _require(
            0 <= self.min <= self.max,
            f"min={self.min} max={self.max}: need 0 ≤ min ≤ max, e.g. min=0 max=32",
        )
        _require(
            0 <= self.tolerance < 1,
            f"tolerance={self.tolerance} must be a fraction in [0, 1), e.g. 0.1",
        )
        _require(
            0 < self.target_utilisation <= 1,
            f"target_utilisation={self.target_utilisation} must be in (0, 1], e.g. 0.85",
        )
        _require(
            self.scale_up_step_workers >= 1 and 1 <= self.scale_up_step_ratio <= 1000,
            "scale_up_step_workers must be ≥ 1 and scale_up_step_ratio in [1, 1000], e.g. 4 and 10",
        )
        _require(
            0 < self.scale_down_step_ratio <= 1,
            f"scale_down_step_ratio={self.scale_down_step_ratio} must be in (0, 1], e.g. 0.5",
        )
        self._validate_durations()
        _require(self.change_budget >= 1, f"change_budget={self.change_budget} must be ≥ 1")
        return self

    def _validate_durations(self) -> None:
        for name, (may_be_zero, most_s) in DURATION_BOUNDS_S.items():
            value = getattr(self, name)
            least = "≥ 0" if may_be_zero else "> 0"
            _require(
                (value >= 0 if may_be_zero else value > 0) and value <= most_s,
                f"{name}={value:g} must be {least} and at most {most_s:g} s",
            )

    @classmethod
    def from_settings(cls, settings: Mapping[str, str]) -> Policy:
        """Build a validated policy from `KEY=VALUE` strings over the defaults."""
        return cls().with_updates(**settings)

    def with_updates(self, **settings: str) -> Policy:
        """Return a validated copy with fields replaced from strings.

        Keys are field names; `target_p99` is an alias of `target_p99_s`, and any
        `_s` field may be given without its suffix (of two keys for one field, the
        later wins). Durations accept `500ms`, `2s`, `1m`
        or plain seconds. Raises ConfigurationError naming an unknown key or bad value.
        """
        texts = {_field_name(key): text for key, text in settings.items()}  # the last wins
        changes: dict[str, Any] = {name: _parse_value(name, text) for name, text in texts.items()}
        return dataclasses.replace(self, **changes).validate()

    def to_dict(self) -> dict[str, float | int]:
        """Return every field by name (the form stored in Redis and shown by `policy show`)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


_FIELD_TYPES = {f.name: f.type for f in dataclasses.fields(Policy)}


def is_policy_key(key: str) -> bool:
    """True if `key` names a policy field (by name, alias or without its `_s`)."""
    return _resolve(key) in _FIELD_TYPES


def _resolve(key: str) -> str:
    name = _ALIASES.get(key.strip(), key.strip())
    return f"{name}_s" if name not in _FIELD_TYPES and f"{name}_s" in _FIELD_TYPES else name


def _field_name(key: str) -> str:
    name = _resolve(key)
    if name not in _FIELD_TYPES:
        known = ", ".join(sorted(_FIELD_TYPES))
        raise ConfigurationError(f"unknown policy key {key!r}: use one of {known}")
    return name


def _parse_value(name: str, text: str | float | int) -> float | int:
    if name.endswith("_s"):
        try:
            return parse_duration(text)
        except ConfigurationError as exc:
            raise ConfigurationError(f"bad policy value {name}: {exc}") from None
    try:
        if _FIELD_TYPES[name] in ("int", int):
            return int(str(text))
        return float(str(text))
    except ValueError:
        kind = "an integer" if _FIELD_TYPES[name] in ("int", int) else "a number"
        raise ConfigurationError(f"bad policy value {name}={text!r}: use {kind}") from None


class Reason(Enum):
    """Why the decision came out as it did (the last step that shaped it)."""

    SCALE_FROM_ZERO = "scale_from_zero"
    SLO_BREACH = "slo_breach"
    BACKLOG = "backlog"
    CAPACITY_UP = "capacity_up"
    CAPACITY_DOWN = "capacity_down"
    AT_TARGET = "at_target"
    WITHIN_TOLERANCE = "within_tolerance"
    WAIT_GUARD = "wait_guard"
    STABILISING = "stabilising"
    HOLD_UNKNOWN = "hold_unknown"
    RATE_LIMITED = "rate_limited"
    CHANGE_BUDGET = "change_budget"
    CLAMPED_MIN = "clamped_min"
    CLAMPED_MAX = "clamped_max"
    HOST_CAPACITY = "host_capacity"


@dataclass(frozen=True, slots=True)
class State:
    """What `decide` remembers between calls; pass the previous decision's `state` back.

    The caller treats it as opaque. Fields after `correction` were added in a later
    version, all with defaults, so a `State()` or an older state still works.

    Attributes:
        desired: the last decided fleet size (None before the first decision).
        quotas: the last per-host quotas, as sorted (host, workers) pairs.
        rate_per_s: fast arrival-rate estimate, jobs per second.
        service_s: fast mean run-time estimate, seconds.
        smoothed_at_s: when the estimates were last updated (caller's clock).
        recommendations: (time, workers) sizing recommendations within the
            stabilisation windows.
        changes: (time, new size) of each size change within the longest limit window.
        last_scale_up_s: when the fleet last grew.
        correction: learned multiplier on the load the queueing model sizes for
            (see `fleetscale.controller.learn`).
        rate_slow_per_s: slow arrival-rate estimate the capacity model sizes on.
        rate_scatter: smoothed squared gap between the fast and slow rates, (jobs/s)².
        rate_jump_s: when the slow rate last jumped to the fast one.
        service_slow_s: slow mean run time the capacity model sizes on, seconds.
        service_sq_s2: slow mean square of run times, seconds² (gives their cv).
        jobs_seen: completed jobs behind the run-time estimates so far.
        estimates_since_s: when the estimates got their first sample.
        breach_share: smoothed share of model-sized ticks whose p99 wait breached
            the target (starts between the learning thresholds: no evidence yet).
        urgent: (time, fleet size before) of the last urgent scale-up episode.
        idle_since_s: since when the fleet has been idle without a break (None: busy).
    """

    desired: int | None = None
    quotas: tuple[tuple[str, int], ...] = ()
    rate_per_s: float | None = None
    service_s: float | None = None
    smoothed_at_s: float | None = None
    recommendations: tuple[tuple[float, int], ...] = ()
    changes: tuple[tuple[float, int], ...] = ()
    last_scale_up_s: float | None = None
    correction: float = 1.0
    rate_slow_per_s: float | None = None
    rate_scatter: float | None = None
    rate_jump_s: float | None = None
    service_slow_s: float | None = None
    service_sq_s2: float | None = None
    jobs_seen: float = 0.0
    estimates_since_s: float | None = None
    breach_share: float = 0.01
    urgent: tuple[float, int] | None = None
    idle_since_s: float | None = None


@dataclass(frozen=True, slots=True)
class DecisionInputs:
    """The numbers a decision was made from, for `explain` and the simulator.

    Attributes:
        current: the fleet size the decision started from, workers.
        rate_per_s: the fast arrival-rate estimate, jobs per second.
        service_s: the fast run-time estimate, seconds.
        capacity_workers: the capacity model's size for the rate to cover.
        surge_workers: the capacity model's size at the higher of raw and smoothed rate.
        drain_workers: extra workers to drain the queued backlog within the target.
        wait_ratio: the worst of p99 wait and head-of-line age, over the target.
        correction: the learned model correction in effect.
        observation: the observation after staleness was applied.
        rate_slow_per_s: the slow arrival-rate estimate the model sizes on.
        rate_spread_per_s: the rate's own spread beyond Poisson noise, jobs per second.
        service_cv: the run-time cv the model uses (None: unknown, taken as 1).
    """

    current: int
    rate_per_s: float | None
    service_s: float | None
    capacity_workers: int | None
    surge_workers: int | None
    drain_workers: int | None
    wait_ratio: float | None
    correction: float
    observation: Observation
    rate_slow_per_s: float | None = None
    rate_spread_per_s: float | None = None
    service_cv: float | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one tick.

    Attributes:
        desired: the fleet size to converge to, workers.
        quotas: host → workers; sums to `desired`, never above a host's capacity.
        reason: the step that shaped the outcome.
        inputs: what the decision was made from.
        state: pass this to the next `decide` call.
    """

    desired: int
    quotas: Mapping[str, int]
    reason: Reason
    inputs: DecisionInputs
    state: State = field(default_factory=State)
