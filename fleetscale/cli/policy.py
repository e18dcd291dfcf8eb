"""`fleetscale policy FLEET show | set KEY=VALUE…`: read and hot-reload the policy."""

from __future__ import annotations

import json

import click

from fleetscale.cli.options import (
    FleetGroup,
    fleet_argument,
    json_option,
    redis_settings,
    redis_url_option,
    reports_errors,
)
from fleetscale.cli.root import main
from fleetscale.controller.policy import Policy
from fleetscale.controller.policystore import PolicyStore, VersionedPolicy
from fleetscale.errors import ConfigurationError
from fleetscale.keys import FleetKeys
from fleetscale.status import fleet_exists, require_fleet
from fleetscale.store import connect


def _store(fleet: str, redis_url: str | None) -> PolicyStore:
    settings = redis_settings(redis_url)
    return PolicyStore(connect(settings), FleetKeys(fleet), settings.url)


def _warn_created(fleet: str) -> None:
    """A policy set on a fleet Redis knew nothing of created it: say so (a typo?)."""
    click.echo(
        f"fleetscale: warning: fleet {fleet!r} had nothing in Redis; this created its "
        "policy (check the fleet name)",
        err=True,
    )


def _print(stored: VersionedPolicy, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"version": stored.version, "policy": stored.policy.to_dict(),
                               "ignored": stored.unknown}))  # fmt: skip
        return
    click.echo(f"version {stored.version}")
    for key, value in stored.policy.to_dict().items():
        click.echo(f"  {key} = {value}")
    for key, value in sorted(stored.unknown.items()):
        click.echo(f"  {key} = {value}  (ignored: unknown to this version)")


@main.group("policy", cls=FleetGroup)
@fleet_argument
@click.pass_context
def policy_group(ctx: click.Context, fleet: str) -> None:
    """Read or change a fleet's scaling policy (validated, versioned, hot-reloaded).

    \b
    Examples:
      fleetscale policy media show
      fleetscale policy media set target_p99=300ms max=64
    """
    ctx.obj = fleet


@policy_group.command("show")
@redis_url_option
@json_option
@click.pass_obj
@reports_errors
def policy_show(fleet: str, *, redis_url: str | None, as_json: bool) -> None:
    """Show the fleet's stored policy and its version (version 0: none is stored yet,
    these are the defaults). A fleet Redis holds nothing of is refused (a typo?).

    \b
    Example:
      fleetscale policy media show --json
    """
    store = _store(fleet, redis_url)
    require_fleet(store.client, store.keys, store.url)
    stored = store.read() or VersionedPolicy(Policy(), 0)
    _print(stored, as_json)


@policy_group.command("set")
@click.argument("assignments", nargs=-1, required=True, metavar="KEY=VALUE...")
@redis_url_option
@json_option
@click.pass_obj
@reports_errors
def policy_set(
    fleet: str, *, assignments: tuple[str, ...], redis_url: str | None, as_json: bool
) -> None:
    """Change the fleet's policy; controllers apply it on their next tick, no restart.

    A bad key or value is refused with a message and the running policy stays. Setting
    the policy of a fleet Redis knows nothing of creates it, with a warning (a typo?).
    Durations accept 500ms, 2s, 1m. Keys: those `policy show` lists (any key ending
    in `_s` may be written without it, e.g. `target_p99`). A stored value this
    version finds invalid can be set right here.

    \b
    Example:
      fleetscale policy media set target_p99=300ms min=2 max=64
    """
    changes: dict[str, str] = {}
    for item in assignments:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigurationError(
                f"bad assignment {item!r}: use KEY=VALUE, e.g. target_p99=300ms"
            )
        if key in changes:
            raise ConfigurationError(
                f"{key} is given twice ({changes[key]}, {value}): give it once"
            )
        changes[key] = value
    store = _store(fleet, redis_url)
    known = fleet_exists(store.client, store.keys, store.url)
    _print(store.update(changes), as_json)
    if not known:
        _warn_created(fleet)
