"""Service-time (job run time) distributions for the simulator.

Each is described by its mean and coefficient of variation (cv = std ÷ mean), which is
what the capacity model and the oracle read; `draw` makes a sampler bound to a
`random.Random`, so a seed fixes every run time.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from fleetscale.errors import ConfigurationError

MAX_SERVICE_CV = 1000.0
"""The largest run-time cv: the lognormal's sigma comes from log(1 + cv²), which
overflows not far above it."""


@dataclass(frozen=True, slots=True)
class ServiceTime:
    """A run-time distribution.

    Attributes:
        kind: `constant`, `exponential`, `lognormal` or `empirical`.
        mean_s: mean run time, seconds.
        cv: coefficient of variation (0 constant, 1 exponential).
        samples_s: the run times an `empirical` distribution draws from, seconds.
    """

    kind: str
    mean_s: float
    cv: float
    samples_s: tuple[float, ...] = ()

    def draw(self, rng: random.Random) -> Callable[[], float]:
        """Return a function that draws one run time in seconds from `rng`."""
        if self.kind == "constant":
            mean = self.mean_s
            return lambda: mean
        if self.kind == "exponential":
            rate = 1.0 / self.mean_s
            return lambda: rng.expovariate(rate)
        if self.kind == "empirical":
            samples = self.samples_s
            return lambda: rng.choice(samples)
        sigma = math.sqrt(math.log1p(self.cv * self.cv))
        mu = math.log(self.mean_s) - sigma * sigma / 2.0
        return lambda: rng.lognormvariate(mu, sigma)


def check_service(mean_s: float | None, cv: float | None) -> None:
    """Refuse a mean run time that is not finite and > 0, or a cv outside [0, 1000].

    The one check for `simulate --service-time`/`--service-cv` and a trace's
    `# service_s=`/`# service_cv=` comments; `None` skips a value.

    Raises:
        ConfigurationError: naming the value.
    """
    if mean_s is not None and not (math.isfinite(mean_s) and mean_s > 0):
        raise ConfigurationError(f"service time {mean_s:g} s must be finite and > 0, e.g. 0.2 s")
    if cv is not None and not 0 <= cv <= MAX_SERVICE_CV:
        raise ConfigurationError(
            f"service cv {cv:g} must be from 0 to {MAX_SERVICE_CV:g} "
            "(0 = constant, 1 ≈ exponential)"
        )


def service_time(mean_s: float, cv: float) -> ServiceTime:
    """Return the CLI's distribution: constant when cv is 0, else lognormal.

    Raises:
        ConfigurationError: for a mean or cv `check_service` refuses.
    """
    check_service(mean_s, cv)
    if cv == 0:
        return ServiceTime("constant", mean_s, 0.0)
    return ServiceTime("lognormal", mean_s, cv)


def exponential(mean_s: float) -> ServiceTime:
    """Exponential run times of the given mean (the M in M/M/c)."""
    return ServiceTime("exponential", mean_s, 1.0)


def empirical(samples_s: Sequence[float]) -> ServiceTime:
    """Run times drawn uniformly from measured samples (seconds, at least one).

    Raises:
        ConfigurationError: for no sample, a sample that is not finite and ≥ 0, or a
            mean that is not finite and > 0 (all samples 0).
    """
    if not samples_s:
        raise ConfigurationError("empirical service times need at least one sample")
    bad = next((s for s in samples_s if not (math.isfinite(s) and s >= 0)), None)
    if bad is not None:
        raise ConfigurationError(f"empirical service time sample {bad} must be finite and ≥ 0")
    mean = sum(samples_s) / len(samples_s)
    if not (math.isfinite(mean) and mean > 0):
        raise ConfigurationError(
            f"empirical service times average {mean:g} s: need a finite mean > 0"
        )
    variance = sum((s - mean) * (s - mean) for s in samples_s) / len(samples_s)
    return ServiceTime("empirical", mean, math.sqrt(variance) / mean, tuple(samples_s))
