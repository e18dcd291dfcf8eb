"""`fleetscale controller APP`: this host's controller."""

from __future__ import annotations

import shlex
import socket
import sys

import click

from fleetscale.app import load_app
from fleetscale.cli.options import (
    check_min_max,
    duration_option,
    logging_options,
    redis_settings,
    redis_url_option,
    refuse_empty_url,
    reports_errors,
    target_p99_option,
)
from fleetscale.cli.root import main
from fleetscale.cli.worker import worker_command
from fleetscale.controller.hostinfo import affinity_cpus, cgroup_cpus, default_capacity
from fleetscale.controller.policy import Policy
from fleetscale.controller.process import ControllerOptions, run_controller
from fleetscale.controller.reconciler import ControllerSettings
from fleetscale.controller.supervisor import SupervisorSettings
from fleetscale.errors import AppImportError
from fleetscale.keys import validate_fleet_name

SET_FOR_WORKERS = ("--redis-url", "--warm", "--zygote", "--burst")
"""`fleetscale worker` flags a controller sets, or must not, for the workers it starts."""
MAX_HOST_WORKERS = 10_000
"""The most worker processes `--capacity` and `--warm` allow on one host: each is a
Python interpreter of tens of MB, so more is a typo, not a host."""


def _worker_words(ctx: click.Context, param: click.Parameter, value: str) -> tuple[str, ...]:
    """Click callback: split `--worker-args` as a shell would and parse and check them as
    `fleetscale worker` does, or refuse them: an unknown flag or a bad value failed every
    worker's start, a back-off for ever, and a `--redis-url` there overrode
    `--worker-redis-url` unseen. Values are checked by the worker options' types; their
    callbacks are not run (they would set this process's logging)."""
    try:
        words = shlex.split(value)
    except ValueError as exc:
        raise click.BadParameter(f"{exc} in {value!r}", ctx=ctx, param=param) from None
    for word in words:
        if (flag := word.partition("=")[0]) in SET_FOR_WORKERS:
            hint = ": --worker-redis-url names the workers' Redis" if flag == "--redis-url" else ""
            raise click.BadParameter(f"{flag} is the controller's to set{hint}", ctx, param)
    worker = click.Context(worker_command, info_name="worker")
    try:
        given, extra, _ = worker_command.make_parser(worker).parse_args(["APP", *words])
        for option in worker_command.params:
            if option.name in given:
                option.type_cast_value(worker, given[option.name])
    except click.UsageError as exc:
        raise click.BadParameter(f"fleetscale worker: {exc.format_message()}", ctx, param) from None
    if extra:
        raise click.BadParameter(f"{extra[0]!r} is no flag of fleetscale worker", ctx, param)
    help_option = worker_command.get_help_option(worker)
    if help_option is not None and given.get(help_option.name or ""):
        raise click.BadParameter(
            "--help would make every worker print its help and exit", ctx, param
        )
    return tuple(words)


def _fleet_of(app_path: str, fleet: str | None) -> str:
    if fleet:
        return validate_fleet_name(fleet)
    try:
        return load_app(app_path).fleet
    except AppImportError as exc:
        raise AppImportError(f"{exc}; or pass --fleet NAME to start and retry the import") from None


@main.command("controller")
@click.argument("app_path", metavar="APP")
@redis_url_option
@target_p99_option("Queue-wait target: 99 % of jobs start within this")
@click.option(
    "--min",
    "min_workers",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Fewest workers in the fleet.",
)
@click.option(
    "--max",
    "max_workers",
    type=click.IntRange(min=0),
    default=32,
    show_default=True,
    help="Most workers in the fleet.",
)
@click.option(
    "--capacity",
    type=click.IntRange(0, MAX_HOST_WORKERS),
    help="Most worker processes on this host, warm spares included [default: CPUs "
    "allowed by affinity and cgroup quota].",
)
@click.option(
    "--host-id",
    default=socket.gethostname,
    show_default="the hostname",
    help="This host's name in the fleet; unique per host.",
)
@click.option("--fleet", help="The fleet name, when APP cannot be imported here.")
@click.option(
    "--warm",
    type=click.IntRange(0, MAX_HOST_WORKERS),
    default=1,
    show_default=True,
    help="Warm spare workers: connected, taking jobs within milliseconds of a scale-up "
    "(within --capacity: a full host keeps none).",
)
@duration_option("--tick", default="1s", least_s=0.1, most_s=60, help_text="Decision period")
@duration_option(
    "--lease-ttl",
    default="5s",
    least_s=0.2,
    most_s=3600,
    help_text="Leader lease, at least 2 × --tick; a dead leader is replaced after this",
)
@duration_option(
    "--stop-grace",
    default="30s",
    least_s=0,
    most_s=86_400,
    help_text="How long a stopping worker may drain before SIGKILL",
)
@click.option(
    "--worker-args",
    default="",
    callback=_worker_words,
    metavar="ARGS",
    help="Extra `fleetscale worker` arguments, e.g. '--min-idle 10s'.",
)
@click.option(
    "--worker-redis-url",
    envvar="FLEETSCALE_WORKER_REDIS_URL",
    callback=refuse_empty_url,
    show_envvar=True,
    metavar="URL",
    help="Redis URL of the workers this controller starts (their own ACL user); "
    "default the controller's. Prefer the environment variable: it keeps the "
    "password out of the process list.",
)
@click.option(
    "--metrics-port", type=click.IntRange(1, 65535), help="Serve Prometheus metrics on this port."
)
@click.option(
    "--spawn",
    type=click.Choice(["fork", "exec"]),
    default="fork",
    show_default=True,
    help="Start workers by forking a preloaded parent (milliseconds), or each as a new "
    "interpreter (slower; picks up new code without a controller restart).",
)
@click.option("--dry-run", is_flag=True, help="Decide and record, but start and stop nothing.")
@click.option("--strict", is_flag=True, help="Refuse to start on an unsafe Redis.")
@logging_options
@reports_errors
def controller_command(
    *,
    app_path: str,
    redis_url: str | None,
    target_p99: float,
    min_workers: int,
    max_workers: int,
    capacity: int | None,
    host_id: str,
    fleet: str | None,
    warm: int,
    tick: float,
    lease_ttl: float,
    stop_grace: float,
    worker_args: tuple[str, ...],
    worker_redis_url: str | None,
    metrics_port: int | None,
    spawn: str,
    dry_run: bool,
    strict: bool,
) -> None:
    """Run this host's controller for APP: join the fleet, maybe lead it, and run
    local worker processes at this host's share of the size that meets the target.

    The policy flags seed the fleet's stored policy when it has none; afterwards
    change it with `fleetscale policy FLEET set`. SIGTERM, Ctrl-C or SIGHUP stops
    the workers (they drain first), hands over the lead and exits 0. Forked workers
    run the code imported at start: restart to deploy new code (or --spawn exec).

    \b
    Example:
      fleetscale controller myproject.tasks:app --target-p99 500ms --min 0 --max 32
    """
    if not host_id.strip() or not host_id.isprintable() or ":" in host_id or "#" in host_id:
        raise click.BadParameter(
            "use a name of printable characters, not only spaces, without ':' or '#'",
            param_hint="--host-id",
        )
    if lease_ttl < 2 * tick:
        raise click.BadParameter(
            "need 2 × --tick ≤ --lease-ttl: the leader renews its lease each tick, "
            "and one slow tick must not lose it",
            param_hint="--lease-ttl",
        )
    check_min_max(min_workers, max_workers)
    flags = Policy(target_p99_s=target_p99, min=min_workers, max=max_workers).validate()
    settings = ControllerSettings(
        host_id=host_id,
        capacity=capacity
        if capacity is not None
        else default_capacity(affinity_cpus(), cgroup_cpus()),
        tick_s=tick,
        heartbeat_s=tick,
        lease_ttl_s=lease_ttl,
        host_ttl_s=lease_ttl,
        dry_run=dry_run,
    )
    options = ControllerOptions(
        app_path=app_path,
        fleet=_fleet_of(app_path, fleet),
        flags=flags,
        settings=settings,
        supervisor=SupervisorSettings(warm=0 if dry_run else warm, stop_grace_s=stop_grace),
        worker_args=worker_args,
        worker_redis_url=worker_redis_url,
        metrics_port=metrics_port,
        strict=strict,
        fork=spawn == "fork",
    )
    sys.exit(int(run_controller(options, redis_settings(redis_url))))
