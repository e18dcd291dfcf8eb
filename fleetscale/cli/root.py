"""The `fleetscale` click group: every command registers on `main`.

Errors a user can cause print one line, `fleetscale: error: …`, and exit with a named
code (`fleetscale.exitcode.ExitCode`); click's usage errors are folded into that line
too, with the `--help` to read. A closed stdout (`status --watch | head -1`) ends a
command quietly with exit 0.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

import click

from fleetscale import __version__
from fleetscale.exitcode import ExitCode


class OneLineErrors(click.Group):
    """A group whose usage errors print one actionable line instead of click's three."""

    def main(self, args: Sequence[str] | None = None, **extra: Any) -> Any:  # type: ignore[override]
        """Run the CLI; exit with a named code."""
        try:
            return super().main(args, standalone_mode=False, **extra)
        except click.UsageError as exc:
            command = exc.ctx.command_path if exc.ctx else "fleetscale"
            message = exc.format_message()
            click.echo(f"fleetscale: error: {message} (see {command} --help)", err=True)
            sys.exit(int(ExitCode.USAGE))
        except click.ClickException as exc:
            click.echo(f"fleetscale: error: {exc.format_message()}", err=True)
            sys.exit(int(ExitCode.USAGE))
        except click.Abort:
            click.echo("fleetscale: aborted", err=True)
            sys.exit(int(ExitCode.FAILURE))

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; one whose reader closed stdout (`| head`) ends quietly, exit 0.

        The reader took what it wanted, as Ctrl-C ends `status --watch`: a success, not
        the unexpected failure (exit 1) click makes of it. Stdout then goes to /dev/null,
        so the interpreter's last flush fails no more (Python's note on SIGPIPE).
        """
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            discard_stdout()
            sys.exit(int(ExitCode.OK))


def discard_stdout() -> None:
    """Point stdout at /dev/null once its reader has gone, so no later write or the
    interpreter's last flush fails on the closed pipe."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


@click.group(
    cls=OneLineErrors,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="fleetscale")
def main() -> None:
    """Run an autoscaled fleet of Python workers on Redis streams, sized to a wait target.

    \b
    Examples:
      fleetscale demo
      fleetscale controller myproject.tasks:app --target-p99 500ms --max 32
      fleetscale status media --watch
    """
