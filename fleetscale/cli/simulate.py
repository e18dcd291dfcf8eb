"""`fleetscale simulate`: replay a load trace against a scaling policy in the simulator."""

from __future__ import annotations

import json
from pathlib import Path

import click

from fleetscale.cli.options import (
    Duration,
    check_min_max,
    duration_option,
    fail,
    plot_option,
    target_p99_option,
)
from fleetscale.cli.root import main
from fleetscale.errors import ConfigurationError
from fleetscale.exitcode import ExitCode
from fleetscale.sim.engine import DEFAULT_CAPACITY, SimConfig, check_period
from fleetscale.sim.pool import StartUp
from fleetscale.sim.scaler import POLICIES
from fleetscale.sim.scenario import run_scenario, sim_policy, trace_service
from fleetscale.sim.service import check_service
from fleetscale.sim.trace import SHIPPED, load_trace


def _service_cv(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    """Click callback: the simulator's cv check (`check_service`), when the line is read."""
    try:
        check_service(None, value)
    except ConfigurationError as error:
        raise click.BadParameter(str(error), ctx=ctx, param=param) from None
    return value


def _within_capacity(ctx: click.Context, param: click.Parameter, value: int | None) -> int | None:
    """Click callback: `--min`/`--max` up to the simulated hosts' capacity (the pool
    could never run more)."""
    if value is not None and value > DEFAULT_CAPACITY:
        raise click.BadParameter(
            f"{value} is above the simulated hosts' capacity, {DEFAULT_CAPACITY} workers: "
            f"use at most {DEFAULT_CAPACITY}",
            ctx,
            param,
        )
    return value


@main.command("simulate")
@click.option(
    "--trace",
    "trace_name",
    required=True,
    metavar="NAME_OR_CSV",
    help=f"{', '.join(SHIPPED)}, or a CSV path.",
)
@click.option(
    "--policy",
    "policy_name",
    default="default",
    show_default=True,
    type=click.Choice(POLICIES),
    help="Scaler to run.",
)
@plot_option("Write a PNG here, a name ending in .png (needs matplotlib).", "plot_path")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
@target_p99_option("Queue-wait target (p99) the run is sized and judged against")
@duration_option(
    "--service-time",
    default=None,
    least_s=0.0001,
    most_s=3600,
    help_text="Mean run time (by default the trace's, else 200ms)",
)
@click.option(
    "--service-cv",
    type=float,
    default=None,
    callback=_service_cv,
    help="Run-time cv, 0 to 1000; lognormal when > 0, constant at 0 [trace's, else 1].",
)
@duration_option(
    "--startup", default="1s", least_s=0, most_s=3600, help_text="Cold start-up of a worker"
)
@click.option(
    "--period",
    default="1s",
    show_default=True,
    type=Duration(),
    metavar="DURATION",
    help="Decision period of the default policy; the timeline keeps a row a second.",
)
@click.option(
    "--min",
    "min_workers",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    callback=_within_capacity,
    help=f"Fewest workers, up to the simulated hosts' capacity, {DEFAULT_CAPACITY}.",
)
@click.option(
    "--max",
    "max_workers",
    type=click.IntRange(min=0),
    default=None,
    callback=_within_capacity,
    help=f"Most workers, up to the simulated hosts' capacity [{DEFAULT_CAPACITY}].",
)
@click.option(
    "--seed",
    type=int,
    default=1,
    show_default=True,
    help="Seeds arrivals, run times and worker telemetry phases.",
)
def simulate(
    *,
    trace_name: str,
    policy_name: str,
    plot_path: Path | None,
    as_json: bool,
    target_p99: float,
    service_time: float | None,
    service_cv: float | None,
    startup: float,
    period: float,
    min_workers: int,
    max_workers: int | None,
    seed: int,
) -> None:
    """Replay a load trace against a scaling policy and judge it.

    \b
    Example:
      fleetscale simulate --trace step --policy default --plot step.png
      fleetscale simulate --trace my_load.csv --policy hpa --json
    """
    check_min_max(min_workers, DEFAULT_CAPACITY if max_workers is None else max_workers)
    try:
        trace = load_trace(trace_name)
        settings = {"target_p99_s": str(target_p99), "min": str(min_workers)}
        if max_workers is not None:
            settings["max"] = str(max_workers)
        policy = sim_policy(**settings)
        service = trace_service(trace, service_time, service_cv)
        try:
            check_period(period, trace.duration_s)
        except ConfigurationError as error:
            raise ConfigurationError(f"--period: {error}") from None
        if period >= trace.duration_s:  # its only decision, at 0, would be scored
            raise ConfigurationError(
                f"--period {period:g} s must be shorter than the trace ({trace.duration_s:g} s)"
                ": no decision would follow the one at 0"
            )
        config = SimConfig(
            target_p99_s=target_p99, period_s=period, startup=StartUp(cold_s=startup), seed=seed
        )
        outcome = run_scenario(trace, policy_name, policy=policy, service=service, config=config)
        if plot_path is not None:
            from fleetscale.sim.plot import plot_outcome  # noqa: PLC0415 - optional extra

            plot_outcome(outcome, plot_path, target_p99)
    except ConfigurationError as error:
        fail(str(error), ExitCode.USAGE)
    summary = outcome.summary.to_dict()
    if as_json:
        click.echo(json.dumps(summary))
        return
    for key, value in summary.items():
        click.echo(f"{key:>22}: {_text(value)}")


def _text(value: object) -> str:
    """A summary value for people: 4 significant digits, whole numbers from 1000 up
    (52,860, not 5.286e+04), and `–` for unknown (`null` in `--json`)."""
    if value is None:
        return "–"
    if isinstance(value, int | float) and not isinstance(value, bool) and abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.4g}" if isinstance(value, float) else str(value)
