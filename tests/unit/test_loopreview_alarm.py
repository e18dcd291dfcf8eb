"""An alarm that lands as the task returns, before the watchdog is disarmed, leaves no
deadline behind: one left armed made the watchdog end the worker later, idle or in the
middle of another job, as if that job had ignored its limit."""

from __future__ import annotations

import threading
from types import SimpleNamespace

from fleetscale.app import App
from fleetscale.codec import Job
from fleetscale.worker.consumer import Consumer
from fleetscale.worker.watchdog import JobTimeout, Watchdog


class AlarmBeforeDisarm(Watchdog):
    """A real watchdog whose SIGALRM handler runs after the task returned and before
    `disarm` cleared the deadline (the signal lands between two bytecodes)."""

    def disarm(self) -> None:
        if not self.signalled:
            self.signalled = True
            raise JobTimeout(f"ran past its time limit of {self.limit_s:g}s")
        super().disarm()


def test_an_alarm_landing_before_the_disarm_leaves_the_watchdog_disarmed() -> None:
    app = App("edge")

    @app.task(timeout_s=1.0)
    def quick() -> None:
        pass

    watchdog = AlarmBeforeDisarm(threading.get_ident(), hard_exit=False, exit_code=1)
    consumer = SimpleNamespace(watchdog=watchdog)
    failure = Consumer._call(consumer, app.tasks["quick"], Job("j1", "quick", (), {}), 0.0)  # type: ignore[arg-type]
    assert failure is not None and failure.reason.startswith("JobTimeout")
    assert watchdog.deadline is None, "the finished job's deadline is still armed"
