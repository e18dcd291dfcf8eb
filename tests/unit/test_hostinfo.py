"""Host facts: the CPU quota a cgroup tree allows (fake trees, no privileges needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetscale.controller.hostinfo import cgroup_cpus, default_capacity

SERVICE = "0::/system.slice/fleetscale.service\n"


def write(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_a_quota_on_the_own_cgroup_counts_not_only_one_at_the_root(tmp_path: Path) -> None:
    # A systemd CPUQuota=150% sits on the service's cgroup; the root has no cpu.max.
    write(tmp_path, "system.slice/fleetscale.service/cpu.max", "150000 100000\n")
    assert cgroup_cpus(tmp_path, SERVICE) == pytest.approx(1.5)
    assert default_capacity(8, cgroup_cpus(tmp_path, SERVICE)) == 1


def test_the_tightest_quota_on_the_path_wins(tmp_path: Path) -> None:
    write(tmp_path, "system.slice/cpu.max", "200000 100000\n")
    write(tmp_path, "system.slice/fleetscale.service/cpu.max", "max 100000\n")
    assert cgroup_cpus(tmp_path, SERVICE) == pytest.approx(2.0)


def test_inside_a_container_the_root_holds_its_own_quota(tmp_path: Path) -> None:
    write(tmp_path, "cpu.max", "300000 100000\n")
    assert cgroup_cpus(tmp_path, "0::/\n") == pytest.approx(3.0)


def test_no_quota_anywhere_is_unlimited(tmp_path: Path) -> None:
    write(tmp_path, "system.slice/fleetscale.service/cpu.max", "max 100000\n")
    assert cgroup_cpus(tmp_path, SERVICE) is None
    assert cgroup_cpus(tmp_path / "absent", "") is None


def test_cgroup_v1_quota_is_read_at_the_cpu_controller(tmp_path: Path) -> None:
    write(tmp_path, "cpu/cpu.cfs_quota_us", "50000\n")
    write(tmp_path, "cpu/cpu.cfs_period_us", "100000\n")
    assert cgroup_cpus(tmp_path, "4:cpu,cpuacct:/\n") == pytest.approx(0.5)
