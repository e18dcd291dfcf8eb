"""The nesting check skips its walk only for jobs whose arguments are too short to nest
past the limit: at submit and at decode it refuses exactly what the walk refuses."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleetscale.codec import MAX_NESTING, Job, MalformedJob, decode_job, encode_job
from fleetscale.errors import SubmitError
from fleetscale.keys import JOB_FIELD


def nested(levels: int) -> list[Any]:
    """`levels` lists, each holding the next, the innermost empty: a byte a level."""
    value: list[Any] = []
    for _ in range(levels - 1):
        value = [value]
    return value


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    if isinstance(value, list | tuple):
        return 1 + max(map(depth, value), default=0)
    return 0


TEXT = st.sampled_from(["i", "resize", "é" * 40, "x" * 300, "任务" * 20])


@given(
    job_id=TEXT,
    task=TEXT,
    levels=st.integers(MAX_NESTING - 2, MAX_NESTING + 2),
    in_kwargs=st.booleans(),
)
def test_the_shortest_arguments_at_the_limit_are_judged_as_the_full_walk_judges(
    job_id: str, task: str, levels: int, in_kwargs: bool
) -> None:
    args, kwargs = ((), {"k": nested(levels)}) if in_kwargs else ((nested(levels),), {})
    too_deep = max(depth(args), depth(kwargs)) > MAX_NESTING
    job = Job(job_id, task, args, kwargs)
    if too_deep:
        with pytest.raises(SubmitError, match="nest deeper"):
            encode_job(job, 1 << 20)
    else:
        encode_job(job, 1 << 20)
    # A worker, on a map as short as one can be (no "n" field).
    body = {"id": job_id, "task": task, "args": list(args), "kwargs": kwargs}
    fields = {JOB_FIELD: msgpack.packb(body, use_bin_type=True)}
    if too_deep:
        with pytest.raises(MalformedJob, match="nest deeper"):
            decode_job(fields, 1 << 20)
    else:
        assert decode_job(fields, 1 << 20).task == task
