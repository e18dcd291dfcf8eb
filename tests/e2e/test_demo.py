"""`fleetscale demo` as a new user runs it, headless: however it is stopped (Ctrl-C, a
second signal, a closed terminal, kill -9) it leaves nothing behind. That the full demo
scales up and down is shown by the README's first command
(tests/e2e/test_readme_commands.py), which runs it."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from tests.support.demos import demo_processes
from tests.support.procs import REPO, wait_until

# Each waits for any other test running a demo (up to the README's, 90 s): their
# timeouts allow for it.
pytestmark = pytest.mark.usefixtures("demos_alone")


def demo_directories() -> set[Path]:
    """The temporary directories of the running demos (their Redis servers work in them)."""
    found = set()
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            cwd = Path(os.readlink(entry / "cwd"))
            if cwd.parent.name.startswith("fleetscale-demo-"):
                found.add(cwd.parent)
    return found


def start_demo(out: int | IO[bytes]) -> subprocess.Popen[bytes]:
    """`fleetscale demo --duration 60s` in a session of its own, its output to `out`."""
    env = {k: v for k, v in os.environ.items() if k != "FLEETSCALE_REDIS_URL"}
    return subprocess.Popen([sys.executable, "-m", "fleetscale", "demo", "--duration", "60s"],
                            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)  # fmt: skip


@contextlib.contextmanager
def running_demo(log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A demo writing to `log`, once it has shown its first frame; killed if it outlives
    the body."""
    with open(log, "wb") as out:
        demo = start_demo(out)
    try:
        wait_until(lambda: "load" in log.read_text(), timeout_s=60, what="the demo's first frame")
        yield demo
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)


def read_until(fd: int, text: bytes, timeout_s: float) -> bytes:
    """Read `fd` until `text` has come; fail after `timeout_s`."""
    seen, deadline = b"", time.monotonic() + timeout_s
    while text not in seen:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            raise AssertionError(f"no {text!r} within {timeout_s}s in {seen[-500:]!r}")
        seen += os.read(fd, 65536)
    return seen


@pytest.mark.timeout(300)
def test_ctrl_c_in_the_terminal_drains_the_workers_on_a_live_redis_and_stops_everything(
    tmp_path: Path,
) -> None:
    log = tmp_path / "demo.log"
    with running_demo(log) as demo:
        assert demo_processes(), "the demo runs a controller and workers"
        os.killpg(demo.pid, signal.SIGINT)  # a terminal sends it to the foreground group
        assert demo.wait(timeout=90) == 130
    output = log.read_text()
    assert "unreachable" not in output, "the workers drained while Redis was up"
    assert "every process of the demo has exited" in output
    assert demo_processes() == [], "Ctrl-C left no process behind"


@pytest.mark.timeout(300)
def test_a_second_signal_during_the_cleanup_ends_the_workers_at_once_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    log = tmp_path / "demo.log"
    with running_demo(log) as demo:
        os.killpg(demo.pid, signal.SIGINT)
        os.killpg(demo.pid, signal.SIGTERM)  # while the first one's cleanup runs
        assert demo.wait(timeout=90) == 130, "the first signal stopped the demo"
    assert "every process of the demo has exited" in log.read_text()
    assert demo_processes() == [], "the second signal left no process behind"


@pytest.mark.timeout(300)
def test_closing_the_terminal_stops_the_demo_and_everything_it_started() -> None:
    terminal, demo_side = pty.openpty()
    demo = start_demo(demo_side)
    os.close(demo_side)
    try:
        read_until(terminal, b"load", timeout_s=60)
        directories = demo_directories()
        assert directories, "the demo runs a private Redis in a directory of its own"
        os.killpg(demo.pid, signal.SIGHUP)  # what a closing terminal's shell sends
        os.close(terminal)  # and what is written to the terminal fails from now on
        assert demo.wait(timeout=90) == 128 + signal.SIGHUP
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
    assert demo_processes() == [], "SIGHUP left no process behind"
    assert not any(d.exists() for d in directories), "the demo removed its directory"


@pytest.mark.timeout(300)
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_demo_killed_outright_leaves_no_process_and_the_next_demo_removes_its_files(
    tmp_path: Path,
) -> None:
    with running_demo(tmp_path / "killed.log") as killed:
        abandoned = demo_directories()
        assert abandoned
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=10)
    wait_until(lambda: not demo_processes(), timeout_s=60, what="its processes to end")
    assert all(d.exists() for d in abandoned), "a killed demo cannot remove its files"
    with running_demo(tmp_path / "next.log") as demo:
        assert not any(d.exists() for d in abandoned), "the next demo removed them"
        os.killpg(demo.pid, signal.SIGINT)
        assert demo.wait(timeout=90) == 130
    assert demo_processes() == []


@pytest.mark.timeout(300)
def test_on_one_worker_the_demo_runs_plots_and_counts_jobs_still_queued_as_unfinished_not_lost(
    tmp_path: Path,
) -> None:
    # 150 jobs/s of 0.1 s for 5 s: far more than one worker runs before the drain wait
    # ends. At capacity 1 the warm spare never fits.
    trace = tmp_path / "flood.csv"
    trace.write_text("t_s,rate_per_s\n0,150\n5,0\n")
    env = {k: v for k, v in os.environ.items() if k != "FLEETSCALE_REDIS_URL"}
    plot = tmp_path / "demo.png"
    argv = [sys.executable, "-m", "fleetscale", "demo", "--capacity", "1", "--trace",
            str(trace), "--json", "--plot", str(plot)]  # fmt: skip
    result = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=180, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    print({k: v for k, v in summary.items() if k != "timeline"})
    assert max(f["running"] for f in summary["timeline"]) == 1
    assert summary["completed"] > 0 and summary["unfinished"] > 0
    assert summary["lost"] == 0, "jobs still queued are not lost"
    assert summary["completed"] + summary["unfinished"] == summary["jobs"]
    assert plot.read_bytes().startswith(b"\x89PNG") and plot.stat().st_size > 10_000
    assert demo_processes() == [], "the demo left no process behind"
