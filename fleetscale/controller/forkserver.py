"""Start workers by forking a preloaded parent (the controller side of the fork server).

`ForkServer` is a supervisor `Launcher`: it keeps one zygote process
(`fleetscale worker APP --zygote`, see `fleetscale.worker.zygote`) and asks it to fork
each new worker, passing the worker's status pipe over a Unix socket. A forked worker
takes jobs within milliseconds even when many start at once on a busy host, where a
fresh interpreter each would take seconds. If the zygote cannot start (say the app
fails to import), the launch raises `SpawnError`, which the supervisor backs off on;
the next launch starts a new zygote, so fixed code is picked up. Restart the
controller to deploy new task code: running zygotes keep what they imported.
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

from fleetscale.controller.supervisor import Launcher, SpawnError, WorkerProcess
from fleetscale.exitcode import ExitCode
from fleetscale.worker.lifeline import STATUS_FD_ENV
from fleetscale.worker.zygote import CONTROL_FD_ENV

log = logging.getLogger("fleetscale.controller")

StartZygote = Callable[[int, int], "subprocess.Popen[bytes]"]
"""Starts the zygote: (status pipe write fd, control socket fd) → process."""

ZYGOTE_START_TIMEOUT_S = 60.0


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
    """

    def __init__(self, start_zygote: StartZygote) -> None:
        self.start_zygote = start_zygote
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
        self.close()
        self.generation += 1
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        read_fd, write_fd = os.pipe()
        try:
            self.zygote = self.start_zygote(write_fd, theirs.fileno())
        finally:
            os.close(write_fd)
            theirs.close()
        try:
            line = _first_line(read_fd, self.zygote, ZYGOTE_START_TIMEOUT_S)
        finally:
            os.close(read_fd)
        if not line.startswith("ready"):
            self.zygote.kill()
            code = self.zygote.wait()
            ours.close()
            raise SpawnError(line.removeprefix("error ") or _silent_exit(code))
        self.control = ours
        return ours

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
        if self.zygote is not None:
            if self.zygote.poll() is None:
                self.zygote.terminate()
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


def _first_line(fd: int, process: subprocess.Popen[bytes], timeout_s: float) -> str:
    """The zygote's first status line ('ready' or 'error …'), '' if it exits first."""
    deadline = time.monotonic() + timeout_s
    buffer = b""
    while b"\n" not in buffer and time.monotonic() < deadline:
        readable, _, _ = select.select([fd], [], [], 0.1)
        if readable:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            buffer += chunk
        elif process.poll() is not None:
            break
    return buffer.split(b"\n", 1)[0].decode(errors="replace")


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
) -> Launcher:
    """A fork server whose zygote is `run(["--zygote"], …)` (see `worker_command`)."""

    def start_zygote(status_fd: int, control_fd: int) -> subprocess.Popen[bytes]:
        env = {STATUS_FD_ENV: str(status_fd), CONTROL_FD_ENV: str(control_fd)}
        return run(["--zygote"], env, [status_fd, control_fd])

    return ForkServer(start_zygote)
