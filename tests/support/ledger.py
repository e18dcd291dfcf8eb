"""Reading a task ledger (see tests/apps/ledger.py)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Entry:
    kind: str
    key: str
    pid: int
    wall_s: float


def read_ledger(path: Path) -> list[Entry]:
    if not path.exists():
        return []
    entries = []
    for line in path.read_text().splitlines():
        kind, key, pid, wall = line.split()
        entries.append(Entry(kind, key, int(pid), float(wall)))
    return entries


def done_counts(path: Path) -> Counter[str]:
    return Counter(e.key for e in read_ledger(path) if e.kind == "done")
