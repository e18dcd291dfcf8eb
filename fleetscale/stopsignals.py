"""The stop signals of the long-running commands, `worker` and `controller`."""

from __future__ import annotations

import signal
from collections.abc import Callable
from types import FrameType

Handler = Callable[[int, FrameType | None], None]


def handle_stop_signals(handler: Handler, *, terminal: bool = True) -> None:
    """Install `handler` for SIGTERM and, with `terminal`, for Ctrl-C (SIGINT) and a
    closed terminal (SIGHUP), except where those two were ignored at start (`nohup`, a
    background job of a script): a process started so must outlive its terminal.
    Main thread only."""
    signal.signal(signal.SIGTERM, handler)
    if not terminal:
        return
    for signum in (signal.SIGINT, signal.SIGHUP):
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, handler)
