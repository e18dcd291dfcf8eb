"""App and Task: registration, options and loading."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from fleetscale.app import App, deferred_kind, load_app
from fleetscale.errors import AppImportError, TaskError


def test_a_task_is_registered_by_its_function_name_or_the_name_given() -> None:
    app = App("media")

    @app.task
    def resize(image_id: str, width: int) -> None: ...

    @app.task(name="mail.send", max_attempts=5, timeout_s=30)
    def send(to: str) -> None: ...

    assert set(app.tasks) == {"resize", "mail.send"}
    assert app.tasks["mail.send"].options.max_attempts == 5
    assert resize.accepts(["img"], {"width": 3}) and not resize.accepts([], {})


def test_a_name_registered_twice_is_refused() -> None:
    app = App("media")

    @app.task(name="x")
    def one() -> None: ...

    with pytest.raises(TaskError, match="already registered"):

        @app.task(name="x")
        def two() -> None: ...


async def fetch() -> None: ...


async def stream_pages() -> AsyncIterator[int]:
    yield 1


def lines() -> Iterator[str]:
    yield "line"


@pytest.mark.parametrize(
    ("fn", "kind"),
    [
        (fetch, "async def"),
        (stream_pages, "an async generator function"),
        (lines, "a generator function"),
    ],
)
def test_a_task_whose_call_does_none_of_its_work_is_refused_at_registration(
    fn: Callable[[], object], kind: str
) -> None:
    # A worker calls a task and goes on: the body of these would never run.
    with pytest.raises(TaskError, match=kind):
        App("media").task(fn)


async def _awaitable() -> None: ...


class Later:
    def __await__(self) -> Iterator[None]:
        yield


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (lambda: None, None),
        (lambda: 0, None),
        (lambda: [], None),
        (lambda: iter([1]), None),
        (lines, "a generator"),
        (stream_pages, "an async generator"),
        (Later, "an awaitable Later"),
    ],
)
def test_deferred_kind_names_only_work_that_has_not_run(
    make: Callable[[], object], kind: str | None
) -> None:
    assert deferred_kind(make()) == kind


def test_deferred_kind_names_a_coroutine() -> None:
    coroutine = _awaitable()
    assert deferred_kind(coroutine) == "a coroutine"
    coroutine.close()


@pytest.mark.parametrize(
    ("options", "word"), [({"max_attempts": 0}, "max_attempts"), ({"timeout_s": 0}, "timeout_s")]
)
def test_bad_task_options_are_refused(options: dict, word: str) -> None:
    with pytest.raises(TaskError, match=word):
        App("media").task(name="t", **options)(lambda: None)


def test_an_app_path_must_name_an_app() -> None:
    assert load_app("tests.apps.ledger:app").fleet
    with pytest.raises(AppImportError, match="not a fleetscale App"):
        load_app("tests.apps.ledger:note")
