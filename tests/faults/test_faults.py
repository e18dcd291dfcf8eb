"""The CI subset of the fault suite: each row meets its pass rule, and the checker flags
every negative control red. `python -m bench.faults --all` runs every row."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.faults.catalog import ci_rows
from tests.faults.rows import Row, RowEnv, RowResult, run_row
from tests.faults.table import table
from tests.support.procs import Processes

SEED = int(os.environ.get("FAULTS_SEED", "1"))


def _require_tools(fault: Row) -> None:
    missing = fault.missing()
    if missing:
        reason = f"row {fault.name} needs {', '.join(missing)}"
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (under CI a missing tool fails the run)", pytrace=False)
        pytest.skip(reason)


def _run(fault: Row, tmp_path: Path, procs: Processes) -> RowResult:
    _require_tools(fault)
    result = run_row(fault, RowEnv(tmp_path, procs, SEED))
    print(table([result]))
    return result


@pytest.mark.timeout(300)
@pytest.mark.parametrize("fault", [r for r in ci_rows() if not r.negative], ids=lambda r: r.name)
def test_each_fault_row_meets_its_pass_rule(fault: Row, tmp_path: Path, procs: Processes) -> None:
    result = _run(fault, tmp_path, procs)
    assert result.passed, f"{fault.name} ({fault.rule}): {'; '.join(result.outcome.violations)}"


@pytest.mark.timeout(300)
@pytest.mark.parametrize("fault", [r for r in ci_rows() if r.negative], ids=lambda r: r.name)
def test_the_checker_flags_each_negative_control_red(
    fault: Row, tmp_path: Path, procs: Processes
) -> None:
    result = _run(fault, tmp_path, procs)
    violations = result.outcome.violations
    assert violations, f"{fault.name}: the checker missed the fault ({fault.rule})"
    assert result.passed, f"{fault.name}: expected only {fault.expect_red}, got {violations}"
