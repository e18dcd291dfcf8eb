"""The independent ledger: what producers and workers did, kept outside Redis.

Every line is `<kind> <key> <pid> <wall_s> [detail]`, appended with one `write` to a
file opened in append mode (atomic for short lines), so a worker killed mid-job leaves
whole lines only. Producers write to `producer.txt` (`submitted` before the call, then
`acknowledged`, `failed` or `indeterminate`), workers to `workers.txt` (`start` and
`done`, from inside the task). Wall times are the true time of the machine, in seconds.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support.ledger import complete_lines

PRODUCER_FILE = "producer.txt"
WORKER_FILE = "workers.txt"
SUBMITTED, ACKNOWLEDGED, FAILED, INDETERMINATE = (
    "submitted",
    "acknowledged",
    "failed",
    "indeterminate",
)
START, DONE = "start", "done"


@dataclass(frozen=True, slots=True)
class Record:
    """One ledger line.

    Attributes:
        kind: what happened (see the module docstring).
        key: the job's key: unique per job, the first argument of every task.
        pid: the process that wrote the line.
        wall_s: when, true wall-clock seconds.
        detail: why a submission failed, if it did.
    """

    kind: str
    key: str
    pid: int
    wall_s: float
    detail: str = ""


def append_line(path: Path | str, kind: str, key: str, wall_s: float, detail: str = "") -> None:
    """Append one record to `path` with a single write (safe across processes)."""
    text = f"{kind} {key} {os.getpid()} {wall_s:.6f}"
    if detail:
        text += " " + " ".join(detail.split())[:300]
    with open(path, "a") as ledger:
        ledger.write(text + "\n")


def read_ledger(directory: Path) -> list[Record]:
    """Every record of a run's ledger, producer lines first."""
    records = []
    for name in (PRODUCER_FILE, WORKER_FILE):
        for line in complete_lines(directory / name):
            kind, key, pid, wall, *detail = line.split(" ", 4)
            records.append(Record(kind, key, int(pid), float(wall), " ".join(detail)))
    return records


class ProducerLedger:
    """The producer side of a run's ledger (thread-safe)."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / PRODUCER_FILE
        self._lock = threading.Lock()

    def note(self, kind: str, key: str, detail: str = "") -> None:
        """Record `kind` for job `key` now."""
        with self._lock:
            append_line(self.path, kind, key, time.time(), detail)
