"""One call that runs a named policy on a trace and judges it (CLI, bench and tests)."""

from __future__ import annotations

from dataclasses import dataclass

from fleetscale.controller.policy import Policy
from fleetscale.errors import ConfigurationError
from fleetscale.sim.engine import DEFAULT_CAPACITY, Run, SimConfig, simulate
from fleetscale.sim.report import Summary, check_scorable, summarise
from fleetscale.sim.scaler import make_scaler, oracle_workers
from fleetscale.sim.service import ServiceTime, service_time
from fleetscale.sim.trace import Trace

DEFAULT_SERVICE_S = 0.2
"""Mean run time when neither the caller nor the trace sets one, seconds."""

DEFAULT_SERVICE_CV = 1.0
"""Run-time cv when neither the caller nor the trace sets one (lognormal)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """A judged run: the summary, the raw run, and the oracle's size per second."""

    summary: Summary
    run: Run
    oracle_per_second: tuple[int, ...]
    reasons: dict[str, int]


def trace_service(
    trace: Trace, mean_s: float | None = None, cv: float | None = None
) -> ServiceTime:
    """The run-time distribution: the caller's values, else the trace's, else the defaults.

    Raises:
        ConfigurationError: for a mean or cv `check_service` refuses (a 0 is refused,
            never replaced by a default).
    """
    mean = next(m for m in (mean_s, trace.service_s, DEFAULT_SERVICE_S) if m is not None)
    spread = next(c for c in (cv, trace.service_cv, DEFAULT_SERVICE_CV) if c is not None)
    return service_time(mean, spread)


def sim_policy(**settings: str) -> Policy:
    """The default policy for simulations: `Policy()` with `max` = the hosts' capacity.

    Raises:
        ConfigurationError: for a bad setting, or a `min` or `max` above the simulated
            hosts' capacity (512 workers): the pool could never run them, and they were
            cut to it silently.
    """
    capacity = DEFAULT_CAPACITY
    for key in ("min", "max"):
        try:
            workers = int(settings.get(key, "0"))
        except ValueError:
            continue  # with_updates names the bad value
        if workers > capacity:
            raise ConfigurationError(
                f"{key} {workers} is above the simulated hosts' capacity, {capacity} "
                f"workers: use at most {capacity}"
            )
    return Policy(max=capacity).with_updates(**settings)


def run_scenario(
    trace: Trace,
    policy_name: str,
    *,
    policy: Policy | None = None,
    service: ServiceTime | None = None,
    config: SimConfig | None = None,
) -> Outcome:
    """Simulate `policy_name` (see `fleetscale.sim.scaler.POLICIES`) on `trace`.

    Args:
        trace: the load.
        policy_name: which scaler to run.
        policy: target, min and max for every scaler, and the default policy itself
            (default `sim_policy()`).
        service: run times (default `trace_service(trace)`).
        config: engine settings (default `SimConfig()` with the policy's target).

    Raises:
        ConfigurationError: for a trace no longer than the warm-up (`check_scorable`),
            before anything is simulated.
    """
    check_scorable(trace)
    policy = policy or sim_policy()
    service = service or trace_service(trace)
    config = config or SimConfig(target_p99_s=policy.target_p99_s)
    scaler = make_scaler(
        policy_name,
        trace,
        service,
        policy,
        period_s=config.period_s,
        lead_s=config.startup.cold_s,
    )
    run = simulate(trace, scaler, service, config)
    oracle = tuple(
        oracle_workers(row.rate_per_s, service, config.target_p99_s) for row in run.timeline
    )
    reasons = dict(getattr(scaler, "reasons", {}))
    return Outcome(summarise(run, service, config.target_p99_s), run, oracle, reasons)
