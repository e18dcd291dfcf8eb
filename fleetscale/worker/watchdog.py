"""Per-job time limits, enforced from outside the job.

The main thread arms the watchdog before a task runs and disarms it after; that is two
attribute writes, nothing on the hot path. The housekeeper thread calls `check` about
ten times a second: past the soft deadline it sends SIGALRM to the main thread, whose
handler raises `JobTimeout` inside the task; a task stuck where Python cannot interrupt
it (a C call) is still running at the hard deadline, and then the process exits so the
job is redelivered and counted as an attempt. Before it exits, it runs `before_exit`
(the housekeeper settles the jobs the worker had finished, which would otherwise run
again).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType

log = logging.getLogger("fleetscale.worker")

HARD_GRACE_S = 5.0
"""Seconds past a job's time limit before an unresponsive worker exits."""


class JobTimeout(BaseException):
    """Raised inside a task that ran past its `timeout_s`.

    A BaseException, like KeyboardInterrupt, so that a task's `except Exception`
    does not swallow it.
    """


class Watchdog:
    """Enforces the running job's time limit (see the module docstring).

    Args:
        main_thread_id: the thread that runs tasks (gets SIGALRM).
        hard_exit: exit the process at the hard deadline; False where the watchdog
            shares a process with other work (tests).
        monotonic: the clock.
    """

    def __init__(
        self,
        main_thread_id: int,
        *,
        hard_exit: bool,
        exit_code: int,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.main_thread_id = main_thread_id
        self.hard_exit = hard_exit
        self.exit_code = exit_code
        self.monotonic = monotonic
        self.deadline: float | None = None
        self.limit_s = 0.0
        self.signalled = False
        self.before_exit: Callable[[], None] | None = None

    def arm(self, timeout_s: float, started_s: float) -> None:
        """Start the clock of a job limited to `timeout_s`, started at monotonic
        `started_s` (main thread)."""
        self.signalled = False
        self.limit_s = timeout_s
        self.deadline = started_s + timeout_s

    def disarm(self) -> None:
        """The job has returned (main thread)."""
        self.deadline = None

    def expired(self) -> bool:
        """Whether the armed job is past its soft deadline (any thread)."""
        deadline = self.deadline
        return deadline is not None and self.monotonic() >= deadline

    def check(self) -> None:
        """Interrupt or end an overdue job (housekeeper thread)."""
        deadline = self.deadline
        if deadline is None:
            return
        late_s = self.monotonic() - deadline
        if late_s >= max(HARD_GRACE_S, 0.1 * self.limit_s) and self.hard_exit:
            log.error("job ignored its %.1fs time limit by %.1fs; exiting", self.limit_s, late_s)
            try:
                if self.before_exit is not None:
                    self.before_exit()
            finally:
                os._exit(self.exit_code)
        if late_s >= 0 and not self.signalled:
            self.signalled = True
            signal.pthread_kill(self.main_thread_id, signal.SIGALRM)

    def install(self) -> None:
        """Install the SIGALRM handler that raises `JobTimeout` (main thread only)."""

        def on_alarm(signum: int, frame: FrameType | None) -> None:
            if self.expired():
                raise JobTimeout(f"ran past its time limit of {self.limit_s:g}s")

        signal.signal(signal.SIGALRM, on_alarm)


def in_main_thread() -> bool:
    """Whether the caller is the main thread (signal handlers only run there)."""
    return threading.current_thread() is threading.main_thread()
