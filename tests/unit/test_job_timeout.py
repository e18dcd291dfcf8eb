"""The time limit at the edge: an alarm that lands as the task returns is a timeout."""

from __future__ import annotations

from types import SimpleNamespace

from fleetscale.app import App
from fleetscale.codec import Job
from fleetscale.worker.consumer import Consumer
from fleetscale.worker.watchdog import JobTimeout


class AlarmAtTheBell:
    """A watchdog whose alarm handler runs just after the task returned, before the
    consumer could disarm it (the signal is delivered between two bytecodes)."""

    def arm(self, timeout_s: float, started_s: float) -> None:
        self.armed = True

    def disarm(self) -> None:
        if self.armed:
            self.armed = False
            raise JobTimeout("ran past its time limit of 1s")


def test_an_alarm_landing_as_the_task_returns_is_a_timeout_not_a_crash() -> None:
    app = App("edge")

    @app.task(timeout_s=1.0)
    def quick() -> None:
        pass

    consumer = SimpleNamespace(watchdog=AlarmAtTheBell())
    failure = Consumer._call(consumer, app.tasks["quick"], Job("j1", "quick", (), {}), 0.0)  # type: ignore[arg-type]
    assert failure is not None and failure.reason.startswith("JobTimeout")
    assert failure.retriable
