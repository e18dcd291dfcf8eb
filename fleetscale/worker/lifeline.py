"""How a worker started by a controller talks to it, and dies with it.

The controller passes two environment variables: the write end of a status pipe, on
which the worker reports `warm <t>`, `ready <t>`, `stopping <t>` (it drains; t: when,
on the system's monotonic clock, which parent and child share) or `error <message>`
(one line each), and its own pid. The worker asks the kernel to send it SIGTERM (a
drain) when its parent dies (Linux `PR_SET_PDEATHSIG`), and its housekeeper also checks
the parent pid, so no worker outlives its controller by more than a drain. It ignores
SIGINT and SIGHUP: Ctrl-C and a terminal's hangup reach the whole foreground process
group, and the controller, which gets them too, drains its workers (SIGHUP would end
one at once). The controller asks for a drain with `DRAIN_SIGNAL`, not SIGTERM: a
SIGTERM sent to the whole process group (systemd's default KillMode, `timeout`) reaches
the workers too, and they would take their controller's SIGTERM as a second stop signal
and exit mid-job.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass

from fleetscale.worker.watchdog import in_main_thread

STATUS_FD_ENV = "FLEETSCALE_STATUS_FD"
PARENT_PID_ENV = "FLEETSCALE_PARENT_PID"
HOST_ID_ENV = "FLEETSCALE_HOST_ID"
DRAIN_SIGNAL = signal.SIGUSR2
"""How a controller asks its worker to drain: however often it comes, never an exit."""
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True, slots=True)
class Lifeline:
    """A worker's link to the controller that started it (all None when standalone).

    Attributes:
        status_fd: where to write status lines.
        parent_pid: the controller's pid.
        host_id: the controller's host id, which names the worker's host.
    """

    status_fd: int | None = None
    parent_pid: int | None = None
    host_id: str | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Lifeline:
        """Read the link from the environment the controller set."""
        fd, parent = environ.get(STATUS_FD_ENV), environ.get(PARENT_PID_ENV)
        return cls(
            int(fd) if fd else None, int(parent) if parent else None, environ.get(HOST_ID_ENV)
        )

    def reached(self, phase: str) -> None:
        """Tell the controller the worker is now `warm`, `ready` or `stopping`, and when."""
        self.report(f"{phase} {time.monotonic():.6f}")

    def report(self, status: str) -> None:
        """Tell the controller `status` (a phase, or `error …`); never raises."""
        if self.status_fd is None:
            return
        line = status.replace("\n", " ")[:500] + "\n"
        with contextlib.suppress(OSError):
            os.write(self.status_fd, line.encode())

    def parent_alive(self) -> bool:
        """False once the controller that started this worker has gone."""
        return self.parent_pid is None or os.getppid() == self.parent_pid

    def die_with_parent(self) -> None:
        """Get SIGTERM when the parent dies (Linux), and leave SIGINT and SIGHUP to the
        parent; drain now if it has already gone."""
        if self.parent_pid is None:
            return
        if in_main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
        if sys.platform.startswith("linux"):
            with contextlib.suppress(OSError, AttributeError):
                libc = ctypes.CDLL(None, use_errno=True)
                libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if not self.parent_alive():
            os.kill(os.getpid(), signal.SIGTERM)
