"""Named process exit codes, shared by every command and by the worker process."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Exit codes of `fleetscale` commands (DESIGN §3)."""

    OK = 0
    FAILURE = 1
    USAGE = 2
    REDIS_UNREACHABLE = 3
