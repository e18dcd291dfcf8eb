"""`fleetscale simulate`: replay a load trace against a scaling policy in the simulator."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from fleetscale.cli.options import fail, plot_option, to_seconds
from fleetscale.cli.root import main
from fleetscale.errors import ConfigurationError
from fleetscale.exitcode import ExitCode
from fleetscale.sim.engine import SimConfig, check_period
from fleetscale.sim.pool import StartUp
from fleetscale.sim.scaler import POLICIES
from fleetscale.sim.scenario import run_scenario, sim_policy, trace_service
from fleetscale.sim.service import check_service
from fleetscale.sim.trace import SHIPPED, load_trace

F = TypeVar("F", bound=Callable[..., Any])


def _service_cv(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    """Click callback: the simulator's cv check (`check_service`), when the line is read."""
    try:
        check_service(None, value)
    except ConfigurationError as error:
        raise click.BadParameter(str(error), ctx=ctx, param=param) from None
    return value


def _duration_option(flag: str, default: str | None, help_text: str) -> Callable[[F], F]:
    """A duration option (`250ms`, `2s`, `1m` or seconds), read as seconds."""
    return click.option(
        flag,
        default=default,
        show_default=default is not None,
        callback=to_seconds,
        metavar="DURATION",
        help=help_text,
    )


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
@_duration_option(
    "--target-p99", "500ms", "Queue-wait target (p99) the run is sized and judged against."
)
@_duration_option("--service-time", None, "Mean run time [trace's, else 200ms].")
@click.option(
    "--service-cv",
    type=float,
    default=None,
    callback=_service_cv,
    help="Run-time cv, 0 to 1000; lognormal when > 0, constant at 0 [trace's, else 1].",
)
@_duration_option("--startup", "1s", "Cold start-up of a worker.")
@_duration_option(
    "--period", "1s", "Decision period of the default policy; the timeline keeps a row a second."
)
@click.option(
    "--min",
    "min_workers",
    type=int,
    default=0,
    show_default=True,
    help="Fewest workers, up to the simulated hosts' capacity, 512 (more is refused).",
)
@click.option(
    "--max",
    "max_workers",
    type=int,
    default=None,
    help="Most workers, up to the simulated hosts' capacity (more is refused) [512].",
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
