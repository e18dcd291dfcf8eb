"""The demo's summary, as it prints it."""

from __future__ import annotations

import pytest

from fleetscale.demo.view import Summary


@pytest.mark.parametrize(("workers", "words"), [(1, "needs 1 worker:"), (3, "needs 3 workers:")])
def test_the_fixed_fleet_line_agrees_with_its_count(workers: int, words: str) -> None:
    # It said "needs 1 workers" when one worker met the target.
    summary = Summary(jobs=10, completed=10, lost=0, duplicated=0, unfinished=0,
                      wait_p50_s=0.01, wait_p99_s=0.02, worker_seconds=30.0,
                      static_workers=workers, static_worker_seconds=60.0 * workers,
                      target_p99_s=0.5)  # fmt: skip
    assert words in summary.lines()[-1]
