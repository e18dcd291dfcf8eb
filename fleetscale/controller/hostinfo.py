"""Facts about this host, read once at start: how many CPUs this process may use.

The default worker capacity of a host is the CPU count allowed by the scheduler
affinity mask, lowered by a cgroup CPU quota (v2 `cpu.max`, v1 `cfs_quota_us`) when a
container limits it. Read once: they do not change under a running controller, and
reading /sys every tick is a known waste.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def affinity_cpus() -> int:
    """CPUs in this process's affinity mask (os.cpu_count where there is none)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def parse_cpu_max(text: str) -> float | None:
    """CPUs allowed by a cgroup v2 `cpu.max` line (`quota period` or `max period`)."""
    parts = text.split()
    if len(parts) != 2 or parts[0] == "max":
        return None
    quota, period = float(parts[0]), float(parts[1])
    return quota / period if quota > 0 and period > 0 else None


def cgroup_cpus(root: Path = CGROUP_ROOT) -> float | None:
    """CPUs allowed by the cgroup quota, or None when unlimited or unknown."""
    v2 = root / "cpu.max"
    if v2.exists():
        return parse_cpu_max(v2.read_text())
    quota, period = root / "cpu" / "cpu.cfs_quota_us", root / "cpu" / "cpu.cfs_period_us"
    if quota.exists() and period.exists():
        q, p = int(quota.read_text()), int(period.read_text())
        return q / p if q > 0 and p > 0 else None
    return None


def default_capacity(affinity: int, quota: float | None) -> int:
    """Workers a host may run by default: its usable CPUs, at least one."""
    usable = affinity if quota is None else min(affinity, quota)
    return max(1, math.floor(usable))
