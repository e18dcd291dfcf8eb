"""The local supervisor against real (stand-in) worker processes; no Redis."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fleetscale.controller.forkserver import ForkServer
from fleetscale.controller.supervisor import Phase, SpawnError, Supervisor, SupervisorSettings
from fleetscale.worker.lifeline import PARENT_PID_ENV, STATUS_FD_ENV
from fleetscale.worker.zygote import CONTROL_FD_ENV
from tests.support.launcher import FakeLauncher
from tests.support.procs import wait_until

STANDIN_ZYGOTE = Path(__file__).parents[1] / "support" / "standin_zygote.py"


@pytest.fixture
def launcher() -> FakeLauncher:
    return FakeLauncher()


@pytest.fixture
def supervisor(launcher: FakeLauncher) -> Iterator[Supervisor]:
    sup = Supervisor(launcher, SupervisorSettings(warm=1, stop_grace_s=1.0, backoff_base_s=0.5))
    yield sup
    sup.stop_all(grace_s=1.0)


def settle(sup: Supervisor, target: int, ready: int, warm: int) -> None:
    def converged() -> bool:
        sup.ensure(target)
        c = sup.counts()
        return c.running == target and c.ready == ready and c.warm == warm

    wait_until(converged, timeout_s=20, what=f"{ready} ready and {warm} warm")


def keep_asking(sup: Supervisor, target: int, for_s: float) -> None:
    """A busy reconcile loop, as fast as it goes: ask for `target` workers for `for_s`."""
    deadline = time.monotonic() + for_s
    while time.monotonic() < deadline:
        sup.ensure(target)
        time.sleep(0.02)


def test_it_starts_the_workers_asked_for_plus_a_warm_spare(supervisor: Supervisor) -> None:
    settle(supervisor, target=3, ready=3, warm=1)
    phases = sorted(h.phase.value for h in supervisor.workers)
    assert phases == ["ready", "ready", "ready", "warm"]


def test_a_full_host_keeps_no_spare_beyond_its_capacity(supervisor: Supervisor) -> None:
    def converged(target: int, warm: int) -> bool:
        supervisor.ensure(target, capacity=2)
        c = supervisor.counts()
        return (c.running, c.ready, c.warm) == (target, target, warm)

    wait_until(lambda: converged(1, 1), timeout_s=20, what="1 ready and 1 warm")
    wait_until(lambda: converged(2, 0), timeout_s=20, what="2 ready, the spare woken")
    live = [h for h in supervisor.workers if h.phase is not Phase.STOPPING]
    assert len(live) == 2, [h.phase for h in supervisor.workers]


def test_a_scale_up_wakes_the_warm_spare_before_starting_a_cold_one(
    supervisor: Supervisor, launcher: FakeLauncher
) -> None:
    settle(supervisor, target=0, ready=0, warm=1)
    spare = supervisor.workers[0]
    before = launcher.launched
    supervisor.ensure(1)
    assert spare.spare is False, "the spare was woken"
    assert launcher.launched == before + 1, "only a new spare was started"
    settle(supervisor, target=1, ready=1, warm=1)
    assert spare.phase is Phase.READY


def test_a_scale_down_stops_idle_workers_before_busy_ones(supervisor: Supervisor) -> None:
    settle(supervisor, target=3, ready=3, warm=1)
    active = [h for h in supervisor.workers if not h.spare]
    busy = {active[0].pid, active[1].pid}
    supervisor.ensure(2, busy_pids=busy)
    stopped = [h for h in supervisor.workers if h.phase is Phase.STOPPING]
    assert [h.pid for h in stopped] == [active[2].pid]
    settle(supervisor, target=2, ready=2, warm=1)


def test_a_worker_that_dies_is_replaced(supervisor: Supervisor) -> None:
    settle(supervisor, target=2, ready=2, warm=1)
    victim = next(h for h in supervisor.workers if not h.spare)
    victim.process.kill()
    victim.process.wait()
    settle(supervisor, target=2, ready=2, warm=1)
    assert victim not in supervisor.workers


def test_a_worker_that_cannot_start_puts_starts_on_an_exponential_backoff() -> None:
    launcher = FakeLauncher(mode="fail")
    sup = Supervisor(launcher, SupervisorSettings(warm=0, backoff_base_s=0.5, backoff_cap_s=60))
    try:
        keep_asking(sup, target=4, for_s=3.0)
        # 3 s of asking for 4 workers: starts at 0, 0.5, 1.5 (and maybe 3.5 s), not 150.
        assert 2 <= launcher.launched <= 4, launcher.launched
        assert (
            sup.failures.total == launcher.launched or sup.failures.total == launcher.launched - 1
        )
        assert sup.failures.last_error == "cannot import 'app': no module named 'app'"
        assert sup.counts().ready == 0
    finally:
        sup.stop_all(grace_s=1.0)


def test_a_worker_that_ignores_sigterm_is_killed_after_the_grace() -> None:
    launcher = FakeLauncher(mode="stubborn")
    sup = Supervisor(launcher, SupervisorSettings(warm=0, stop_grace_s=0.3))
    settle(sup, target=1, ready=1, warm=0)
    (handle,) = sup.workers
    sup.ensure(0)
    assert handle.phase is Phase.STOPPING

    def gone() -> bool:
        sup.ensure(0)
        return not sup.workers

    wait_until(gone, timeout_s=10, what="the stubborn worker to be killed")
    assert handle.process.returncode == -9


def test_a_fork_server_that_dies_before_it_is_ready_says_with_what_code() -> None:
    # A bad worker option makes the zygote (`fleetscale worker APP --zygote ...`) exit 2
    # before it reports; its own message goes to the controller's stderr.
    def start_zygote(status_fd: int, control_fd: int) -> subprocess.Popen[bytes]:
        script = "raise SystemExit(2)"  # holds the status pipe open until it exits
        return subprocess.Popen([sys.executable, "-c", script], pass_fds=(status_fd,))

    with pytest.raises(SpawnError, match=r"exited with code 2 \(bad --worker-args\?\)"):
        ForkServer(start_zygote)(warm=False, status_fd=0)


def standin_zygote(*args: str) -> Callable[[int, int], subprocess.Popen[bytes]]:
    """Starts tests/support/standin_zygote.py with `args` as a fork server's zygote."""

    def start(status_fd: int, control_fd: int) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            STATUS_FD_ENV: str(status_fd),
            CONTROL_FD_ENV: str(control_fd),
            PARENT_PID_ENV: str(os.getpid()),
        }
        argv = [sys.executable, str(STANDIN_ZYGOTE), *args]
        return subprocess.Popen(argv, env=env, pass_fds=(status_fd, control_fd))

    return start


@pytest.mark.timeout(60)
def test_a_forked_worker_whose_pid_an_earlier_worker_had_is_not_taken_for_exited() -> None:
    # The zygote reaps its children and reports `exit PID CODE`; on a busy host the
    # system hands that pid to a later fork. The old report must not make the new
    # worker look gone (it would be dropped while it runs, and its start counted failed).
    server = ForkServer(standin_zygote("reuse", "4242"))
    first = server(warm=False, status_fd=os.open(os.devnull, os.O_WRONLY))
    assert first.wait(timeout=10) == 0
    second = server(warm=False, status_fd=os.open(os.devnull, os.O_WRONLY))
    try:
        assert second.pid == first.pid
        assert second.poll() is None, "the new worker with the reused pid still runs"
    finally:
        server.close()


@pytest.mark.timeout(60)
def test_workers_of_a_fork_server_that_died_are_seen_to_exit_after_a_new_one_starts() -> None:
    # The zygote dies (say the OOM killer): its workers get SIGTERM and drain. A start
    # while they drain brings up a new zygote, which never reports their exits.
    server = ForkServer(standin_zygote("serve", "1.0"))
    sup = Supervisor(server, SupervisorSettings(warm=0, stop_grace_s=5.0))
    try:
        settle(sup, target=2, ready=2, warm=0)
        old = list(sup.workers)
        assert server.zygote is not None
        server.zygote.kill()
        server.zygote.wait()
        sup.ensure(3)  # one more while the old two still drain: a new zygote
        assert server.zygote is not None and server.zygote.poll() is None
        wait_until(lambda: sup.ensure(3) or not any(h in sup.workers for h in old),
                   timeout_s=20, what="the dead zygote's workers to be seen gone")  # fmt: skip
        settle(sup, target=3, ready=3, warm=0)
    finally:
        sup.stop_all(grace_s=5.0)
        server.close()


def test_a_worker_that_exits_soon_after_it_is_ready_puts_starts_on_a_backoff() -> None:
    # A worker that comes up and exits at once, again and again (a `--burst` worker on an
    # empty stream, a crash in its first turn), must not be restarted on every pass.
    launcher = FakeLauncher(mode="crash")  # exits 0.2 s after it reports ready
    sup = Supervisor(launcher, SupervisorSettings(warm=0, backoff_base_s=0.5, backoff_cap_s=60))
    try:
        keep_asking(sup, target=2, for_s=4.0)
        # Starts at 0 (two), then after 1 s (two), then after 4 s more: not one per crash.
        assert launcher.launched <= 6, launcher.launched
        assert sup.failures.total >= 1
        assert "exited with code 1" in (sup.failures.last_error or "")
    finally:
        sup.stop_all(grace_s=1.0)


def test_no_spare_is_started_in_the_place_a_draining_worker_still_holds() -> None:
    # --capacity counts every worker process of the host, spares included; a worker
    # told to stop holds its place until it has drained.
    sup = Supervisor(FakeLauncher(mode="stubborn"), SupervisorSettings(warm=1, stop_grace_s=30))
    try:
        wait_until(lambda: sup.ensure(2, capacity=2) or sup.counts().ready == 2, timeout_s=20,
                   what="2 ready, no room for a spare")  # fmt: skip
        for _ in range(5):  # the scale-down and the ticks after it, while one drains
            sup.ensure(1, capacity=2)
            time.sleep(0.1)
        assert any(h.phase is Phase.STOPPING for h in sup.workers), "one still drains"
        assert len(sup.workers) <= 2, [(h.phase, h.spare) for h in sup.workers]
    finally:
        sup.stop_all(grace_s=1.0)
