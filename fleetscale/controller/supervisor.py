"""The local supervisor: start, watch and stop this host's worker processes.

`ensure(n)` converges to n active workers: it wakes warm spares first (SIGUSR1; they are
imported, connected and registered, so they take jobs within milliseconds), then starts
cold workers, and keeps `warm` spares in reserve, within the host's capacity. It stops
starting workers first, then idle ones, with `DRAIN_SIGNAL` (SIGUSR2: a drain, which a
SIGTERM sent to the whole process group beside it never turns into an exit at once),
and SIGKILL after the grace. Workers that die are replaced, and so are workers that
drain on their own (they report it) as soon as they start draining; a worker that
cannot start (say an import error), or that exits on its own soon after it came up,
puts further starts on an exponential backoff, so a broken app causes no fork storm.
Workers report over a status pipe and die with the controller (see
`fleetscale.worker.lifeline`).

No Redis here: the supervisor acts only on processes. It is used from one thread.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

from fleetscale.config import REDIS_URL_ENV, URL_SOURCE_ENV
from fleetscale.metrics import LocalWorkers
from fleetscale.worker.lifeline import DRAIN_SIGNAL, HOST_ID_ENV, PARENT_PID_ENV, STATUS_FD_ENV

log = logging.getLogger("fleetscale.controller")

STARTUP_HISTORY = 50
"""Start-up times kept for the median the host reports."""


class Phase(Enum):
    """Where a worker process is in its life."""

    STARTING = "starting"
    WARM = "warm"
    READY = "ready"
    STOPPING = "stopping"


class SpawnError(Exception):
    """Raised by a launcher that could not start a worker (the message says why)."""


class StartPending(Exception):
    """Raised by a launcher that cannot start a worker yet, through no failure (say its
    fork server is still importing the app): ask again later, with no back-off."""


class WorkerProcess(Protocol):
    """What the supervisor needs of a worker process (`subprocess.Popen` has it)."""

    @property
    def pid(self) -> int:
        """The process id."""
        ...

    def poll(self) -> int | None:
        """The exit code, or None while it runs."""
        ...

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the exit; raise subprocess.TimeoutExpired after `timeout` s."""
        ...

    def kill(self) -> None:
        """SIGKILL it."""
        ...


class Launcher(Protocol):
    """Starts one worker process whose status lines go to `status_fd`."""

    def __call__(self, *, warm: bool, status_fd: int) -> WorkerProcess:
        """Start the process (the caller closes `status_fd` afterwards); raise
        `SpawnError` or OSError when it cannot, `StartPending` when not yet."""
        ...


def worker_command(
    app_path: str,
    redis_url: str,
    host_id: str,
    extra_args: Sequence[str] = (),
    url_source: str = "the controller's --redis-url / FLEETSCALE_REDIS_URL",
) -> Callable[[Sequence[str], Mapping[str, str], Sequence[int]], subprocess.Popen[bytes]]:
    """Runs `python -m fleetscale worker APP [flags]` for this controller: with its
    Redis URL (and the flag that set it, `url_source`, for the worker's hints), host id
    and pid in the environment, and the given fds passed on."""

    def run(
        flags: Sequence[str], env: Mapping[str, str], fds: Sequence[int]
    ) -> subprocess.Popen[bytes]:
        argv = [sys.executable, "-m", "fleetscale", "worker", app_path, *extra_args, *flags]
        full_env = {
            **os.environ,
            REDIS_URL_ENV: redis_url,
            PARENT_PID_ENV: str(os.getpid()),
            HOST_ID_ENV: host_id,
            URL_SOURCE_ENV: url_source,
            **env,
        }
        return subprocess.Popen(argv, env=full_env, pass_fds=tuple(fds), stdin=subprocess.DEVNULL)

    return run


def exec_launcher(
    run: Callable[[Sequence[str], Mapping[str, str], Sequence[int]], subprocess.Popen[bytes]],
) -> Launcher:
    """A launcher that starts each worker as a fresh interpreter (`worker_command`)."""

    def launch(*, warm: bool, status_fd: int) -> WorkerProcess:
        return run(["--warm"] if warm else [], {STATUS_FD_ENV: str(status_fd)}, [status_fd])

    return launch


@dataclass(frozen=True, slots=True)
class SupervisorSettings:
    """How the supervisor manages workers.

    Attributes:
        warm: warm spare workers to keep ready, not consuming.
        stop_grace_s: how long a draining worker may take before SIGKILL, seconds.
        backoff_base_s: pause after the first failed start, doubling per failure.
        backoff_cap_s: the longest pause between starts while they keep failing.
        stable_s: a worker that exits on its own sooner than this after it came up
            (warm or ready) counts as a failed start; one that stays up this long ends
            the backoff, seconds.
    """

    warm: int = 1
    stop_grace_s: float = 30.0
    backoff_base_s: float = 1.0
    backoff_cap_s: float = 60.0
    stable_s: float = 10.0


@dataclass
class WorkerHandle:
    """One worker process of this host."""

    process: WorkerProcess
    status_fd: int
    phase: Phase
    spare: bool
    started_s: float
    stop_sent_s: float | None = None
    up_s: float | None = None
    stable: bool = False
    error: str | None = None
    pending: bytes = b""

    @property
    def pid(self) -> int:
        """The process id."""
        return self.process.pid


@dataclass
class StartFailures:
    """Consecutive failed starts and the backoff they impose."""

    count: int = 0
    total: int = 0
    not_before_s: float = 0.0
    last_error: str | None = None
    reported: int = field(default=0, repr=False)


class Supervisor:
    """Keeps this host's worker processes at the size it is asked for.

    Args:
        launch: starts one worker process (the seam tests replace).
        settings: spares, grace, backoff.
        monotonic: the clock.
    """

    def __init__(
        self,
        launch: Launcher,
        settings: SupervisorSettings,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.launch = launch
        self.settings = settings
        self.monotonic = monotonic
        self.workers: list[WorkerHandle] = []
        self.failures = StartFailures()
        self.startups_s: list[float] = []

    # -- observing ---------------------------------------------------------------------

    def counts(self) -> LocalWorkers:
        """Running (active, not stopping), ready, starting, and warm spares ready to wake."""
        active = self._active()
        ready = sum(h.phase is Phase.READY for h in active)
        warm = sum(h.spare and h.phase is Phase.WARM for h in self.workers)
        return LocalWorkers(
            running=len(active), ready=ready, starting=len(active) - ready, warm=warm
        )

    def _active(self) -> list[WorkerHandle]:
        return [h for h in self.workers if not h.spare and h.phase is not Phase.STOPPING]

    def reap(self) -> None:
        """Read status lines, forget (and account for) workers that exited, and end the
        backoff once a worker has stayed up `stable_s`."""
        for handle in list(self.workers):
            self._read_status(handle)
            code = handle.process.poll()
            if code is None:
                if not handle.stable and self._up_for_s(handle) >= self.settings.stable_s:
                    handle.stable = True
                    self.failures.count = 0
                continue
            self._read_status(handle)
            os.close(handle.status_fd)
            self.workers.remove(handle)
            self._account_exit(handle, code)

    def _up_for_s(self, handle: WorkerHandle) -> float:
        """Seconds since `handle` came up (warm or ready); 0 while it is starting."""
        return 0.0 if handle.up_s is None else self.monotonic() - handle.up_s

    def _read_status(self, handle: WorkerHandle) -> None:
        while True:
            try:
                chunk = os.read(handle.status_fd, 4096)
            except BlockingIOError:
                break
            if not chunk:
                break
            handle.pending += chunk
        *lines, handle.pending = handle.pending.split(b"\n")
        for line in lines:
            self._on_status(handle, line.decode(errors="replace"))

    def _on_status(self, handle: WorkerHandle, line: str) -> None:
        word, _, rest = line.partition(" ")
        if word == "error":
            handle.error = rest
            return
        if word == "stopping":
            # It drains on its own (say its fork server died): it takes no more jobs,
            # so it is replaced now, and its exit is no failed start.
            handle.phase = Phase.STOPPING
            return
        try:
            at_s = float(rest) if rest else self.monotonic()
        except ValueError:
            at_s = self.monotonic()
        if word == "warm" and handle.phase is Phase.STARTING:
            handle.phase = Phase.WARM
            self._started(handle, at_s)
        elif word == "ready" and handle.phase in (Phase.STARTING, Phase.WARM):
            if handle.phase is Phase.STARTING:
                self._started(handle, at_s)
            handle.phase = Phase.READY

    def _started(self, handle: WorkerHandle, at_s: float) -> None:
        """`handle` became warm or ready at monotonic `at_s` (the worker's report)."""
        handle.up_s = at_s
        self.startups_s.append(max(0.0, at_s - handle.started_s))
        del self.startups_s[:-STARTUP_HISTORY]

    def startup_s(self) -> float | None:
        """Median seconds from spawn to ready (or warm) of the last starts, if any."""
        return statistics.median(self.startups_s) if self.startups_s else None

    def _account_exit(self, handle: WorkerHandle, code: int) -> None:
        if handle.phase is Phase.STOPPING:
            return
        if handle.phase is Phase.STARTING:
            self._start_failed(handle.error or f"worker exited with code {code} while starting")
        elif (up_s := self._up_for_s(handle)) < self.settings.stable_s:
            self._start_failed(f"worker exited with code {code} {up_s:.1f}s after it came up")
        else:
            log.warning(
                "worker %d exited unexpectedly with code %d; replacing it", handle.pid, code
            )

    def _start_failed(self, error: str) -> None:
        f = self.failures
        f.count += 1
        f.total += 1
        f.last_error = error
        pause = min(self.settings.backoff_cap_s, self.settings.backoff_base_s * 2 ** (f.count - 1))
        f.not_before_s = self.monotonic() + pause
        log.error("a worker failed to start (%s); next start in %.0fs", error, pause)

    def new_spawn_failures(self) -> int:
        """Failed starts since the last call (for a counter metric)."""
        fresh = self.failures.total - self.failures.reported
        self.failures.reported = self.failures.total
        return fresh

    # -- acting ------------------------------------------------------------------------

    def ensure(
        self, target: int, busy_pids: Collection[int] = (), capacity: int | None = None
    ) -> None:
        """Converge to `target` active workers and the configured warm spares.

        Args:
            target: active (consuming or starting) workers wanted on this host.
            busy_pids: workers now running a job; stopped only after idle ones.
            capacity: the most worker processes on this host, spares included (None:
                no limit); a full host keeps no spare.
        """
        self.reap()
        active = self._active()
        if len(active) < target:
            self._grow(target - len(active))
        elif len(active) > target:
            self._shrink(active, len(active) - target, busy_pids)
        spares = self.settings.warm
        if capacity is not None:  # a stopping worker still holds its place
            held = sum(not h.spare or h.phase is Phase.STOPPING for h in self.workers)
            spares = min(spares, capacity - max(target, held))
        self._keep_spares(spares)
        self._escalate_stops()

    def _grow(self, needed: int) -> None:
        for handle in [h for h in self.workers if h.spare and h.phase is Phase.WARM][:needed]:
            handle.spare = False
            with contextlib.suppress(ProcessLookupError):
                os.kill(handle.pid, signal.SIGUSR1)
            needed -= 1
        for _ in range(needed):
            if not self._spawn(warm=False):
                return

    def _keep_spares(self, wanted: int) -> None:
        spares = sum(h.spare and h.phase is not Phase.STOPPING for h in self.workers)
        for _ in range(wanted - spares):
            if not self._spawn(warm=True):
                return

    def _spawn(self, *, warm: bool) -> bool:
        now = self.monotonic()
        if now < self.failures.not_before_s:
            return False
        read_fd, write_fd = os.pipe()
        os.set_blocking(read_fd, False)
        try:
            process = self.launch(warm=warm, status_fd=write_fd)
        except StartPending:
            os.close(read_fd)
            return False
        except (OSError, SpawnError) as exc:
            os.close(read_fd)
            self._start_failed(
                str(exc) if isinstance(exc, SpawnError) else f"could not start a worker: {exc}"
            )
            return False
        finally:
            os.close(write_fd)
        self.workers.append(WorkerHandle(process, read_fd, Phase.STARTING, warm, now))
        return True

    def _shrink(self, active: list[WorkerHandle], surplus: int, busy_pids: Collection[int]) -> None:
        def stop_order(h: WorkerHandle) -> tuple[int, int, float]:
            # Not yet consuming first, then idle, then the youngest.
            return (h.phase is Phase.READY, h.pid in busy_pids, -h.started_s)

        for handle in sorted(active, key=stop_order)[:surplus]:
            self._stop(handle)

    def _stop(self, handle: WorkerHandle) -> None:
        handle.phase = Phase.STOPPING
        handle.stop_sent_s = self.monotonic()
        with contextlib.suppress(ProcessLookupError):
            os.kill(handle.pid, DRAIN_SIGNAL)

    def _escalate_stops(self) -> None:
        now = self.monotonic()
        for handle in self.workers:
            late = (
                handle.stop_sent_s is not None
                and now - handle.stop_sent_s > self.settings.stop_grace_s
            )
            if late and handle.process.poll() is None:
                log.warning("worker %d did not drain within %.0fs; killing it", handle.pid,
                            self.settings.stop_grace_s)  # fmt: skip
                with contextlib.suppress(ProcessLookupError):
                    os.kill(handle.pid, signal.SIGKILL)

    def kill_all(self) -> None:
        """SIGKILL every worker not yet reaped, now: the controller's second stop signal.
        Only sends signals, so a signal handler may call it; the jobs the workers held run
        again after their --min-idle."""
        for handle in list(self.workers):
            with contextlib.suppress(ProcessLookupError):
                os.kill(handle.pid, signal.SIGKILL)

    def stop_all(self, grace_s: float | None = None) -> None:
        """Drain every worker, wait up to the grace, kill the rest, reap them all."""
        grace = self.settings.stop_grace_s if grace_s is None else grace_s
        for handle in self.workers:
            if handle.phase is not Phase.STOPPING:
                self._stop(handle)
        deadline = self.monotonic() + grace
        for handle in self.workers:
            try:
                handle.process.wait(timeout=max(0.0, deadline - self.monotonic()))
            except subprocess.TimeoutExpired:
                handle.process.kill()
                handle.process.wait()
        self.reap()
