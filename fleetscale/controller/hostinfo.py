"""Facts about this host, read once at start: how many CPUs this process may use.

The default worker capacity of a host is the CPU count allowed by the scheduler affinity
mask, lowered by a cgroup CPU quota (v2 `cpu.max` on this process's cgroup path, v1
`cfs_quota_us`) when a container or a systemd unit limits it. Read once: they do not
change under a running controller, and reading /sys every tick is a known waste.
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


def cgroup_cpus(root: Path = CGROUP_ROOT, membership: str | None = None) -> float | None:
    """CPUs allowed by the cgroup quota, or None when unlimited or unknown.

    Under cgroup v2 the quota of this process's own cgroup and of each ancestor
    applies, so the tightest counts: a systemd `CPUQuota=` sits on the service's
    cgroup, not at the root (inside a container the root is the container's own).

    Args:
        root: where the cgroup file system is mounted.
        membership: the text of `/proc/self/cgroup` (read when None).
    """
    v2 = [d / "cpu.max" for d in _v2_cgroup_dirs(root, membership)]
    limits = [parse_cpu_max(f.read_text()) for f in v2 if f.exists()]
    if limits:
        return min((limit for limit in limits if limit is not None), default=None)
    quota, period = root / "cpu" / "cpu.cfs_quota_us", root / "cpu" / "cpu.cfs_period_us"
    if quota.exists() and period.exists():
        q, p = int(quota.read_text()), int(period.read_text())
        return q / p if q > 0 and p > 0 else None
    return None


def _v2_cgroup_dirs(root: Path, membership: str | None) -> list[Path]:
    """This process's cgroup v2 directory and its ancestors up to `root`."""
    if membership is None:
        try:
            membership = Path("/proc/self/cgroup").read_text()
        except OSError:
            membership = ""
    path = next((line[3:] for line in membership.splitlines() if line.startswith("0::")), "/")
    parts = [part for part in path.split("/") if part and part != ".."]
    return [root.joinpath(*parts[:depth]) for depth in range(len(parts), -1, -1)]


def default_capacity(affinity: int, quota: float | None) -> int:
    """Workers a host may run by default: its usable CPUs, at least one."""
    usable = affinity if quota is None else min(affinity, quota)
    return max(1, math.floor(usable))
