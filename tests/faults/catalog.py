"""Every row of the fault suite, in table order (importing a row module registers it)."""

from __future__ import annotations

from tests.faults import (  # noqa: F401
    rows_controller,
    rows_network,
    rows_redis,
    rows_security,
    rows_streams,
    rows_worker,
)
from tests.faults.rows import GROUPS, ROWS, Row


def all_rows() -> list[Row]:
    """Every row, grouped in `GROUPS` order."""
    return sorted(ROWS, key=lambda r: GROUPS.index(r.group))


def ci_rows() -> list[Row]:
    """The CI subset."""
    return [r for r in all_rows() if r.ci]
