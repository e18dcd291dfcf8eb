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


def complete_lines(path: Path) -> list[str]:
    """The lines of a ledger that writers append to while it is read: a line a writer
    has not finished yet (no newline so far) is left for the next read."""
    if not path.exists():
        return []
    text = path.read_text()
    return text[: text.rfind("\n") + 1].splitlines()


def read_ledger(path: Path) -> list[Entry]:
    entries = []
    for line in complete_lines(path):
        kind, key, pid, wall = line.split()
        entries.append(Entry(kind, key, int(pid), float(wall)))
    return entries


def done_counts(path: Path) -> Counter[str]:
    return Counter(e.key for e in read_ledger(path) if e.kind == "done")
