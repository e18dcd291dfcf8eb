"""Start workers by forking a preloaded parent (the controller side of the fork server).

`ForkServer` is a supervisor `Launcher`: it keeps one zygote process
(`fleetscale worker APP --zygote`, see `fleetscale.worker.zygote`) and asks it to fork
each new worker, passing the worker's status pipe over a Unix socket. A forked worker
takes jobs within milliseconds even when many start at once on a busy host, where a
fresh interpreter each would take seconds. If the zygote cannot start (say the app
fails to import), the launch raises `SpawnError`, which the supervisor backs off on;
the next launch starts a new zygote, so fixed code is picked up. Restart the
controller to deploy new task code: running zygotes keep what they imported.
A controller's fork server waits for no zygote (`wait_s=0`): while the zygote imports
the app (seconds for a big one), a launch raises `StartPending` and the controller's
loop carries on (leader lease, heartbeats); a later launch forks once it is ready.
If the zygote dies, its workers drain (they die with their parent); they report it, so
the supervisor replaces them at once, forked from a new zygote.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from fleetscale.controller.supervisor import Launcher, SpawnError, StartPending, WorkerProcess
from fleetscale.exitcode import ExitCode
from fleetscale.worker.lifeline import STATUS_FD_ENV
from fleetscale.worker.zygote import CONTROL_FD_ENV

log = logging.getLogger("fleetscale.controller")

StartZygote = Callable[[int, int], "subprocess.Popen[bytes]"]
"""Starts the zygote: (status pipe write fd, control socket fd) → process."""

ZYGOTE_START_TIMEOUT_S = 600.0
"""The longest a zygote may take to import the app and report ready, seconds."""


@dataclass
class StartingZygote:
    """A zygote started but not yet ready.

    Attributes:
        process: the zygote.
        status_fd: the read end of its status pipe (non-blocking).
        control: our end of its control socket.
        started_s: when it was started, monotonic seconds.
        received: what it has reported so far.
    """

    process: subprocess.Popen[bytes]
    status_fd: int
    control: socket.socket
    started_s: float
    received: bytes = b""

    def first_line(self) -> str | None:
        """Its first status line (`ready …`, `error …`; '' if it exited without one),
        or None while it is still starting."""
        while b"\n" not in self.received:
            try:
                chunk = os.read(self.status_fd, 4096)
            except BlockingIOError:
                if self.process.poll() is not None:
                    break
                if time.monotonic() - self.started_s > ZYGOTE_START_TIMEOUT_S:
                    return (
                        f"error the worker fork server was not ready within "
                        f"{ZYGOTE_START_TIMEOUT_S:.0f}s (is importing the app stuck?)"
                    )
                return None
            if not chunk:
                break
            self.received += chunk
        return self.received.split(b"\n", 1)[0].decode(errors="replace")

    def wait(self, timeout_s: float) -> str | None:
        """`first_line()`, waiting up to `timeout_s` for it."""
        deadline = time.monotonic() + timeout_s
        while (line := self.first_line()) is None and time.monotonic() < deadline:
            select.select([self.status_fd], [], [], min(0.1, max(0.0, deadline - time.monotonic())))
        return line

    def close(self) -> None:
        """Close our ends of the pipe and socket."""
        os.close(self.status_fd)
        self.control.close()


class ForkedWorker:
    """A worker forked by the zygote: not our child, so its exit comes as a report.

    Attributes:
        pid: the process id.
        zygote: the generation of the zygote that forked it (see `ForkServer`).
        identity: its start time as the system records it (None where unknown), so a
            later process given the same pid is never taken for it.
    """

    def __init__(self, pid: int, server: ForkServer, zygote: int, identity: str | None) -> None:
        self.pid = pid
        self.server = server
        self.zygote = zygote
        self.identity = identity
        self.returncode: int | None = None

    def poll(self) -> int | None:
        """The exit code once its zygote reported the exit (-1 when that zygote is gone
        and so is the worker), else None."""
        if self.returncode is None:
            self.server.pump()
            self.returncode = self.server.exit_of(self)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the exit; raises subprocess.TimeoutExpired after `timeout` s."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"worker {self.pid}", timeout or 0.0)
            time.sleep(0.01)
        return code

    def kill(self) -> None:
        """SIGKILL, unless it has already exited (its pid may have been reused)."""
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)


class ForkServer:
    """A launcher that forks workers from one preloaded zygote (one thread only).

    Each zygote started is a new generation. Its exit reports are kept per generation
    and pid until the worker's handle takes them; the workers of a zygote that is gone
    are looked up in the system, by pid and start time.

    Args:
        start_zygote: starts a zygote process.
        wait_s: how long a launch waits for a starting zygote before it raises
            `StartPending`, seconds (0 in a controller: its loop must not block).
    """

    def __init__(self, start_zygote: StartZygote, wait_s: float = ZYGOTE_START_TIMEOUT_S) -> None:
        self.start_zygote = start_zygote
        self.wait_s = wait_s
        self.starting: StartingZygote | None = None
        self.zygote: subprocess.Popen[bytes] | None = None
        self.control: socket.socket | None = None
        self.generation = 0
        self.exits: dict[tuple[int, int], int] = {}

    def __call__(self, *, warm: bool, status_fd: int) -> WorkerProcess:
        control = self._ready_zygote()
        try:
            socket.send_fds(control, [b"warm" if warm else b"cold"], [status_fd])
            pid = self._await_pid(control)
        except OSError as exc:
            self.close()
            raise SpawnError(f"the fork server failed: {exc}") from None
        return ForkedWorker(pid, self, self.generation, _start_time(pid))

    def exit_of(self, worker: ForkedWorker) -> int | None:
        """`worker`'s exit code if it has exited (taken: reported once), else None."""
        code = self.exits.pop((worker.zygote, worker.pid), None)
        if code is not None:
            return code
        zygote_gone = self.control is None or worker.zygote != self.generation
        if zygote_gone and not _same_process(worker.pid, worker.identity):
            return -1
        return None

    def _ready_zygote(self) -> socket.socket:
        zygote, control = self.zygote, self.control
        if zygote is not None and control is not None:
            if zygote.poll() is None:
                return control
            self._zygote_gone()
        starting = self.starting or self._start()
        line = starting.wait(self.wait_s)
        if line is None:
            raise StartPending("the worker fork server is importing the app")
        self.starting = None
        if not line.startswith("ready"):
            starting.process.kill()
            code = starting.process.wait()
            starting.close()
            raise SpawnError(line.removeprefix("error ") or _silent_exit(code))
        os.close(starting.status_fd)
        self.zygote, self.control = starting.process, starting.control
        log.info("worker fork server (pid %d) ready after %.1fs; new workers fork from it "
                 "and run the task code it imported: restart the controller to run new code",
                 starting.process.pid, time.monotonic() - starting.started_s)  # fmt: skip
        return starting.control

    def _start(self) -> StartingZygote:
        """Start a new zygote (a new generation)."""
        self.close()
        self.generation += 1
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        read_fd, write_fd = os.pipe()
        os.set_blocking(read_fd, False)
        try:
            process = self.start_zygote(write_fd, theirs.fileno())
        except BaseException:
            os.close(read_fd)
            ours.close()
            raise
        finally:
            os.close(write_fd)
            theirs.close()
        self.starting = StartingZygote(process, read_fd, ours, time.monotonic())
        return self.starting

    def _await_pid(self, control: socket.socket) -> int:
        while True:
            words = control.recv(64).decode().split()
            if not words:
                raise OSError("the fork server closed its socket")
            if words[0] == "pid":
                pid = int(words[1])
                # An earlier worker had this pid: its exit was reported before the
                # zygote could fork again under the same pid.
                self.exits.pop((self.generation, pid), None)
                return pid
            self._record(words)

    def pump(self) -> None:
        """Read the zygote's exit reports without blocking."""
        control = self.control
        if control is None:
            return
        while True:
            try:
                words = control.recv(64, socket.MSG_DONTWAIT).decode().split()
            except BlockingIOError:
                return
            except OSError:
                self._zygote_gone()
                return
            if not words:
                self._zygote_gone()
                return
            self._record(words)

    def _record(self, words: list[str]) -> None:
        if words[0] == "exit":
            self.exits[self.generation, int(words[1])] = int(words[2])

    def _zygote_gone(self) -> None:
        """Without the zygote no exit is reported: `ForkedWorker.poll` asks the system."""
        pid = self.zygote.pid if self.zygote is not None else None
        code = self.close()
        log.warning("the worker fork server (pid %s) exited with code %s; the workers it "
                    "forked drain and are replaced, forked from a new one", pid, code)  # fmt: skip

    def close(self) -> int | None:
        """Stop the zygote (its workers drain on their own); return its exit code
        (None when there was none)."""
        if self.control is not None:
            self.control.close()
            self.control = None
        code = None
        if self.starting is not None:
            self.starting.process.kill()
            self.starting.process.wait()
            self.starting.close()
            self.starting = None
        if self.zygote is not None:
            if self.zygote.poll() is None:
                self.zygote.kill()  # it holds no job; it ignores SIGTERM while we live
            code = self.zygote.wait()
            self.zygote = None
        return code


def _silent_exit(code: int) -> str:
    """Why a zygote that never reported is gone (its own error went to stderr)."""
    hint = " (bad --worker-args?)" if code == ExitCode.USAGE else ""
    return (
        f"the worker fork server exited with code {code}{hint} before it was ready; "
        "its error is in this controller's log"
    )


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stat(pid: int) -> tuple[str, str] | None:
    """(state, start time in clock ticks since boot) of `pid` from /proc (Linux), or
    None when there is no such process or no /proc."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
        return fields[0].decode(), fields[19].decode()
    except (OSError, IndexError):
        return None


def _start_time(pid: int) -> str | None:
    """The start time of `pid` (its identity with the pid), None where unknown."""
    stat = _stat(pid)
    return stat[1] if stat else None


def _same_process(pid: int, identity: str | None) -> bool:
    """Whether the process started as `pid` at `identity` still runs. A zombie has
    exited: if it is ours (a worker orphaned to this process), it is reaped here."""
    if identity is None:
        return _exists(pid)
    stat = _stat(pid)
    if stat is None or stat[1] != identity:
        return False
    if stat[0] == "Z":
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        return False
    return True


def fork_launcher(
    run: Callable[[Sequence[str], Mapping[str, str], Sequence[int]], subprocess.Popen[bytes]],
    wait_s: float = ZYGOTE_START_TIMEOUT_S,
) -> Launcher:
    """A fork server whose zygote is `run(["--zygote"], …)` (see `worker_command`);
    `wait_s` as in `ForkServer`."""

    def start_zygote(status_fd: int, control_fd: int) -> subprocess.Popen[bytes]:
        env = {STATUS_FD_ENV: str(status_fd), CONTROL_FD_ENV: str(control_fd)}
        return run(["--zygote"], env, [status_fd, control_fd])

    return ForkServer(start_zygote, wait_s)
