"""Stand-in zygotes for fork-server tests: no app, no Redis.

`python standin_zygote.py serve DRAIN_S` runs the real `fleetscale.worker.zygote.serve`
with a stand-in worker that reports ready, dies with its zygote (SIGTERM) and takes
DRAIN_S seconds to drain. `python standin_zygote.py reuse PID` speaks the control
protocol only: every request gets `pid PID` (as if the system reused the pid), and the
first one's exit is reported at once.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time

from fleetscale.exitcode import ExitCode
from fleetscale.worker.lifeline import STATUS_FD_ENV, Lifeline
from fleetscale.worker.zygote import CONTROL_FD_ENV, RunWorker, serve


def standin_worker(drain_s: float) -> RunWorker:
    def run(warm: bool, lifeline: Lifeline) -> ExitCode:
        stop: list[float] = []
        signal.signal(signal.SIGTERM, lambda signum, frame: stop.append(time.monotonic()))
        lifeline.die_with_parent()
        lifeline.reached("ready")
        while not stop or time.monotonic() - stop[0] < drain_s:
            time.sleep(0.01)
        return ExitCode.OK

    return run


def reuse(control: socket.socket, pid: int) -> None:
    os.write(int(os.environ[STATUS_FD_ENV]), b"ready\n")
    first = True
    while True:
        message, fds, _, _ = socket.recv_fds(control, 64, 1)
        if not message:
            return
        for fd in fds:
            os.close(fd)
        control.send(f"pid {pid}".encode())
        if first:
            control.send(f"exit {pid} 0".encode())
            first = False


if __name__ == "__main__":
    control = socket.socket(fileno=int(os.environ[CONTROL_FD_ENV]))
    if sys.argv[1] == "serve":
        run = standin_worker(float(sys.argv[2]))
        sys.exit(int(serve(control, Lifeline.from_environ(os.environ), run)))
    reuse(control, int(sys.argv[2]))
