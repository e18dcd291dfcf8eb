"""The README's commands work as written.

The two set-up commands work in a fresh clone with a fresh virtual env.

Command 1 (install + `fleetscale demo`) runs exactly as written. Command 2 installs the
dev environment and runs pytest; here its pytest step only collects the tests (running
the whole suite inside one of its own tests would recurse) — `.ci/run` runs command 2
for real on every CI run.

The five-minute tour runs as written, on the test Redis and a fleet of the test's own:
its `tasks.py`, its producer snippet, and each of its commands exits 0 (the controller
and the worker it starts run until a SIGTERM drains them, which exits 0 too).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.demos import demo_processes
from tests.support.procs import REPO, Processes, wait_until


def readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", text, re.S)
    assert block, "the README starts with a bash block of set-up commands"
    return [line for line in block.group(1).splitlines() if line and not line.startswith("#")]


def fresh_clone(tmp_path: Path) -> Path:
    target = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(target)], check=True)
    return target


def run(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", command], check=False, cwd=cwd, capture_output=True, text=True, timeout=900
    )


def test_the_readme_starts_with_two_commands() -> None:
    commands = readme_commands()
    assert len(commands) == 2
    assert commands[0].endswith("fleetscale demo")
    assert commands[1].endswith("python -m pytest")


@pytest.mark.slow
@pytest.mark.timeout(1200)
@pytest.mark.usefixtures("demos_alone")
def test_the_first_command_installs_and_runs_the_demo_which_scales_up_and_down_and_loses_nothing(
    tmp_path: Path,
) -> None:
    # The one full-length demo run of the suite: it shows both the command as written and
    # the demo's scaling, read from the frames it prints (`t_s … desired N`).
    assert demo_processes() == [], "no demo is running before the test"
    clone = fresh_clone(tmp_path)
    result = run(readme_commands()[0], clone)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert re.search(r"lost 0\b", result.stdout), result.stdout[-2000:]
    desired = {
        int(t_s): int(n) if n != "-" else 0
        for t_s, n in re.findall(r"^\s*(\d+)s  load .* desired\s+(\S+)", result.stdout, re.M)
    }
    quiet = [n for t_s, n in desired.items() if t_s < 10]
    step = [n for t_s, n in desired.items() if 12 <= t_s < 27]
    spike = [n for t_s, n in desired.items() if 27 <= t_s < 36]
    end = [desired[t_s] for t_s in sorted(desired)[-5:]]
    print(f"desired workers: quiet ≤ {max(quiet)}, step ≤ {max(step)}, "
          f"spike ≤ {max(spike)}, end {end[-1]}")  # fmt: skip
    assert max(step) > max(quiet), "scaled up on the step"
    assert max(spike) > max(step), "scaled up further on the spike"
    assert end[-1] < max(spike), "scaled back down"
    assert demo_processes() == [], "the demo left no process behind"


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_the_second_command_installs_the_test_environment(tmp_path: Path) -> None:
    clone = fresh_clone(tmp_path)
    command = readme_commands()[1].replace("python -m pytest", "python -m pytest --collect-only -q")
    result = run(command, clone)
    assert result.returncode == 0, result.stderr[-2000:]
    assert re.search(r"\d+ tests collected", result.stdout), result.stdout[-2000:]


# -- the five-minute tour ---------------------------------------------------------------

RUNS_UNTIL_STOPPED = ("fleetscale controller ", "fleetscale worker ")


def tour_blocks() -> tuple[str, str, list[str]]:
    """The tour's `tasks.py`, its producer snippet and its command lines, as written."""
    text = (REPO / "README.md").read_text()
    tour = text.split("## A five-minute tour", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(\w+)\n(.*?)```", tour, re.S)
    assert [lang for lang, _ in blocks] == ["python", "python", "bash"], "the tour's blocks"
    lines = [line for line in blocks[2][1].splitlines() if line.strip()]
    return blocks[0][1], blocks[1][1], lines


def in_fleet(text: str, fleet: str, redis_url: str) -> str:
    """The README's text for this test's fleet and Redis."""
    text = text.replace("redis://localhost:6379/0", redis_url)
    return re.sub(r"\bmedia\b", fleet, text)


def documented_fields(after: str) -> set[str]:
    """The field names of the README's JSON table after the line starting `after`."""
    text = (REPO / "README.md").read_text()
    table = text.split(after, 1)[1].split("| field | meaning |", 1)[1].split("\n\n", 1)[0]
    first_cells = [row.split("|")[1] for row in table.splitlines()[2:]]
    return {name for cell in first_cells for name in re.findall(r"`(\w+)`", cell)}


def documented_object(after: str) -> tuple[set[str], set[str]]:
    """The outer and inner names of an inline `{"a", "b": [{"c", …}]}` of the README."""
    text = (REPO / "README.md").read_text().split(after, 1)[1].split("\n\n", 1)[0]
    outer, inner = text.split("[{", 1)
    return set(re.findall(r'"(\w+)"', outer)), set(re.findall(r'"(\w+)"', inner.split("}]")[0]))


def test_simulate_json_has_the_fields_the_readme_lists() -> None:
    argv = [sys.executable, "-m", "fleetscale", "simulate", "--trace", "step", "--json"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True)
    assert set(json.loads(result.stdout)) == documented_fields("`fleetscale simulate --json`")


def test_the_tour_runs_as_written(
    redis_url: str, fleet: str, procs: Processes, tmp_path: Path
) -> None:
    tasks, producer, lines = tour_blocks()
    assert tasks.startswith("# tasks.py\n")
    (tmp_path / "tasks.py").write_text(in_fleet(tasks, fleet, redis_url))
    env = {
        **os.environ,
        "FLEETSCALE_REDIS_URL": redis_url,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }

    def run_in_tour(argv: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False
        )

    def shell(line: str) -> subprocess.CompletedProcess[str]:
        return run_in_tour(["bash", "-c", in_fleet(line, fleet, redis_url)])

    produced = run_in_tour([sys.executable, "-c", in_fleet(producer, fleet, redis_url)])
    assert produced.returncode == 0, produced.stderr

    background = [line for line in lines if line.startswith(RUNS_UNTIL_STOPPED)]
    assert len(background) == 2, lines
    running = [
        procs.spawn(
            ["bash", "-c", f"cd {tmp_path} && exec {in_fleet(line, fleet, redis_url)}"],
            env=env,
            name=line.split()[1],
        )
        for line in background
    ]

    def leader() -> object:
        status = shell(f"fleetscale status {fleet} --json")
        return status.returncode == 0 and json.loads(status.stdout)["leader"]

    wait_until(leader, timeout_s=60, what="a leading controller")

    for line in lines:
        if line in background:
            continue
        result = shell(line)
        assert result.returncode == 0, f"{line}\n{result.stderr}"
        if "--json" in line:
            json.loads(result.stdout)
    assert len((tmp_path / "ids").read_text().splitlines()) == 1000
    policy = json.loads(shell(f"fleetscale policy {fleet} show --json").stdout)
    assert policy["version"] > 1 and policy["policy"]["max"] == 64
    assert set(policy) == {"version", "policy", "ignored"}

    status = json.loads(shell(f"fleetscale status {fleet} --json").stdout)
    assert set(status) == documented_fields("`fleetscale status FLEET --json` prints")
    explained = json.loads(shell(f"fleetscale explain {fleet} --json").stdout)
    outer, inner = documented_object("`fleetscale explain FLEET --json` prints")
    assert (set(explained), set(explained["decisions"][0])) == (outer, inner)
    assert shell(f"fleetscale submit {fleet} no.such.task").returncode == 0  # a dead letter

    def letters() -> dict[str, Any]:
        listed: dict[str, Any] = json.loads(shell(f"fleetscale dlq {fleet} list --json").stdout)
        return listed if listed["count"] else {}

    listed = wait_until(letters, timeout_s=60, what="a dead letter")
    outer, inner = documented_object("`fleetscale dlq FLEET list --json` prints")
    assert (set(listed), set(listed["entries"][0])) == (outer, inner)

    for proc in running:  # "the first SIGTERM drains … exit 0"; the controller's too
        proc.signal(signal.SIGTERM)
    assert [proc.wait(60) for proc in running] == [0, 0], [p.output()[-2000:] for p in running]
