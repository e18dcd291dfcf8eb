"""The README's two set-up commands work in a fresh clone with a fresh virtual env.

Command 1 (install + `fleetscale demo`) runs exactly as written. Command 2 installs the
dev environment and runs pytest; here its pytest step only collects the tests (running
the whole suite inside one of its own tests would recurse) — `.ci/run` runs command 2
for real on every CI run.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.support.procs import REPO


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
def test_the_first_command_installs_and_runs_the_demo_with_nothing_lost(tmp_path: Path) -> None:
    clone = fresh_clone(tmp_path)
    result = run(readme_commands()[0], clone)
    assert result.returncode == 0, result.stderr[-2000:]
    assert re.search(r"lost 0\b", result.stdout), result.stdout[-2000:]


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_the_second_command_installs_the_test_environment(tmp_path: Path) -> None:
    clone = fresh_clone(tmp_path)
    command = readme_commands()[1].replace("python -m pytest", "python -m pytest --collect-only -q")
    result = run(command, clone)
    assert result.returncode == 0, result.stderr[-2000:]
    assert re.search(r"\d+ tests collected", result.stdout), result.stdout[-2000:]
