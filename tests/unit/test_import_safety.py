"""Importing fleetscale has no side effects: no socket, no file written, no metric."""

from __future__ import annotations

import subprocess
import sys

PROBE = r"""
import sys
events = []
def hook(event, args):
    writing = event == "open" and len(args) > 1 and any(c in str(args[1]) for c in "wax+")
    if event.startswith("socket.") or writing:
        events.append((event, str(args)[:80]))
sys.addaudithook(hook)
import pkgutil, importlib, fleetscale
for mod in pkgutil.walk_packages(fleetscale.__path__, "fleetscale."):
    if mod.name != "fleetscale.__main__":
        importlib.import_module(mod.name)
import prometheus_client
names = [m.name for m in prometheus_client.REGISTRY.collect() if m.name.startswith("fleetscale")]
print(repr((events, names)))
"""


def test_importing_every_module_opens_no_socket_writes_no_file_and_registers_no_metric() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True
    )
    events, metrics = eval(result.stdout.strip().splitlines()[-1])
    assert events == [], events
    assert metrics == [], metrics
