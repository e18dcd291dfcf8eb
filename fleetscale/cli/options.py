"""Options and error handling shared by every command, defined once."""

from __future__ import annotations

import functools
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import click

from fleetscale.config import REDIS_URL_ENV, RedisSettings, parse_duration, resolve_redis_url
from fleetscale.errors import (
    ConfigurationError,
    FleetscaleError,
    RedisAuthError,
    RedisUnavailable,
    SubmitError,
)
from fleetscale.exitcode import ExitCode
from fleetscale.histogram import MAX_VALUE_S
from fleetscale.keys import validate_fleet_name
from fleetscale.logs import configure_logging
from fleetscale.plotting import pyplot

P = ParamSpec("P")
R = TypeVar("R")


def duration_text(seconds: float) -> str:
    """`seconds` as a user would type it, in the largest unit that holds it whole:
    0 → `0s`, 0.01 → `10ms`, 90 → `90s`, 600 → `10m`, 86400 → `24h`."""
    for unit, size in (("h", 3600.0), ("m", 60.0), ("s", 1.0)):
        if seconds >= size and (seconds / size).is_integer():
            return f"{round(seconds / size)}{unit}"
    return f"{seconds * 1000:g}ms" if seconds else "0s"


def range_text(least_s: float, most_s: float) -> str:
    """A range of durations as a user would type them, e.g. `from 1s to 15m`."""
    return f"from {duration_text(least_s)} to {duration_text(most_s)}"


class Duration(click.ParamType):  # type: ignore[type-arg]  # generic in newer click only
    """A duration option's type: `250ms`, `2s`, `1m`, `1h` or seconds, read as seconds
    and refused outside [`least_s`, `most_s`] with an error that says the range.

    A type rather than a callback, so `controller --worker-args` checks a worker's values
    with the worker's own types without running its callbacks (which set up logging).
    """

    name = "duration"

    def __init__(self, least_s: float = 0.0, most_s: float = math.inf) -> None:
        self.least_s = least_s
        self.most_s = most_s

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        try:
            seconds = parse_duration(value)
        except ConfigurationError as exc:
            self.fail(str(exc), param, ctx)
        if not self.least_s <= seconds <= self.most_s:
            self.fail(f"{value!r} is out of range: use {range_text(self.least_s, self.most_s)}",
                      param, ctx)  # fmt: skip
        return seconds


def duration_option(
    *decls: str, default: str | None, least_s: float, most_s: float, help_text: str
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """A duration option (`250ms`, `2s`, `1m`, `1h` or seconds; read as seconds) refused
    outside [`least_s`, `most_s`] with a usage error naming it, so a typo such as `1e12`
    never reaches a run; its help ends with the range."""
    return click.option(
        *decls,
        default=default,
        show_default=default is not None,
        type=Duration(least_s, most_s),
        metavar="DURATION",
        help=f"{help_text}, {range_text(least_s, most_s)}.",
    )


def target_p99_option(help_text: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """`--target-p99`, default 500ms, within what a policy takes: more than 0 and at
    most the longest wait measured (a longer target could never be missed)."""
    return duration_option(
        "--target-p99", default="500ms", least_s=0.001, most_s=MAX_VALUE_S, help_text=help_text
    )


def check_min_max(min_workers: int, max_workers: int) -> None:
    """Refuse `--min` above `--max`, naming both (a policy would name its keys)."""
    if min_workers > max_workers:
        raise click.BadParameter(
            f"{min_workers} is above --max {max_workers}: need --min ≤ --max", param_hint="--min"
        )


def writable_parent(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """Click callback for an output file: its directory must exist and be writable.

    Checked when the command line is read, so a long run never ends in a failed write.
    """
    if value is None:
        return None
    if not value.name:
        raise click.BadParameter("give a file name, e.g. run.png", ctx, param)
    parent = value.parent
    if not parent.is_dir():
        raise click.BadParameter(f"directory {str(parent)!r} does not exist", ctx, param)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise click.BadParameter(f"directory {str(parent)!r} is not writable", ctx, param)
    return value


def _plot_target(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """Click callback for `--plot`: a writable place, a PNG name and matplotlib to draw
    with, all checked before the run (matplotlib refused other suffixes only at the end
    of it, and wrote a name without one to `name.png`)."""
    target = writable_parent(ctx, param, value)
    if target is not None and target.suffix.lower() != ".png":
        raise click.BadParameter(f"{str(target)!r}: give a name ending in .png", ctx, param)
    if target is not None:
        try:
            pyplot()
        except ConfigurationError as exc:
            raise click.BadParameter(str(exc), ctx, param) from None
    return target


def plot_option(help_text: str, name: str = "plot") -> Callable[[Callable[P, R]], Callable[P, R]]:
    """`--plot FILE`: a PNG to write, its directory and matplotlib checked up front."""
    return click.option(
        "--plot",
        name,
        type=click.Path(dir_okay=False, writable=True, path_type=Path),
        callback=_plot_target,
        help=help_text,
    )


def fleet_argument(fn: Callable[P, R]) -> Callable[P, R]:
    """The FLEET argument, validated."""

    def check(ctx: click.Context, param: click.Parameter, value: str) -> str:
        try:
            return validate_fleet_name(value)
        except ConfigurationError as exc:
            raise click.BadParameter(str(exc), param_hint="FLEET") from None

    return click.argument("fleet", callback=check)(fn)


class FleetGroup(click.Group):
    """A command group whose first argument is the FLEET, before the command
    (`fleetscale dlq FLEET list`).

    Without a fleet, click took the command's name for the fleet and then reported
    "Missing command" (`dlq list`), "No such option" (`dlq list --json`), or printed the
    whole help as the error (`dlq`); those now name the missing FLEET and the call.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Refuse a call without a FLEET before its command; else parse as click does."""
        named = bool(args) and args[0] in self.commands
        fleet_missing = not args or (named and (len(args) < 2 or args[1] not in self.commands))
        commands = "{" + "|".join(self.commands) + "}"
        asks_help = any(a in ctx.help_option_names for a in args)
        if fleet_missing and not asks_help:
            raise click.UsageError(
                f"missing FLEET: name the fleet before the command, as in "
                f"{ctx.command_path} FLEET {args[0] if named else commands}",
                ctx,
            )
        if len(args) == 1 and not asks_help:
            raise click.UsageError(
                f"missing the command after the fleet: {ctx.command_path} {args[0]} {commands}",
                ctx,
            )
        return super().parse_args(ctx, args)


def refuse_empty_url(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """An explicit `--redis-url ""` (an unset shell variable) is an error, not the default."""
    if value == "":
        raise click.BadParameter("is empty: give one such as redis://localhost:6379/0", ctx, param)
    return value


redis_url_option = click.option(
    "--redis-url",
    envvar=REDIS_URL_ENV,
    callback=refuse_empty_url,
    show_envvar=True,
    metavar="URL",
    help="Redis URL (redis://, rediss:// with TLS; user:password@ for ACL). "
    "Default redis://localhost:6379/0.",
)

json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")


def logging_options(fn: Callable[P, R]) -> Callable[P, R]:
    """`--log-level` and `--log-format`, applied before the command runs."""

    def apply_level(ctx: click.Context, param: click.Parameter, value: str) -> str:
        ctx.meta["fleetscale.log_level"] = value
        return value

    def apply_format(ctx: click.Context, param: click.Parameter, value: str) -> str:
        level = ctx.meta.get("fleetscale.log_level", "info")
        configure_logging(level, value)
        # Worker processes a controller starts inherit the same logging.
        os.environ["FLEETSCALE_LOG_LEVEL"], os.environ["FLEETSCALE_LOG_FORMAT"] = level, value
        return value

    fn = click.option(
        "--log-format",
        type=click.Choice(["text", "json"]),
        default="text",
        show_default=True,
        envvar="FLEETSCALE_LOG_FORMAT",
        expose_value=False,
        callback=apply_format,
        help="Log lines as text or JSON objects.",
    )(fn)
    return click.option(
        "--log-level",
        type=click.Choice(["debug", "info", "warning", "error"]),
        default="info",
        show_default=True,
        envvar="FLEETSCALE_LOG_LEVEL",
        expose_value=False,
        is_eager=True,
        callback=apply_level,
        help="Least severe log level shown.",
    )(fn)


def redis_settings(redis_url: str | None) -> RedisSettings:
    """Settings for the resolved URL (flag > env > default)."""
    return RedisSettings(url=resolve_redis_url(redis_url, os.environ)).validate()


def exit_code_for(exc: FleetscaleError) -> ExitCode:
    """The named exit code for an error a user can cause."""
    if isinstance(exc, RedisUnavailable):
        return ExitCode.REDIS_UNREACHABLE
    if isinstance(exc, ConfigurationError | RedisAuthError | SubmitError):
        return ExitCode.USAGE
    return ExitCode.FAILURE


def fail(message: str, code: ExitCode) -> None:
    """Print one line to stderr and exit with `code`."""
    click.echo(f"fleetscale: error: {message}", err=True)
    sys.exit(int(code))


def reports_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn a FleetscaleError into one line on stderr and its named exit code."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except FleetscaleError as exc:
            fail(str(exc), exit_code_for(exc))
            raise AssertionError("unreachable") from None

    return wrapper
