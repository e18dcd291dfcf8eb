"""The demo's task app. Its ledger (outside Redis) lets the demo count what ran."""

from __future__ import annotations

import os
import time

from fleetscale.app import App

DEMO_FLEET = "demo"
LEDGER_ENV = "FLEETSCALE_DEMO_LEDGER"

app = App(DEMO_FLEET)


@app.task
def work(key: str, seconds: float) -> None:
    """The demo job: note the start in the ledger, then sleep `seconds` (I/O-bound work)."""
    with open(os.environ.get(LEDGER_ENV, os.devnull), "a") as ledger:
        ledger.write(f"{key} {time.time():.6f}\n")
    time.sleep(seconds)
