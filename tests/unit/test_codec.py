"""The job wire format: round trips, and a reason for every malformed entry."""

from __future__ import annotations

import pickle

import msgpack
import pytest

from fleetscale.codec import Job, MalformedJob, decode_job, encode_job, peek_identity
from fleetscale.errors import PayloadTooLarge, SubmitError
from fleetscale.keys import JOB_FIELD


def test_a_job_survives_encoding_and_decoding() -> None:
    job = Job("id-1", "resize", ("img", 3), {"width": 640, "tags": ["a"]}, prior_attempts=2)
    back = decode_job({JOB_FIELD: encode_job(job, 1 << 20)}, 1 << 20)
    assert back == Job("id-1", "resize", ["img", 3], {"width": 640, "tags": ["a"]}, 2)


def test_unencodable_arguments_are_refused_with_the_task_named() -> None:
    with pytest.raises(SubmitError, match="'resize'"):
        encode_job(Job("i", "resize", (object(),)), 1 << 20)


@pytest.mark.parametrize(
    ("args", "kwargs", "named"),
    [
        (({17: 0.5},), {}, "17 (int)"),
        ((), {"w": [{"a": 1}, {None: 2}]}, "None (NoneType)"),
        (([{(1, 2): 0}],), {}, "(1, 2) (tuple)"),
        ((), {3: "x"}, "3 (int)"),
    ],
)
def test_a_dict_key_that_is_not_a_str_is_refused_with_the_key_named(
    args: tuple[object, ...], kwargs: dict[object, object], named: str
) -> None:
    # msgpack packs any key, but decode_job unpacks with strict_map_key: a worker
    # would dead-letter the job as "payload is not msgpack".
    with pytest.raises(SubmitError) as caught:
        encode_job(Job("i", "resize", args, kwargs), 1 << 20)
    assert f"'resize' hold a dict key that is not a str, {named}" in str(caught.value)


def test_str_and_bytes_dict_keys_at_any_depth_are_accepted() -> None:
    job = Job("i", "t", ({"a": {b"raw": [{"b": 1}]}},), {"k": {"x": None}})
    back = decode_job({JOB_FIELD: encode_job(job, 1 << 20)}, 1 << 20)
    assert (back.args, back.kwargs) == ([{"a": {b"raw": [{"b": 1}]}}], {"k": {"x": None}})


def test_an_oversized_job_is_refused_with_its_size() -> None:
    with pytest.raises(PayloadTooLarge, match="bytes"):
        encode_job(Job("i", "t", ("x" * 2000,)), 1000)


def body(**fields: object) -> dict[bytes, bytes]:
    base: dict[str, object] = {"id": "j", "task": "t", "args": [], "kwargs": {}}
    base.update(fields)
    return {JOB_FIELD: msgpack.packb({k: v for k, v in base.items() if v is not ...})}


def nested(depth: int) -> list[object]:
    value: list[object] = []
    for _ in range(depth):
        value = [value]
    return value


MALFORMED = {
    "no job field": ({b"other": b"x"}, "no 'j' field"),
    "not msgpack": ({JOB_FIELD: b"\xc1\xc1"}, "not msgpack"),
    "pickle bytes": ({JOB_FIELD: pickle.dumps({"task": "t"})}, "not msgpack"),
    "not a map": ({JOB_FIELD: msgpack.packb([1, 2])}, "not a map"),
    "missing id": (body(id=...), "no 'id'"),
    "missing task": (body(task=...), "no 'task'"),
    "task not a string": (body(task=5), "'task' has type int"),
    "args not a list": (body(args="x"), "'args' has type str"),
    "kwargs not a map": (body(kwargs=[1]), "'kwargs' has type list"),
    "attempts not an int": (body(n="2"), "'n' has type str"),
    "negative attempts": (body(n=-1), "negative"),
    "invalid utf-8": (
        {JOB_FIELD: b"\x84\xa2id\xa1j\xa4task\xa2\xff\xfe\xa4args\x90\xa6kwargs\x80"},
        "UTF-8",
    ),
    "too deep": (body(args=nested(100)), "nest"),
    "oversized": (body(args=["x" * 5000]), "exceeds max_payload_bytes"),
}


@pytest.mark.parametrize("name", MALFORMED)
def test_every_malformed_entry_is_refused_with_a_reason(name: str) -> None:
    fields, reason = MALFORMED[name]
    with pytest.raises(MalformedJob) as caught:
        decode_job(fields, max_bytes=4096)
    assert reason in caught.value.reason


def test_identity_is_recovered_from_a_job_that_is_otherwise_bad() -> None:
    assert peek_identity(body(args="x")) == ("j", "t")
    assert peek_identity({JOB_FIELD: b"\xc1"}) == ("", "")


def test_a_keyword_name_that_is_not_a_str_is_refused_at_submit() -> None:
    # bytes keys pass msgpack's decoding, but no task can take them as keywords.
    with pytest.raises(SubmitError, match=r"keyword argument b'k' of task 'resize' is a bytes"):
        encode_job(Job("i", "resize", (), {b"k": 1}), 1 << 20)


def test_arguments_nested_deeper_than_a_worker_accepts_are_refused_at_submit() -> None:
    def nested(levels: int) -> list[object]:
        value: list[object] = ["x" * 80]
        for _ in range(levels - 1):
            value = [value]
        return value

    assert decode_job({JOB_FIELD: encode_job(Job("i", "t", (nested(63),)), 1 << 20)}, 1 << 20)
    with pytest.raises(SubmitError, match="nest deeper than 64 levels"):
        encode_job(Job("i", "t", (nested(64),)), 1 << 20)
    with pytest.raises(MalformedJob, match="nest deeper"):  # what a worker would have said
        decode_job({JOB_FIELD: msgpack.packb({"id": "i", "task": "t", "args": [nested(64)],
                                               "kwargs": {}})}, 1 << 20)  # fmt: skip
