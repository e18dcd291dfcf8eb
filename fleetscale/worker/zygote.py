"""A preloaded parent that forks workers on request (the worker side of the fork server).

Started by a controller as `fleetscale worker APP --zygote`: it imports the app and
fleetscale once, opens no connection and starts no thread, then waits on a control
socket. For each request (`warm` or `cold`, with the new worker's status pipe passed
as a file descriptor) it forks; the child runs a normal worker, so a new worker is
consuming within milliseconds instead of paying a fresh interpreter's start-up on a
busy host. The zygote reaps its children and reports each exit (`exit <pid> <code>`);
a child exits as `fleetscale worker` would (one error line, the named exit code), and
holds none of the zygote's own descriptors.
It exits when the controller closes the socket or dies, not on a SIGTERM of its own
while the controller lives; its children drain on their own when it dies (they die
with their parent, see `lifeline`).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import sys
import traceback
from collections.abc import Callable

from fleetscale.exitcode import ExitCode
from fleetscale.worker.lifeline import Lifeline

CONTROL_FD_ENV = "FLEETSCALE_ZYGOTE_FD"

RunWorker = Callable[[bool, Lifeline], ExitCode]
"""Runs one worker in a forked child: (warm, lifeline) → exit code."""


def serve(control: socket.socket, lifeline: Lifeline, run_worker: RunWorker) -> ExitCode:
    """Fork workers on request until the control socket closes or the parent dies."""
    lifeline.die_with_parent()
    signal.signal(signal.SIGTERM, lambda signum, frame: _exit_if_orphaned(lifeline))
    lifeline.reached("ready")
    while lifeline.parent_alive():
        readable, _, _ = select.select([control], [], [], 0.2)
        report_exits(control)
        if not readable:
            continue
        try:
            message, fds, _, _ = socket.recv_fds(control, 64, 1)
        except OSError:
            break
        if not message:
            break
        pid = fork_worker(
            control, fds, warm=message == b"warm", lifeline=lifeline, run_worker=run_worker
        )
        control.send(f"pid {pid}".encode())
    return ExitCode.OK


def _exit_if_orphaned(lifeline: Lifeline) -> None:
    """On SIGTERM: exit if the controller is gone (the parent-death signal); else wait
    for the controller to close the socket. A SIGTERM sent to the whole process group
    must not end the zygote before its children: they would take their parent's death
    for a second stop signal and exit mid-job."""
    if not lifeline.parent_alive():
        os._exit(ExitCode.OK)


def fork_worker(
    control: socket.socket, fds: list[int], *, warm: bool, lifeline: Lifeline, run_worker: RunWorker
) -> int:
    """Fork one worker whose status pipe is `fds[0]`; return its pid (parent side)."""
    pid = os.fork()
    if pid:
        for fd in fds:
            os.close(fd)
        return pid
    code: int = ExitCode.FAILURE
    try:
        control.close()
        if lifeline.status_fd is not None:  # the zygote's own status pipe
            with contextlib.suppress(OSError):
                os.close(lifeline.status_fd)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        child_line = Lifeline(status_fd=fds[0], parent_pid=os.getppid(), host_id=lifeline.host_id)
        code = run_worker(warm, child_line)
    except SystemExit as exc:  # an error reported as one line, with its exit code
        code = exc.code if isinstance(exc.code, int) else ExitCode.FAILURE
    except BaseException:
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)


def report_exits(control: socket.socket) -> None:
    """Reap every exited child and tell the controller (`exit <pid> <code>`)."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        try:
            control.send(f"exit {pid} {os.waitstatus_to_exitcode(status)}".encode())
        except OSError:
            return
