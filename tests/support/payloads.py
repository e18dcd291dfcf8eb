"""Hand-made job payloads for tests that feed workers what a producer never would."""

from __future__ import annotations

import msgpack


def raw_job(**fields: object) -> bytes:
    """A msgpack job map (`id` j, `task` ok, no arguments unless given); fields set to
    `...` are left out."""
    body: dict[str, object] = {"id": "j", "task": "ok", "args": [], "kwargs": {}}
    body.update(fields)
    return msgpack.packb({k: v for k, v in body.items() if v is not ...})


def nested(depth: int) -> list[object]:
    """A list nested `depth` levels deep."""
    value: list[object] = []
    for _ in range(depth):
        value = [value]
    return value
