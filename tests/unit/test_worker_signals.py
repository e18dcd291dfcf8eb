"""The worker's stop signals, in a child interpreter (an exit at once would end pytest)."""

from __future__ import annotations

import subprocess
import sys

WORKER = """
import signal, sys, threading
from fleetscale.worker.process import install_signal_handlers

class Consumer:  # what the handlers use of the worker's consumer
    draining = False
    def drain(self):
        self.draining = True

if sys.argv[1:] == ["nohup"]:
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
consumer = Consumer()
install_signal_handlers(consumer, threading.Event())
"""

DRAINED_THEN_SIGNALLED = """
consumer.drain()  # the housekeeper found the controller gone
signal.raise_signal(signal.SIGTERM)
print("still draining", flush=True)
signal.raise_signal(signal.SIGTERM)
print("not reached", flush=True)
"""

HANGUP_THEN_SIGNALLED = """
signal.raise_signal(signal.SIGHUP)
print("draining" if consumer.draining else "not draining", flush=True)
signal.raise_signal(signal.SIGTERM)
print("not reached", flush=True)
"""


def run_worker(script: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    """Run `script` after a stand-in worker installed its signal handlers."""
    return subprocess.run(
        [sys.executable, "-c", WORKER + script, *args], capture_output=True, timeout=60, check=False
    )


def test_a_drain_not_asked_by_a_signal_leaves_the_first_sigterm_a_drain() -> None:
    # A worker drains on its own when its controller dies. The SIGTERM that follows
    # (the kernel's parent-death signal, held back while a task was in a long C call,
    # or a supervisor stopping it) was taken for the second one and ended the worker
    # at once, with its finished jobs unacknowledged.
    run = run_worker(DRAINED_THEN_SIGNALLED)
    assert run.stdout.decode().splitlines() == ["still draining"], run.stderr.decode()
    assert run.returncode == 1, "the second SIGTERM still exits at once"


def test_a_closed_terminal_drains_a_worker_run_by_hand() -> None:
    # SIGHUP's default action ended a worker started from a terminal at once when the
    # terminal closed, mid-job, its registration left to lapse.
    run = run_worker(HANGUP_THEN_SIGNALLED)
    assert run.stdout.decode().splitlines() == ["draining"], run.stderr.decode()
    assert run.returncode == 1, "a SIGTERM after it is a second stop signal: exit at once"


def test_a_worker_started_with_nohup_keeps_ignoring_a_closed_terminal() -> None:
    run = run_worker(HANGUP_THEN_SIGNALLED, "nohup")
    assert run.stdout.decode().splitlines()[0] == "not draining", run.stderr.decode()
