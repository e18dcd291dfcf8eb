"""Reading the benchmark ledger: `key pid wall_s` per started job."""

from __future__ import annotations

from pathlib import Path


def read_starts(path: Path) -> list[tuple[str, int, float]]:
    """Every ledger line as (key, pid, wall time s)."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        key, pid, wall = line.split()
        rows.append((key, int(pid), float(wall)))
    return rows
