"""`fleetscale demo`: the whole system on this machine, on an embedded Redis."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

import click
from click.core import ParameterSource

from fleetscale.cli.options import (
    duration_option,
    logging_options,
    plot_option,
    reports_errors,
    target_p99_option,
)
from fleetscale.cli.root import main
from fleetscale.controller.policy import Policy
from fleetscale.demo.interrupt import Interrupts
from fleetscale.demo.plot import save_plot
from fleetscale.demo.run import DemoSettings, run_demo
from fleetscale.demo.view import Frame, frame_line, summary_dict

MIN_DURATION_S = 10.0
"""The shortest demo load, seconds: the policy needs a few ticks to show anything."""

MAX_DURATION_S = 86_400.0
"""The longest demo load, seconds: a day, about 2.6 million jobs. The load computes its
arrival times up front, so a mistyped `--duration 1e9` filled memory."""


class LiveView:
    """Redraws the last frames in a terminal; prints one line a frame otherwise."""

    def __init__(self, target_s: float, enabled: bool) -> None:
        self.target_s = target_s
        self.tty = enabled and sys.stdout.isatty()
        self.enabled = enabled
        self.lines: list[str] = []

    def __call__(self, frame: Frame) -> None:
        if not self.enabled:
            return
        line = frame_line(frame, self.target_s)
        if not self.tty:
            click.echo(line)
            return
        self.lines = [*self.lines[-19:], line]
        click.clear()
        click.echo(f"fleetscale demo — target p99 {self.target_s * 1000:.0f}ms — Ctrl-C stops\n")
        click.echo("\n".join(self.lines))


@main.command("demo")
@duration_option(
    "--duration",
    default="60s",
    least_s=MIN_DURATION_S,
    most_s=MAX_DURATION_S,
    help_text="Length of the built-in load (it stretches to it)",
)
@click.option(
    "--trace",
    "trace_name",
    metavar="NAME_OR_CSV",
    help="A shipped trace name or a `t_s,rate_per_s` CSV instead of the built-in load "
    "(it sets its own length).",
)
@target_p99_option("The wait target")
@click.option(
    "--capacity",
    type=click.IntRange(1, 256),
    default=24,
    show_default=True,
    help="Most workers the demo may run.",
)
@click.option(
    "--redis-url", metavar="URL", help="Use this Redis instead of starting a private one."
)
@plot_option("Save a picture of the run here, a name ending in .png (needs matplotlib).")
@click.option(
    "--json", "as_json", is_flag=True, help="Print the summary and timeline as one JSON object."
)
@logging_options
@reports_errors
def demo_command(
    *, duration: float, trace_name: str | None, target_p99: float, capacity: int,
    redis_url: str | None, plot: Path | None, as_json: bool,
) -> None:  # fmt: skip
    """Run the whole system here: a private Redis, a controller with its workers, and a
    load with a quiet start, a step up, a spike and a step down. Watch it scale.

    Nothing to install: the Redis is redis-server from PATH or the one
    `pip install 'fleetscale[embedded]'` brings, in a temporary directory removed at
    the end. Ctrl-C (or SIGTERM, or closing the terminal) stops everything; nothing is
    left running. A second Ctrl-C kills the workers instead of letting them drain.

    \b
    Examples:
      fleetscale demo
      fleetscale demo --duration 2m --target-p99 250ms --plot demo.png
    """
    ctx = click.get_current_context()
    if trace_name is not None and ctx.get_parameter_source("duration") != ParameterSource.DEFAULT:
        raise click.UsageError("--duration stretches the built-in load; a --trace has its own")
    Policy(target_p99_s=target_p99).validate()  # refused here, not in the demo's controller
    settings = DemoSettings(duration_s=duration, target_p99_s=target_p99, capacity=capacity,
                            trace=trace_name, redis_url=redis_url)  # fmt: skip
    interrupts = Interrupts()
    # run_demo stops all it started before a KeyboardInterrupt leaves it, or raises
    # another error when it could not.
    with interrupts.installed(), contextlib.suppress(KeyboardInterrupt):
        summary, frames = run_demo(settings, LiveView(target_p99, enabled=not as_json), interrupts)
    if interrupts.received is not None:
        with contextlib.suppress(OSError):  # the terminal may be gone (SIGHUP)
            click.echo("stopped; every process of the demo has exited", err=True)
        sys.exit(128 + interrupts.received)
    if as_json:
        click.echo(json.dumps(summary_dict(summary, frames)))
    else:
        click.echo("\n" + "\n".join(summary.lines()))
    if plot is not None:
        save_plot(plot, frames, target_p99)
