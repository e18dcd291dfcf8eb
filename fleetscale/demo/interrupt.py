"""How the demo takes SIGINT, SIGTERM and SIGHUP.

The first of them stops the demo: a KeyboardInterrupt in the main thread, whose
unwinding stops the load, drains the controller and its workers, stops the private
Redis and removes the demo's files. A later signal, or one during a cleanup, must not
break that off (a second Ctrl-C used to leave the controller and its workers running
while the demo said every process had exited), so it only sets `hurry`, and the cleanup
kills the controller's process group instead of waiting for its drain. SIGHUP (the
terminal closed) is taken like the others: by default it would end the demo with no
cleanup at all.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupts:
    """The demo's signal handlers and what they have seen. Main thread only.

    Attributes:
        received: the first signal received, None before any.
        hurry: a second signal, or one during a cleanup: end the processes now, do
            not let them drain.
    """

    def __init__(self) -> None:
        self.received: int | None = None
        self.hurry = False
        self._cleaning = False

    @contextlib.contextmanager
    def installed(self) -> Iterator[Interrupts]:
        """Handle `SIGNALS` while the body runs (set, not inherited: a shell starts a
        background job with SIGINT ignored); the previous handlers after."""
        previous = {signum: signal.signal(signum, self._handle) for signum in SIGNALS}
        try:
            yield self
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, signal.SIG_DFL if handler is None else handler)

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """Run a cleanup that no signal breaks off: during it a signal sets `hurry`."""
        was, self._cleaning = self._cleaning, True
        try:
            yield
        finally:
            self._cleaning = was

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        stopping = self._cleaning or self.received is not None
        if self.received is None:
            self.received = signum
        if stopping:
            self.hurry = True
            return
        raise KeyboardInterrupt
