"""`fleetscale explain FLEET`: the last decisions, with their inputs and reasons."""

from __future__ import annotations

import json
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
from fleetscale.controller.plan import PlanStore
from fleetscale.keys import FleetKeys
from fleetscale.store import connect


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "unknown"
    if isinstance(value, float):
        return f"{value:.3g}{unit}"
    return f"{value}{unit}"


def render(record: dict[str, Any]) -> str:
    """One decision as a few readable lines."""
    inputs, obs = record["inputs"], record["inputs"]["observation"]
    when = time.strftime("%H:%M:%S", time.gmtime(record["at_s"]))
    dry = " (dry run)" if record.get("dry_run") else ""
    read_age = record.get("telemetry_age_s")
    stale = " (stale: ignored)" if obs["telemetry_age_s"] is None and read_age is not None else ""
    model = (
        f"  capacity model {_fmt(inputs['capacity_workers'])}"
        f"  drain {_fmt(inputs['drain_workers'])}  wait ratio {_fmt(inputs['wait_ratio'])}"
    )
    lines = [
        f"{when}Z  {record['previous']} → {record['desired']} workers"
        f"  reason {record['reason']}{dry}",
        f"  wait p99 {_fmt(obs['wait_p99_s'], 's')}"
        f"  head-of-line {_fmt(obs['head_of_line_age_s'], 's')}"
        f"  backlog {_fmt(obs['backlog'])}  arrivals {_fmt(obs['arrival_rate_per_s'], '/s')}",
        f"  service {_fmt(obs['service_time_s'], 's')}"
        f"  telemetry age {_fmt(record.get('telemetry_age_s'), 's')}{stale}",
        f"{model}  quotas {record['quotas']}",
    ]
    return "\n".join(lines)


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
    records = PlanStore(connect(settings), FleetKeys(fleet), settings.url).decisions(last)
    if as_json:
        click.echo(json.dumps({"fleet": fleet, "decisions": records}))
        return
    if not records:
        click.echo(f"no decisions recorded for fleet {fleet!r}: is a controller running?", err=True)
    for record in records:
        click.echo(render(record))
