"""The `fleetscale` click group and the registration of every command."""

from __future__ import annotations

import click

from fleetscale import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="fleetscale")
def main() -> None:
    """Run an autoscaled fleet of Python workers on Redis streams.

    \b
    Example:
      fleetscale worker myapp.tasks:app --redis-url redis://localhost:6379/0
    """
