"""The `fleetscale` command line: the composition root.

Each command parses its options, builds settings and objects, and calls the library; no
logic lives here. Commands live one per module and register on `main`.
"""

from fleetscale.cli import controller, demo, dlq, explain, policy, simulate, status, submit, worker
from fleetscale.cli.root import main

__all__ = [
    "controller",
    "demo",
    "dlq",
    "explain",
    "main",
    "policy",
    "simulate",
    "status",
    "submit",
    "worker",
]
