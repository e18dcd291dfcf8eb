"""Every error fleetscale raises, under one root, `FleetscaleError`.

redis-py exceptions never escape the library: `fleetscale.store.redis_errors` maps
them here, at the one Redis boundary. Messages are one line that names the offending
value and, where there is one, the fix.
"""

from __future__ import annotations


class FleetscaleError(Exception):
    """Raised for every failure fleetscale reports; the root of all its errors.

    Attributes:
        submitted: set only on an error raised by `Producer.submit_many`: the ids of
            the jobs it had submitted before failing, in order (possibly empty).
    """

    submitted: list[str]


class ConfigurationError(FleetscaleError):
    """Raised when a setting, argument or policy value is invalid."""


class RedisUnavailable(FleetscaleError):
    """Raised when Redis cannot be reached or did not answer within the timeout."""


class RedisAuthError(FleetscaleError):
    """Raised when Redis refuses the credentials or the ACL forbids a command."""


class RedisCommandError(FleetscaleError):
    """Raised when Redis rejects a command for another reason (OOM, MISCONF, …)."""


class SubmitError(FleetscaleError):
    """Raised when a job cannot be submitted as given."""


class PayloadTooLarge(SubmitError):
    """Raised when an encoded job is larger than the producer's `max_payload_bytes`."""


class Overloaded(SubmitError):
    """Raised when the fleet's backlog is at or above the producer's `max_backlog`.

    Attributes:
        backlog: the backlog seen, in jobs.
        retry_after_s: a suggested wait before trying again, in seconds.
    """

    def __init__(self, backlog: int, max_backlog: int, retry_after_s: float) -> None:
        super().__init__(
            f"fleet backlog {backlog} is at or above max_backlog={max_backlog}; "
            f"retry after {retry_after_s:.2f}s or raise max_backlog"
        )
        self.backlog = backlog
        self.max_backlog = max_backlog
        self.retry_after_s = retry_after_s


class TaskError(FleetscaleError):
    """Raised when a task is defined or looked up wrongly."""


class AppImportError(ConfigurationError):
    """Raised when an `APP` path (`module:attr`) cannot be imported or is not an `App`."""
