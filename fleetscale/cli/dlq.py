"""`fleetscale dlq FLEET list | replay | purge`: inspect and act on dead letters."""

from __future__ import annotations

import json
import sys

import click

from fleetscale.cli.options import (
    fleet_argument,
    json_option,
    redis_settings,
    redis_url_option,
    reports_errors,
)
from fleetscale.cli.root import main
from fleetscale.deadletters import DeadLetters, validate_letter_id
from fleetscale.keys import FleetKeys
from fleetscale.status import require_fleet
from fleetscale.store import connect


def _letters(fleet: str, redis_url: str | None) -> DeadLetters:
    """The fleet's dead letters; a fleet Redis holds nothing of is refused (a typo?)."""
    settings = redis_settings(redis_url)
    client, keys = connect(settings), FleetKeys(fleet)
    require_fleet(client, keys, settings.url)
    return DeadLetters(client, keys, settings.url)


@main.group("dlq")
@fleet_argument
@click.pass_context
def dlq_group(ctx: click.Context, fleet: str) -> None:
    """Dead letters: jobs given up on, each with its reason.

    \b
    Examples:
      fleetscale dlq media list --json
      fleetscale dlq media replay
      fleetscale dlq media purge --yes
    """
    ctx.obj = fleet


@dlq_group.command("list")
@redis_url_option
@json_option
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Most letters shown.",
)
@click.pass_obj
@reports_errors
def dlq_list(fleet: str, *, redis_url: str | None, as_json: bool, limit: int) -> None:
    """List the fleet's dead letters, oldest first, with reason and attempts.

    \b
    Example:
      fleetscale dlq media list --json
    """
    letters = _letters(fleet, redis_url)
    entries = letters.list(limit)
    if as_json:
        body = {"count": letters.count(), "entries": [e.to_dict() for e in entries]}
        click.echo(json.dumps(body))
        return
    for e in entries:
        who = f"job {e.job_id or '?'}  task {e.task or '?'}"
        click.echo(f"{e.id}  {who}  attempts {e.attempts}  {e.reason}")
    click.echo(f"{letters.count()} dead letters", err=True)


@dlq_group.command("replay")
@click.argument("ids", nargs=-1)
@redis_url_option
@click.pass_obj
@reports_errors
def dlq_replay(fleet: str, *, ids: tuple[str, ...], redis_url: str | None) -> None:
    """Send the fleet's dead letters back to the queue: every one, or only the given
    letter IDS (`<ms>-<seq>`, as `dlq list` shows them).

    \b
    Example:
      fleetscale dlq media replay 1700000000000-0
    """
    for letter_id in ids:  # a bad id is a usage error, whatever Redis holds
        validate_letter_id(letter_id)
    result = _letters(fleet, redis_url).replay(ids)
    for letter_id, why in result.skipped.items():
        click.echo(f"skipped {letter_id}: {why}", err=True)
    click.echo(f"replayed {len(result.replayed)} dead letters")


@dlq_group.command("purge")
@redis_url_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
@reports_errors
def dlq_purge(fleet: str, *, redis_url: str | None, yes: bool) -> None:
    """Delete every dead letter of the fleet.

    \b
    Example:
      fleetscale dlq media purge --yes
    """
    letters = _letters(fleet, redis_url)  # an unknown fleet is refused before asking
    if not yes:
        _confirm(f"Delete every dead letter of fleet {fleet!r}?")
    click.echo(f"purged {letters.purge()} dead letters")


def _confirm(question: str) -> None:
    """Ask `question`; a "no" aborts. Without a terminal to answer on (stdin at its end:
    a cron job, a script) the way out is `--yes`: say so, as a usage error."""
    try:
        confirmed = click.confirm(question)
    except click.Abort:
        if sys.stdin.isatty():  # Ctrl-C at the question
            raise
        raise click.UsageError(
            "no answer to the question (stdin is not a terminal): add --yes"
        ) from None
    if not confirmed:
        raise click.Abort
