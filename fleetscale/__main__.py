"""`python -m fleetscale` runs the CLI."""

from fleetscale.cli import main

main(prog_name="fleetscale")
