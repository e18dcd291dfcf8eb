"""The demo's temporary directory, and the removal of those of demos that were killed.

A demo killed with SIGKILL cannot remove its directory (its Redis files and its ledger).
While it runs, each demo holds an exclusive `flock` on a file in its directory; a new
demo removes every demo directory whose lock it can take, as their demos have ended.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

PREFIX = "fleetscale-demo-"
LOCK_NAME = "running.lock"


@contextlib.contextmanager
def demo_directory() -> Iterator[Path]:
    """A new temporary directory, locked while the body runs and removed after it.

    Removes the directories that killed demos left behind first.
    """
    base = Path(tempfile.gettempdir())
    remove_abandoned(base)
    directory = Path(tempfile.mkdtemp(prefix=PREFIX, dir=base))
    lock = _lock(directory)
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)
        os.close(lock)  # after the removal: no other demo may remove it meanwhile


def _lock(directory: Path) -> int:
    """Lock a new file, then give it the lock file's name: no demo ever finds the
    lock file unlocked while this demo runs."""
    fresh = directory / (LOCK_NAME + ".new")
    fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    fresh.rename(directory / LOCK_NAME)
    return fd


def remove_abandoned(base: Path) -> list[Path]:
    """Remove the demo directories under `base` whose demo is no longer running (no
    process holds their lock); return them. Directories without a lock file (a demo
    still starting) and those it may not read are left alone."""
    removed = []
    for directory in sorted(base.glob(PREFIX + "*")):
        try:
            fd = os.open(directory / LOCK_NAME, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # a running demo holds it
            os.close(fd)
            continue
        shutil.rmtree(directory, ignore_errors=True)
        os.close(fd)
        removed.append(directory)
    return removed
