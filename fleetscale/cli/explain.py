"""`fleetscale explain FLEET`: the last decisions, with their inputs and reasons."""

from __future__ import annotations

import time
from typing import Any

import click

from fleetscale.cli.options import (
    fleet_argument,
    json_option,
    redis_settings,
    redis_url_option,
    reports_errors,
)
from fleetscale.cli.root import main
from fleetscale.cli.status import format_rate, format_seconds, format_wait, json_line
from fleetscale.controller.plan import PlanStore
from fleetscale.keys import FleetKeys
from fleetscale.status import require_fleet
from fleetscale.store import connect
from fleetscale.words import counted, noun


def _number(value: Any) -> str:
    """A count or ratio, never in scientific notation; `unknown` for None."""
    if value is None:
        return "unknown"
    if isinstance(value, float):
        return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3f}".rstrip("0").rstrip(".")
    return str(value)


def _previous(record: dict[str, Any]) -> str:
    """The size a decision started from; the first decision of a fleet had no plan."""
    if "previous" not in record:
        return "unknown"
    return "no plan" if record["previous"] is None else _number(record["previous"])


def render(record: dict[str, Any]) -> str:
    """One decision as a few readable lines. A field the record lacks (one written by
    another version of fleetscale) shows as unknown."""
    inputs = record.get("inputs")
    inputs = inputs if isinstance(inputs, dict) else {}
    obs = inputs.get("observation")
    obs = obs if isinstance(obs, dict) else {}
    at_s = record.get("at_s")
    when = (
        "unknown "
        if not isinstance(at_s, int | float)
        else time.strftime("%H:%M:%SZ", time.gmtime(at_s))
    )
    desired = record.get("desired")
    dry = " (dry run)" if record.get("dry_run") else ""
    read_age = record.get("telemetry_age_s")
    stale = (
        " (stale: ignored)" if obs.get("telemetry_age_s") is None and read_age is not None else ""
    )
    model = (
        f"  capacity model {_number(inputs.get('capacity_workers'))}"
        f"  drain {_number(inputs.get('drain_workers'))}"
        f"  wait ratio {_number(inputs.get('wait_ratio'))}"
    )
    lines = [
        f"{when}  {_previous(record)} → {_number(desired)} {noun(desired, 'worker')}"
        f"  reason {record.get('reason', 'unknown')}{dry}",
        f"  wait p99 {format_wait(obs.get('wait_p99_s'))}"
        f"  head-of-line {format_seconds(obs.get('head_of_line_age_s'))}"
        f"  backlog {_number(obs.get('backlog'))}"
        f"  arrivals {format_rate(obs.get('arrival_rate_per_s'))}",
        f"  service {format_seconds(obs.get('service_time_s'))}"
        f"  telemetry age {format_seconds(read_age)}{stale}",
        f"{model}  quotas {record.get('quotas', 'unknown')}",
    ]
    held = _held(obs.get("unattended"))
    if held:
        lines.append(f"  held for workers whose controller lapsed: {held}")
    return "\n".join(lines)


def _held(unattended: object) -> str:
    """`host-b 2 workers, host-c 1 worker` from the observation's (host, workers) pairs
    of hosts whose controller lapsed while their workers ran on; '' for none (or for
    another version's)."""
    pairs = unattended if isinstance(unattended, list) else []
    return ", ".join(
        f"{pair[0]} {counted(pair[1], 'worker')}"
        for pair in pairs
        if isinstance(pair, list) and len(pair) == 2 and isinstance(pair[1], int)
    )


@main.command("explain")
@fleet_argument
@redis_url_option
@json_option
@click.option(
    "--last", type=click.IntRange(1, 1000), default=5, show_default=True, help="How many decisions."
)
@reports_errors
def explain_command(*, fleet: str, redis_url: str | None, as_json: bool, last: int) -> None:
    """Show FLEET's last decisions, newest first, with their inputs and reason codes.

    \b
    Example:
      fleetscale explain media --last 3
    """
    settings = redis_settings(redis_url)
    client, keys = connect(settings), FleetKeys(fleet)
    require_fleet(client, keys, settings.url)
    records = PlanStore(client, keys, settings.url).decisions(last)
    if as_json:
        click.echo(json_line({"fleet": fleet, "decisions": records}))
        return
    if not records:
        click.echo(f"no decisions recorded for fleet {fleet!r}: is a controller running?", err=True)
    for record in records:
        click.echo(render(record))
