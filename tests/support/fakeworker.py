"""A stand-in worker process for supervisor tests: speaks the status-pipe protocol.

FAKE_MODE: `ok` (default), `fail` (reports an error and exits 2 while starting),
`stubborn` (ignores SIGTERM and the controller's drain signal), `crash` (exits 1 soon
after becoming ready).
"""

from __future__ import annotations

import os
import signal
import sys
import time

fd = int(os.environ["FLEETSCALE_STATUS_FD"])
mode = os.environ.get("FAKE_MODE", "ok")
state = {"go": False, "stop": False}


def on_go(signum: int, frame: object) -> None:
    state["go"] = True


def on_stop(signum: int, frame: object) -> None:
    if mode != "stubborn":
        state["stop"] = True


signal.signal(signal.SIGUSR1, on_go)
signal.signal(signal.SIGTERM, on_stop)
signal.signal(signal.SIGUSR2, on_stop)  # the controller's drain (DRAIN_SIGNAL)
if mode == "fail":
    os.write(fd, b"error cannot import 'app': no module named 'app'\n")
    sys.exit(2)
if "--warm" in sys.argv:
    os.write(fd, f"warm {time.monotonic()}\n".encode())
    while not state["go"] and not state["stop"]:
        time.sleep(0.01)
os.write(fd, f"ready {time.monotonic()}\n".encode())
started = time.monotonic()
while not state["stop"]:
    if mode == "crash" and time.monotonic() - started > 0.2:
        sys.exit(1)
    time.sleep(0.01)
