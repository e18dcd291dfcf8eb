"""Hostile stream entries: what a writer with XADD permission could add, each with the
reason a worker must dead-letter it for. Running any of them would touch a canary file."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

from fleetscale.keys import JOB_FIELD
from tests.support.payloads import nested, raw_job


class Exploit:
    """Unpickling this would run a shell command (fleetscale never unpickles)."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (self.command,))


def job(**fields: object) -> bytes:
    """A msgpack job for the fault app's `work` task; fields set to `...` are left out."""
    return raw_job(**{"task": "work", **fields})


def hostile_entries(canary: Path) -> dict[str, tuple[dict[bytes, bytes], str]]:
    """Raw stream entries a hostile writer could add, with the reason each must be
    dead-lettered for. Running any of them would touch the canary file."""
    touch = f"touch {canary}"
    j = JOB_FIELD
    return {
        "pickle": ({j: pickle.dumps(Exploit(touch))}, "not msgpack"),
        "import path": ({j: job(id="h1", task="os.system", args=["hostile-h1", touch])},
                        "unknown task 'os.system'"),
        "module path": ({j: job(id="h2", task="tests.faults.app.work", args=["hostile-h2"])},
                        "unknown task"),
        "10 MB": ({j: job(id="h3", args=["hostile-h3", 0.0, "x" * 10 * 2**20])}, "exceeds"),
        "nested": ({j: job(id="h4", args=["hostile-h4", nested(200)])}, "nest"),
        "invalid utf-8": ({j: b"\x84\xa2id\xa2h5\xa4task\xa4wo\xffk\xa4args\x90\xa6kwargs\x80"},
                          "UTF-8"),
        "no task": ({j: job(id="h6", task=..., args=["hostile-h6"])}, "no 'task'"),
        "no job field": ({b"x": b"1"}, "no 'j' field"),
        "args a map": ({j: job(id="h7", args={"key": "hostile-h7"})}, "'args' has type"),
        "bad arguments": ({j: job(id="h8", args=["hostile-h8"], kwargs={"shell": touch})},
                          "arguments do not fit"),
        "attempts used up": ({j: job(id="h9", args=["hostile-h9"], n=10**6)}, "gave up"),
    }  # fmt: skip
