"""Words of user-facing messages (CLI and demo): one home for how a count and its noun agree."""

from __future__ import annotations


def noun(count: object, singular: str, plural: str | None = None) -> str:
    """`singular` when `count` is exactly 1, else `plural` (default `singular` + s)."""
    return singular if count == 1 else plural or singular + "s"


def counted(count: int, singular: str, plural: str | None = None) -> str:
    """`count` and its noun: `1 job`, `0 jobs`, `2 dead letters`."""
    return f"{count} {noun(count, singular, plural)}"
