"""`fleetscale dlq FLEET list | replay | purge`: inspect and act on dead letters."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

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
from fleetscale.deadletters import NOT_FOUND, DeadLetters, validate_letter_id
from fleetscale.errors import ConfigurationError
from fleetscale.keys import FleetKeys
from fleetscale.status import require_fleet
from fleetscale.store import connect
from fleetscale.words import counted, noun


def _letters(fleet: str, redis_url: str | None) -> DeadLetters:
    """The fleet's dead letters; a fleet Redis holds nothing of is refused (a typo?)."""
    settings = redis_settings(redis_url)
    client, keys = connect(settings), FleetKeys(fleet)
    require_fleet(client, keys, settings.url)
    return DeadLetters(client, keys, settings.url)


@main.group("dlq", cls=FleetGroup)
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
    """List the fleet's dead letters, oldest first, with reason and attempts: the first
    --limit of them, and on stderr how many there are in all.

    --json prints {"count", "entries": [{"id", "job_id", "task", "reason", "attempts",
    "at_ms", "entry_id", "traceback"}]}: count is every letter, entries the first --limit.
    The ID of each letter is what `replay` and `purge` take.

    \b
    Example:
      fleetscale dlq media list --json
    """
    letters = _letters(fleet, redis_url)
    entries = letters.list(limit)
    count = letters.count()
    if as_json:
        click.echo(json.dumps({"count": count, "entries": [e.to_dict() for e in entries]}))
        return
    for e in entries:
        who = f"job {e.job_id or '?'}  task {e.task or '?'}"
        click.echo(f"{e.id}  {who}  attempts {e.attempts}  {_one_line(e.reason)}")
    if count > len(entries):
        click.echo(f"{len(entries)} of {_letters_text(count)} shown (--limit for more)", err=True)
    else:
        click.echo(_letters_text(count), err=True)


def _letters_text(count: int) -> str:
    """`1 dead letter`, `2 dead letters`."""
    return counted(count, "dead letter")


def _one_line(text: str) -> str:
    """`text` on one line: a multi-line reason would read as several letters."""
    return " ".join(text.split())


@dlq_group.command("replay")
@click.argument("ids", nargs=-1)
@redis_url_option
@click.pass_obj
@reports_errors
def dlq_replay(fleet: str, *, ids: tuple[str, ...], redis_url: str | None) -> None:
    """Send the fleet's dead letters back to the queue: every one there is when it
    starts, or only the given letter IDS (`<ms>-<seq>`, as `dlq list` shows them).

    Each job keeps its job id and arguments; its attempts count from 0 again. A letter whose
    job cannot be decoded stays (a line on stderr says why; `purge ID` deletes it). Given
    IDS that are not dead letters of the fleet are named in one error line, with exit 2,
    after the others are replayed. An interrupted replay (Ctrl-C, Redis gone) leaves each
    letter either replayed or still a dead letter, never both: run it again to go on.

    \b
    Examples:
      fleetscale dlq media replay
      fleetscale dlq media replay 1700000000000-0
    """
    ids = _checked(ids)
    letters = _letters(fleet, redis_url)
    replayed, missing = 0, []
    try:
        for letter_id, why in letters.replay_each(ids):
            if why is None:
                replayed += 1
            elif ids and why.startswith(NOT_FOUND):
                missing.append(letter_id)
            else:
                click.echo(f"skipped {letter_id}: {why}", err=True)
    except BaseException:  # an error line or "aborted" follows: say what was done
        click.echo(
            f"replayed {_letters_text(replayed)} before stopping (a letter it stopped at is "
            "replayed or still a dead letter, never both); run replay again for the rest",
            err=True,
        )
        raise
    click.echo(f"replayed {_letters_text(replayed)}")
    _refuse_missing(fleet, missing)


@dlq_group.command("purge")
@click.argument("ids", nargs=-1)
@redis_url_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
@reports_errors
def dlq_purge(fleet: str, *, ids: tuple[str, ...], redis_url: str | None, yes: bool) -> None:
    """Delete the fleet's dead letters for good: every one there is when asked, or only
    the given letter IDS (`<ms>-<seq>`, as `dlq list` shows them). Letters that arrive
    after the question are kept. Given IDS that are not dead letters of the fleet are
    named in one error line, with exit 2, after the others are deleted.

    \b
    Examples:
      fleetscale dlq media purge
      fleetscale dlq media purge --yes 1700000000000-0
    """
    ids = _checked(ids)
    letters = _letters(fleet, redis_url)  # an unknown fleet is refused before asking
    newest = None if ids else letters.newest_id()
    if not ids and newest is None:
        click.echo(f"purged {_letters_text(0)} (there were none)")
        return
    if not yes:
        count = len(ids) if ids else letters.count()
        what = f"{count} given {noun(count, 'dead letter')}" if ids else _letters_text(count)
        _confirm(f"Delete the {what} of fleet {fleet!r}, for good?")
    if not ids:
        click.echo(f"purged {_letters_text(letters.purge(through=newest))}")
        return
    missing = letters.purge_ids(ids)
    click.echo(f"purged {_letters_text(len(ids) - len(missing))}")
    _refuse_missing(fleet, missing)


def _checked(ids: tuple[str, ...]) -> tuple[str, ...]:
    """The given letter ids, each once; a bad one is a usage error, whatever Redis holds."""
    return tuple(dict.fromkeys(validate_letter_id(letter_id) for letter_id in ids))


def _refuse_missing(fleet: str, missing: Sequence[str]) -> None:
    """Given ids that are not dead letters (a typo, or replayed or purged already): one
    error line naming them, a usage error, once the others are done."""
    if missing:
        raise ConfigurationError(
            f"{noun(len(missing), 'not a dead letter', 'not dead letters')} of fleet "
            f"{fleet!r}: {', '.join(missing)} (`fleetscale dlq {fleet} list` shows the ids)"
        )


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
