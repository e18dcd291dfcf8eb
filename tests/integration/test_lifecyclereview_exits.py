"""Exit codes of workers a controller starts, by either launcher (DESIGN §3)."""

from __future__ import annotations

import os

import pytest

from fleetscale.controller.forkserver import fork_launcher
from fleetscale.controller.supervisor import Launcher, exec_launcher, worker_command
from fleetscale.embedded import free_port
from fleetscale.exitcode import ExitCode
from tests.support.fleet import APP
from tests.support.procs import REPO


def status_lines(fd: int) -> str:
    chunks = []
    while chunk := os.read(fd, 4096):
        chunks.append(chunk)
    return b"".join(chunks).decode()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("spawn", ["fork", "exec"])
def test_a_started_worker_that_cannot_reach_redis_exits_3_and_says_why(
    spawn: str, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(REPO)
    run = worker_command(APP, f"redis://127.0.0.1:{free_port()}/0", "lifecycle-host")
    launch: Launcher = fork_launcher(run) if spawn == "fork" else exec_launcher(run)
    read_fd, write_fd = os.pipe()
    try:
        worker = launch(warm=False, status_fd=write_fd)
    finally:
        os.close(write_fd)
    try:
        code = worker.wait(timeout=60)
        status = status_lines(read_fd)
    finally:
        os.close(read_fd)
        getattr(launch, "close", lambda: None)()
    assert code == ExitCode.REDIS_UNREACHABLE, status
    assert status.startswith("error Redis at") and "unreachable" in status, status
    err = capfd.readouterr().err
    assert "fleetscale: error: Redis at" in err, err
    assert "Traceback" not in err, err
