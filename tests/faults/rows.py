"""Rows of the fault suite: a fault, its pass rule, and how a run is judged.

A row is a function that builds its own cluster, runs load, lets its seeded nemesis
inject the fault, heals, waits until the run is settled, and returns an `Outcome`: the
checker's verdict, the row's own figure, and the violations of its pass rule. A row
with violations is red. Negative controls run a fault outside the supported deployment
(or with a safety off): the checker must flag them red.
"""

from __future__ import annotations

import os
import random
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tests.faults.checker import Verdict, unexplained_duplicates
from tests.faults.cluster import SETTLE_TIMEOUT_S, Cluster
from tests.support.procs import Processes

GROUPS = ("worker", "redis", "streams", "network", "controller", "security")


@dataclass(frozen=True)
class RowEnv:
    """What a row runs with: its own directory, process group and seeded randomness,
    and the clean-ups to run when it ends, however it ends."""

    directory: Path
    procs: Processes
    seed: int
    cleanups: list[Callable[[], None]] = field(default_factory=list)

    @property
    def rng(self) -> random.Random:
        """A fresh generator for this row's seed (the nemesis draws from it)."""
        return random.Random(self.seed)


@dataclass
class Outcome:
    """What one run of a row found.

    Attributes:
        verdict: the checker's counts.
        figure: the row's own figure, e.g. `reclaim 4.1 s`.
        violations: broken pass-rule clauses, one line each; empty when green.
        merged_p99_s: the fleet's merged p99 wait (telemetry), seconds.
        notes: anything else worth printing.
    """

    verdict: Verdict
    figure: str
    violations: list[str] = field(default_factory=list)
    merged_p99_s: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def red(self) -> bool:
        """Whether the checker flags this run."""
        return bool(self.violations)


@dataclass(frozen=True)
class Row:
    """One fault with its pass rule.

    Attributes:
        name: short id (`--row NAME`).
        group: one of `GROUPS`.
        rule: the pass rule, one line, as the table shows it.
        run: runs the row.
        ci: part of the CI subset.
        expect_red: for a negative control, the violations the checker must report
            (their prefixes, e.g. `lost=`); it passes when red with those only.
        needs: programs the row cannot run without (`ip`, `iptables`, `openssl`, `cc`),
            and `root` if it must run as root.
    """

    name: str
    group: str
    rule: str
    run: Callable[[RowEnv], Outcome]
    ci: bool = True
    expect_red: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()

    @property
    def negative(self) -> bool:
        """Whether this row is a negative control."""
        return bool(self.expect_red)

    def missing(self) -> list[str]:
        """What this row needs that this machine lacks (programs, or being root)."""
        if "root" in self.needs and os.geteuid() != 0:
            return ["root"]
        return [tool for tool in self.needs if tool != "root" and shutil.which(tool) is None]


@dataclass(frozen=True)
class RowResult:
    """A row and what its run found, with the run's duration."""

    row: Row
    outcome: Outcome
    seconds: float

    @property
    def passed(self) -> bool:
        """Green for a normal row; for a negative control, red with only the
        violations it expects."""
        if not self.row.negative:
            return not self.outcome.red
        expected = self.row.expect_red
        return self.outcome.red and all(v.startswith(expected) for v in self.outcome.violations)


ROWS: list[Row] = []


def row(
    name: str,
    group: str,
    rule: str,
    *,
    ci: bool = True,
    expect_red: tuple[str, ...] = (),
    needs: tuple[str, ...] = (),
) -> Callable[[Callable[[RowEnv], Outcome]], Callable[[RowEnv], Outcome]]:
    """Register the decorated function as a row."""
    assert group in GROUPS, group

    def register(fn: Callable[[RowEnv], Outcome]) -> Callable[[RowEnv], Outcome]:
        ROWS.append(Row(name, group, rule, fn, ci, expect_red, needs))
        return fn

    return register


def run_row(r: Row, env: RowEnv) -> RowResult:
    """Run one row and time it."""
    started = time.monotonic()
    try:
        outcome = r.run(env)
    finally:
        env.procs.reap_all()
        for cleanup in reversed(env.cleanups):
            cleanup()
        env.cleanups.clear()
    return RowResult(r, outcome, time.monotonic() - started)


# -- pass-rule clauses -----------------------------------------------------------------


def no_loss(v: Verdict) -> list[str]:
    """Every acknowledged job was done or dead-lettered."""
    return [f"lost={v.lost} ({', '.join(v.lost_keys)})"] if v.lost else []


def no_unexpected(v: Verdict) -> list[str]:
    """Nothing ran that was never submitted or whose submission failed."""
    return [f"unexpected={v.unexpected} ({', '.join(v.unexpected_keys)})"] if v.unexpected else []


def no_duplicates(v: Verdict) -> list[str]:
    """No job was done twice."""
    return [f"duplicated={v.duplicated} ({', '.join(v.duplicated_keys)})"] if v.duplicated else []


def safe(v: Verdict) -> list[str]:
    """The clauses every row has: no loss, nothing unexpected."""
    return no_loss(v) + no_unexpected(v)


def explained(cluster: Cluster, faulted_pids: Iterable[int]) -> list[str]:
    """Duplicates only where a faulted worker had done the job before."""
    keys = unexplained_duplicates(cluster.jobs(), set(faulted_pids))
    return (
        [f"{len(keys)} duplicates not explained by the fault ({', '.join(keys[:5])})"]
        if keys
        else []
    )


def settle(cluster: Cluster) -> Verdict:
    """Wait until the run is settled; return the checker's verdict (`judge` reports a
    run that never settled)."""
    cluster.unsettled = not cluster.wait_settled()
    return cluster.verdict()


def judge(
    cluster: Cluster, verdict: Verdict, figure: str, *clauses: list[str], notes: Iterable[str] = ()
) -> Outcome:
    """The outcome of a settled run: the clauses every row has, plus the row's own."""
    unsettled = [f"not settled after {SETTLE_TIMEOUT_S:.0f} s"] if cluster.unsettled else []
    return Outcome(
        verdict=verdict,
        figure=figure,
        violations=[line for clause in (unsettled, safe(verdict), *clauses) for line in clause],
        merged_p99_s=cluster.merged_p99_s(),
        notes=list(notes),
    )
