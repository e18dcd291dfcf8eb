"""The worker's stop signals, in a child interpreter (an exit at once would end pytest)."""

from __future__ import annotations

import subprocess
import sys

DRAINED_THEN_SIGNALLED = """
import signal, threading
from fleetscale.worker.process import install_signal_handlers

class Consumer:  # what the handlers use of the worker's consumer
    draining = False
    def drain(self):
        self.draining = True

consumer = Consumer()
install_signal_handlers(consumer, threading.Event())
consumer.drain()  # the housekeeper found the controller gone
signal.raise_signal(signal.SIGTERM)
print("still draining", flush=True)
signal.raise_signal(signal.SIGTERM)
print("not reached", flush=True)
"""


def test_a_drain_not_asked_by_a_signal_leaves_the_first_sigterm_a_drain() -> None:
    # A worker drains on its own when its controller dies. The SIGTERM that follows
    # (the kernel's parent-death signal, held back while a task was in a long C call,
    # or a supervisor stopping it) was taken for the second one and ended the worker
    # at once, with its finished jobs unacknowledged.
    run = subprocess.run(
        [sys.executable, "-c", DRAINED_THEN_SIGNALLED], capture_output=True, timeout=60, check=False
    )
    assert run.stdout.decode().splitlines() == ["still draining"], run.stderr.decode()
    assert run.returncode == 1, "the second SIGTERM still exits at once"


HANGUP_THEN_SIGNALLED = """
import signal, sys, threading
from fleetscale.worker.process import install_signal_handlers

if sys.argv[1:] == ["nohup"]:
    signal.signal(signal.SIGHUP, signal.SIG_IGN)

class Consumer:  # what the handlers use of the worker's consumer
    draining = False
    def drain(self):
        self.draining = True

consumer = Consumer()
install_signal_handlers(consumer, threading.Event())
signal.raise_signal(signal.SIGHUP)
print("draining" if consumer.draining else "not draining", flush=True)
signal.raise_signal(signal.SIGTERM)
print("not reached", flush=True)
"""


def test_a_closed_terminal_drains_a_worker_run_by_hand() -> None:
    # SIGHUP's default action ended a worker started from a terminal at once when the
    # terminal closed, mid-job, its registration left to lapse.
    run = subprocess.run(
        [sys.executable, "-c", HANGUP_THEN_SIGNALLED], capture_output=True, timeout=60, check=False
    )
    assert run.stdout.decode().splitlines() == ["draining"], run.stderr.decode()
    assert run.returncode == 1, "a SIGTERM after it is a second stop signal: exit at once"


def test_a_worker_started_with_nohup_keeps_ignoring_a_closed_terminal() -> None:
    run = subprocess.run(
        [sys.executable, "-c", HANGUP_THEN_SIGNALLED, "nohup"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert run.stdout.decode().splitlines()[0] == "not draining", run.stderr.decode()
