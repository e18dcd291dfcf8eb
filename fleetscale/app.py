"""`App` and `Task`: the registry of a fleet's task functions.

Workers run only tasks registered here, looked up by name; a payload can never name a
function to import. A task's `submit` uses the app's own `Producer`, created on first use.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, ParamSpec, Protocol, TypeVar, overload

from fleetscale.errors import AppImportError, TaskError
from fleetscale.keys import validate_fleet_name
from fleetscale.producer import Producer

P = ParamSpec("P")
R = TypeVar("R")

DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_TIMEOUT_S = 600.0


@dataclass(frozen=True, slots=True)
class TaskOptions:
    """How the worker runs one task.

    Attributes:
        max_attempts: runs before the job is dead-lettered (deliveries counted by Redis,
            so a worker killed mid-job uses up an attempt too, and so does one killed
            while it held the job in a prefetched batch).
        timeout_s: the longest one run may take, seconds; then it fails with `JobTimeout`.
    """

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    timeout_s: float = DEFAULT_TIMEOUT_S

    def validate(self, name: str) -> TaskOptions:
        """Check the options of task `name`; return self. Raises TaskError."""
        if not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            raise TaskError(f"task {name!r}: max_attempts={self.max_attempts!r} must be ≥ 1")
        if not self.timeout_s > 0:
            raise TaskError(f"task {name!r}: timeout_s={self.timeout_s!r} must be > 0")
        return self


class Task(Generic[P, R]):
    """A registered task: call it to run it here, `submit` it to run it on the fleet."""

    def __init__(self, app: App, name: str, fn: Callable[P, R], options: TaskOptions) -> None:
        self.app = app
        self.name = name
        self.fn = fn
        self.options = options.validate(name)
        self._signature: inspect.Signature | None = None

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.fn(*args, **kwargs)

    def submit(self, *args: P.args, **kwargs: P.kwargs) -> str:
        """Submit a job running this task with these arguments; return its job id."""
        return self.app.producer().submit(self.name, args, kwargs)

    def submit_with(
        self,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        job_id: str | None = None,
        delay_s: float = 0.0,
        timeout_s: float | None = None,
    ) -> str:
        """Submit with job options (see `Producer.submit`); return the job id."""
        return self.app.producer().submit(
            self.name, args, kwargs, job_id=job_id, delay_s=delay_s, timeout_s=timeout_s
        )

    def accepts(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> bool:
        """Whether the function's signature binds these arguments (no call is made).

        True when the function has no signature to check (builtins such as
        `time.sleep`): nothing says the arguments do not fit.
        """
        if self._signature is None:
            try:
                self._signature = inspect.signature(self.fn)
            except ValueError:
                return True
        try:
            self._signature.bind(*args, **kwargs)
        except TypeError:
            return False
        return True

    def __repr__(self) -> str:
        return f"Task({self.name!r})"


def deferred_kind(value: object) -> str | None:
    """What `value` is, if it is work that has not run yet and runs only when awaited or
    iterated ("a coroutine", "a generator", …); None for anything else.

    A task that returns one did none of its work (a plain function wrapping an async
    one): the worker fails the job rather than count it done.

    Called on every job's result: None, what most tasks return, is answered first (the
    `isawaitable` check, an ABC lookup, was about a sixth of a no-op job's instructions).
    """
    if value is None:
        return None
    if inspect.iscoroutine(value):
        return "a coroutine"
    if inspect.isawaitable(value):
        return f"an awaitable {type(value).__name__}"
    if inspect.isgenerator(value):
        return "a generator"
    if inspect.isasyncgen(value):
        return "an async generator"
    return None


def _deferred_function_kind(func: Callable[..., Any]) -> str | None:
    """What `func` is, if calling it returns work that has not run yet (see
    `deferred_kind`); None for a plain function."""
    if inspect.iscoroutinefunction(func):
        return "`async def`"
    if inspect.isasyncgenfunction(func):
        return "an async generator function"
    if inspect.isgeneratorfunction(func):
        return "a generator function"
    return None


class TaskDecorator(Protocol):
    """What `@app.task(...)` returns: turns a function into a registered `Task`."""

    def __call__(self, fn: Callable[P, R], /) -> Task[P, R]:
        """Register `fn`."""
        ...


class App:
    """A fleet's tasks and its default producer settings.

    Args:
        fleet: the fleet name; it namespaces every Redis key of the fleet.
        redis_url: the Redis URL for `Task.submit`; otherwise `FLEETSCALE_REDIS_URL`
            or the default is used (read when the producer is first needed). In a
            `fleetscale worker`, unset means the worker's own Redis, so follow-up
            jobs a task submits go where the worker reads.
    """

    def __init__(self, fleet: str, *, redis_url: str | None = None) -> None:
        self.fleet = validate_fleet_name(fleet)
        self.redis_url = redis_url
        self._tasks: dict[str, Task[Any, Any]] = {}
        self._producer: Producer | None = None
        self._lock = threading.Lock()

    @property
    def tasks(self) -> Mapping[str, Task[Any, Any]]:
        """Registered tasks by name."""
        return self._tasks

    @overload
    def task(self, fn: Callable[P, R], /) -> Task[P, R]: ...

    @overload
    def task(
        self,
        *,
        name: str | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> TaskDecorator: ...

    def task(
        self,
        fn: Callable[..., Any] | None = None,
        *,
        name: str | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> Task[..., Any] | TaskDecorator:
        """Register a task, as `@app.task` or `@app.task(name=…, max_attempts=…, timeout_s=…)`.

        The name defaults to the function's `__name__`. Raises TaskError on a name
        registered twice or bad options.
        """
        options = TaskOptions(max_attempts=max_attempts, timeout_s=timeout_s)

        def register(func: Callable[P, R]) -> Task[P, R]:  # the TaskDecorator
            task_name = name or func.__name__
            kind = _deferred_function_kind(func)
            if kind is not None:
                raise TaskError(
                    f"task {task_name!r} is {kind}: calling it does none of its work, and "
                    "workers run plain functions; wrap it with asyncio.run (or iterate it) "
                    "in a plain function"
                )
            if task_name in self._tasks:
                raise TaskError(f"task {task_name!r} is already registered in app {self.fleet!r}")
            registered = Task(self, task_name, func, options)
            self._tasks[task_name] = registered
            return registered

        return register(fn) if fn is not None else register

    def producer(self) -> Producer:
        """The app's producer, created on first use and again after it was closed
        (thread-safe)."""
        with self._lock:
            if self._producer is None or self._producer.closed:
                self._producer = Producer(self.fleet, self.redis_url)
            return self._producer

    def __repr__(self) -> str:
        return f"App({self.fleet!r}, tasks={sorted(self._tasks)})"


def load_app(path: str) -> App:
    """Import the `App` named by `module:attr` (the current directory is importable).

    Raises:
        AppImportError: a malformed path, a failing import, or an attribute that is
            missing or not an App; the message says which.
    """
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise AppImportError(f"bad APP {path!r}: use module:attribute, e.g. myproject.tasks:app")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise AppImportError(f"cannot import {module_name!r} for APP {path!r}: {exc}") from None
    except Exception as exc:
        raise AppImportError(
            f"importing {module_name!r} for APP {path!r} failed: {type(exc).__name__}: {exc}"
        ) from None
    found: Any = module
    for part in attr.split("."):
        found = getattr(found, part, None)
    if not isinstance(found, App):
        kind = "nothing" if found is None else type(found).__name__
        raise AppImportError(f"APP {path!r} names {kind}, not a fleetscale App")
    return found
