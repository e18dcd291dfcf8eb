"""`fleetscale status FLEET`: the fleet at a glance, once or every few seconds."""

from __future__ import annotations

import json
import math
import shutil
import sys
import time
from collections.abc import Callable
from typing import Any

import click
from click.core import ParameterSource

from fleetscale.cli.options import (
    Duration,
    fleet_argument,
    json_option,
    redis_settings,
    redis_url_option,
    reports_errors,
)
from fleetscale.cli.root import main
from fleetscale.errors import RedisUnavailable
from fleetscale.histogram import MAX_VALUE_S
from fleetscale.keys import TELEMETRY_RETENTION_S, FleetKeys
from fleetscale.status import read_status
from fleetscale.store import connect
from fleetscale.words import counted

_RETENTION = f"{TELEMETRY_RETENTION_S / 60:g}m"


def format_wait(value: float | None) -> str:
    """A wait quantile; the histogram's last bucket holds every wait from its top up."""
    if value is not None and value >= MAX_VALUE_S:
        return f"≥{MAX_VALUE_S:.0f}s"
    return format_seconds(value)


def format_seconds(value: float | None) -> str:
    """A duration in seconds, in µs, ms or s; `unknown` for None."""
    if value is None:
        return "unknown"
    if value == 0:
        return "0s"
    if value < 0.001:
        return f"{value * 1e6:.0f}µs"
    return f"{value * 1000:.0f}ms" if value < 1 else f"{value:.2f}s"


def format_rate(value: float | None) -> str:
    """A rate per second; `unknown` for None."""
    return "unknown" if value is None else f"{value:.1f}/s"


def _count(value: Any) -> str:
    return "-" if value is None else str(value)


def _policy_line(status: dict[str, Any]) -> str:
    policy, last = status["policy"], status["last_decision"]
    text = "policy   none stored (no controller yet)"
    if policy:
        text = (
            f"policy   v{policy['version']}: target p99 {format_seconds(policy['target_p99_s'])},"
            f" min {policy['min']}, max {policy['max']}"
        )
    if last:
        age_s = max(0.0, status["observed_at_s"] - last["at_s"])
        text += (
            f"   last decision {counted(last['desired'], 'worker')} ({last['reason']},"
            f" {format_seconds(age_s)} ago)"
        )
    return text


def _host_line(host: dict[str, Any]) -> str:
    line = (
        f"  host {host['host']}: running {host['running']}  ready {host['ready']}"
        f"  quota {_count(host['quota'])}  capacity {_count(host['capacity'])}  warm {host['warm']}"
    )
    if host["capacity"] is None and host["quota"] is not None:
        line += "  (no controller heartbeat: the plan holds this share for its workers)"
    if host["last_error"]:
        line += f"\n    start-up failures {host['spawn_failures']}, last: {host['last_error']}"
    return line


def render(status: dict[str, Any]) -> str:
    """The human-readable status (the JSON fields, laid out)."""
    workers = status["workers"]
    busy = status["busy_fraction"]
    lines = [
        f"fleet {status['fleet']}   leader: {status['leader'] or 'none'}",
        f"workers  desired {_count(workers['desired'])}  running {workers['running']}"
        f"  ready {workers['ready']}",
        f"backlog  {_count(status['backlog'])}  (pending {status['pending']})"
        f"   head-of-line age {format_seconds(status['head_of_line_age_s'])}",
        f"arrivals {format_rate(status['arrival_rate_per_s'])}"
        f"   completed {format_rate(status['completed_per_s'])}"
        f"   failed {format_rate(status['failed_per_s'])}",
        f"wait     p50 {format_wait(status['wait_p50_s'])}  p99 {format_wait(status['wait_p99_s'])}"
        f"   (last {status['window_s']:g}s, {counted(status['wait_samples'], 'weighted sample')})",
        f"service  {format_seconds(status['service_time_s'])} per job"
        f"   busy {'unknown' if busy is None else f'{busy:.0%}'}",
        _policy_line(status),
        f"dead letters {status['dead_letters']}",
        *(_host_line(host) for host in status["hosts"]),
    ]
    return "\n".join(lines)


@main.command("status")
@fleet_argument
@redis_url_option
@json_option
@click.option(
    "--watch",
    is_flag=True,
    help="Refresh until Ctrl-C (exit 0); carries on through a Redis outage, saying so once.",
)
@click.option(
    "--interval",
    default="2s",
    type=Duration(0.1, 86_400),
    metavar="DURATION",
    show_default=True,
    help="Refresh period with --watch, from 100ms to 24h.",
)
@click.option(
    "--window",
    default="10s",
    type=Duration(1, TELEMETRY_RETENTION_S),
    metavar="DURATION",
    show_default=True,
    help=f"Sliding window of the wait quantiles and rates, from 1s (telemetry is kept a "
    f"second at a time) to {_RETENTION} (for as long as it is kept).",
)
@reports_errors
def status_command(
    *, fleet: str, redis_url: str | None, as_json: bool, watch: bool, interval: float, window: float
) -> None:
    """Show FLEET: workers, backlog, arrival rate, wait p50/p99, head-of-line age.

    \b
    Examples:
      fleetscale status media
      fleetscale status media --json
      fleetscale status media --watch --interval 1s
    """
    given = click.get_current_context().get_parameter_source("interval")
    if given is not ParameterSource.DEFAULT and not watch:
        raise click.UsageError("--interval is the refresh period of --watch: give both")
    settings = redis_settings(redis_url)
    client = connect(settings)
    keys = FleetKeys(fleet)

    def read() -> dict[str, Any]:
        return read_status(client, keys, settings.url, window_s=window)

    def show(status: dict[str, Any]) -> None:
        if as_json:
            click.echo(json_line(status))
        elif watch and sys.stdout.isatty():
            click.clear()
            size = shutil.get_terminal_size()
            click.echo(fit(render(status), size.columns, size.lines))
        else:
            click.echo(render(status))

    try:
        show(read())  # a first read that fails is an error: likely the wrong URL
        if watch:
            keep_watching(read, show, interval)
    except KeyboardInterrupt:
        if not watch:
            raise
        # Ctrl-C is how --watch ends: a success, ended quietly.


def keep_watching(
    read: Callable[[], dict[str, Any]], show: Callable[[dict[str, Any]], None], interval_s: float
) -> None:
    """Refresh every `interval_s` seconds until Ctrl-C, riding out Redis outages.

    Redis going away (a restart, a failover) is what an operator may be watching, so
    the watch says so on stderr once per outage and carries on when it is back. Any
    other error ends it, as without --watch.
    """
    down = False
    while True:
        time.sleep(interval_s)
        try:
            status = read()
        except RedisUnavailable as exc:
            if not down:
                click.echo(
                    f"fleetscale: warning: {time.strftime('%H:%M:%S')} {exc}; retrying every "
                    f"{format_seconds(interval_s)} (Ctrl-C stops)",
                    err=True,
                )
            down = True
            continue
        down = False
        show(status)


def fit(text: str, columns: int, lines: int) -> str:
    """`text` cut to a terminal of `columns` × `lines`, so a redrawn view never scrolls
    its head off screen: long lines end in `…`, extra lines become one that says so."""
    rows = [row if len(row) <= columns else row[: max(0, columns - 1)] + "…"
            for row in text.splitlines()]  # fmt: skip
    if len(rows) >= lines:
        hidden = len(rows) - (lines - 2)
        rows = [*rows[: max(0, lines - 2)], f"… {hidden} more lines (status --json has all)"]
    return "\n".join(rows)


def json_line(value: Any) -> str:
    """`value` as one line of strict JSON: a float that is not finite is unknown (null),
    never a NaN or Infinity token that JSON parsers refuse."""
    return json.dumps(_finite(value), allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
