"""The task app of the fault suite: every task notes what it does in the ledger.

The fleet, the ledger directory and any injected clock skew come from the environment
(`FAULTS_FLEET`, `FAULTS_LEDGER`, `FAULTS_SKEW_S`), so each row gets its own. A worker
run under the skewed-clock shim subtracts the skew, so the ledger keeps true time while
fleetscale itself sees the wrong clock. The first argument of every task is the job's
key, unique per job.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from fleetscale.app import App
from tests.faults.ledger import DONE, START, WORKER_FILE, append_line

app = App(os.environ.get("FAULTS_FLEET", "faults"))
LEDGER_DIR = Path(os.environ.get("FAULTS_LEDGER", os.devnull))
SKEW_S = float(os.environ.get("FAULTS_SKEW_S", "0"))
HANG_FOREVER_S = 3600.0


def note(kind: str, key: str) -> None:
    """Write a worker-side ledger line for `key` (true wall time)."""
    if str(LEDGER_DIR) != os.devnull:
        append_line(LEDGER_DIR / WORKER_FILE, kind, key, time.time() - SKEW_S)


@app.task
def work(key: str, sleep_s: float = 0.0, pad: str = "") -> None:
    """Note the start, sleep `sleep_s` seconds (standing in for work), note the end.

    `pad` only makes the job bigger (memory pressure rows).
    """
    note(START, key)
    if sleep_s:
        time.sleep(sleep_s)
    note(DONE, key)


@app.task(max_attempts=3)
def poison(key: str) -> None:
    """Kill the worker process running it, every time (a poison job)."""
    note(START, key)
    os._exit(9)


@app.task(max_attempts=2, timeout_s=0.5)
def hang(key: str, hard: bool = False) -> None:
    """Never return. `hard` also blocks the time-limit signal, as a C call would."""
    note(START, key)
    if hard:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
    time.sleep(HANG_FOREVER_S)
    note(DONE, key)


@app.task
def effect_then_crash(key: str) -> None:
    """Do the side effect, then crash before the ack — on the first run only."""
    note(START, key)
    note(DONE, key)
    try:
        marker = os.open(LEDGER_DIR / f"crashed-{key}", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    os.close(marker)
    os._exit(9)
