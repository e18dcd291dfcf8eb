"""bench/memory.py's measurements run on tiny sizes and return sane structures (no
memory sizes are asserted: they belong to the bench's report, not to a test)."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from bench.memory import (
    SUBMIT_KINDS,
    Footprint,
    Results,
    Sizes,
    SubmitMemory,
    controller_footprint,
    drain_footprint,
    growth,
    previous_code,
    report,
    submit_memory,
)
from fleetscale.embedded import EmbeddedRedis
from fleetscale.keys import FleetKeys


def test_growth_is_the_slope_past_the_start_up_per_unit() -> None:
    start_up = [(0, 9000), (1, 5000)]
    line = [(x, 1000 + 3 * x) for x in range(10, 100, 10)]
    assert growth(start_up + line, per=100, after=10) == pytest.approx(300)
    assert math.isnan(growth(line[:2], per=100, after=0))


def _sane(samples: tuple[tuple[int, int], ...], most: int) -> None:
    xs = [x for x, _ in samples]
    assert xs == sorted(xs)
    assert xs[0] > 0 and xs[-1] <= most
    assert all(rss > 0 for _, rss in samples)


@pytest.mark.parametrize("kind", ["raw", "telemetry_on"])
def test_a_drain_is_sampled_against_the_jobs_done(private_redis: EmbeddedRedis, kind: str) -> None:
    footprint = drain_footprint(private_redis.url, kind, 3000)
    _sane(footprint.samples, 3000)
    assert footprint.peak_kib >= max(rss for _, rss in footprint.samples)
    assert (footprint.start_kib, footprint.end_kib) == (
        footprint.samples[0][1],
        footprint.samples[-1][1],
    )


def test_the_controller_is_sampled_against_its_ticks(private_redis: EmbeddedRedis) -> None:
    footprint = controller_footprint(private_redis.url, ticks=10)
    _sane(footprint.samples, 10_000)
    assert footprint.samples[-1][0] >= 10
    assert footprint.peak_kib >= max(rss for _, rss in footprint.samples)


@pytest.mark.parametrize("kind", SUBMIT_KINDS)
def test_each_producer_submits_every_job_and_reports_its_memory(
    private_redis: EmbeddedRedis, kind: str
) -> None:
    memory = submit_memory(private_redis.url, kind, 1500)
    assert 0 < memory.base_kib <= memory.peak_kib
    assert memory.traced_peak_kib > 0
    client = redis.Redis.from_url(private_redis.url)
    assert client.xlen(FleetKeys("memory").jobs) == 1500  # the traced run's, in full
    client.close()


def test_the_report_has_a_row_for_each_measurement() -> None:
    drain = Footprint("raw", 100, 110, 120, ((1, 100), (2, 110)), 5.0, 100_000)
    ctl = Footprint("controller", 200, 210, 220, ((50, 200), (100, 210)), 1.0, 1000)
    submits = tuple(SubmitMemory(k, 10, 20, 5, 0.1) for k in SUBMIT_KINDS)
    text = report(Results(Sizes(2, 100, 10), (drain,), (ctl,), submits))
    for name in ("| raw |", "| controller |", *(f"| {k} |" for k in SUBMIT_KINDS)):
        assert name in text


def test_help_names_the_quick_mode() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bench.memory", "--help"], check=True, capture_output=True
    ).stdout
    assert b"--quick" in out


def test_the_previous_code_is_that_commits_fleetscale_and_bench(tmp_path: Path) -> None:
    short, code = previous_code("HEAD", tmp_path)
    head = subprocess.run(["git", "rev-parse", "HEAD"], check=True, capture_output=True)
    assert head.stdout.decode().startswith(short)
    assert (code / "fleetscale" / "cli").is_dir() and (code / "bench" / "apps.py").is_file()
