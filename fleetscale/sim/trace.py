"""Load traces: piecewise-constant arrival rates or explicit job arrival times.

A rate trace is a CSV with header `t_s,rate_per_s`: each row's rate holds from its `t_s`
until the next row's, and the last row only marks the end (its rate never applies).
Arrivals are Poisson within each step. An arrival trace is a CSV with the single header
`arrival_s`, one job per row (seconds from the start, sorted or not).

Comment lines starting with `#` may set the trace's own service-time defaults, e.g.
`# service_s=0.2 service_cv=3` (used unless the caller overrides them).

The shipped traces live in `fleetscale/sim/traces/` (see `SHIPPED`); a name that is not
shipped is read as a path.
"""

from __future__ import annotations

import bisect
import csv
import io
import math
import random
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from fleetscale.errors import ConfigurationError

SHIPPED = ("steady", "step", "spike", "ramp", "diurnal", "bursty", "heavy_tail")
"""Names of the traces in the package, in the order reports list them."""


@dataclass(frozen=True, slots=True)
class Trace:
    """A load trace.

    Attributes:
        name: its name (file stem for a path).
        steps: (start_s, rate_per_s) of each piecewise-constant step, by start time.
        duration_s: the end of the trace, seconds.
        arrivals_s: explicit arrival times, seconds (empty for a rate trace).
        service_s: the trace's own mean service time, seconds, if it sets one.
        service_cv: the trace's own service-time cv, if it sets one.
    """

    name: str
    steps: tuple[tuple[float, float], ...]
    duration_s: float
    arrivals_s: tuple[float, ...] = ()
    service_s: float | None = None
    service_cv: float | None = None

    def rate_at(self, t_s: float) -> float:
        """The trace's arrival rate at time `t_s`, jobs per second (0 outside it)."""
        if t_s < 0 or t_s >= self.duration_s or not self.steps:
            return 0.0
        index = bisect.bisect_right(self.steps, (t_s, math.inf)) - 1
        return self.steps[index][1] if index >= 0 else 0.0

    def arrival_times(self, rng: random.Random) -> list[float]:
        """Return sorted job arrival times, seconds: Poisson per step, or the explicit ones."""
        if self.arrivals_s:
            return sorted(a for a in self.arrivals_s if 0 <= a < self.duration_s)
        times: list[float] = []
        ends = [start for start, _ in self.steps[1:]] + [self.duration_s]
        for (start_s, rate), end_s in zip(self.steps, ends, strict=True):
            if rate <= 0:
                continue
            t_s = start_s + rng.expovariate(rate)
            while t_s < end_s:
                times.append(t_s)
                t_s += rng.expovariate(rate)
        return times

    def segments(self) -> list[tuple[float, float, float]]:
        """Return (start_s, end_s, rate_per_s) of every step."""
        ends = [start for start, _ in self.steps[1:]] + [self.duration_s]
        return [(s, e, r) for (s, r), e in zip(self.steps, ends, strict=True) if e > s]

    def increases(self, ratio: float = 1.5) -> list[float]:
        """Times at which the rate rises at least `ratio`-fold over the previous step."""
        found = []
        for (_, before), (start_s, after) in zip(self.steps, self.steps[1:], strict=False):
            if after > 0 and after >= before * ratio and start_s < self.duration_s:
                found.append(start_s)
        return found


def load_trace(name_or_path: str) -> Trace:
    """Load a shipped trace by name, or a CSV file by path.

    Raises:
        ConfigurationError: for an unknown name, an unreadable file or a bad CSV.
    """
    if name_or_path in SHIPPED:
        resource = resources.files("fleetscale.sim") / "traces" / f"{name_or_path}.csv"
        return parse_trace(resource.read_text(encoding="utf-8"), name_or_path)
    path = Path(name_or_path)
    if not path.is_file():
        raise ConfigurationError(
            f"unknown trace {name_or_path!r}: use one of {', '.join(SHIPPED)} or a CSV path"
        )
    return parse_trace(path.read_text(encoding="utf-8"), path.stem)


def _options(lines: list[str]) -> dict[str, float]:
    options = {}
    for line in lines:
        for word in line.lstrip("#").split():
            key, sep, value = word.partition("=")
            if sep and key in ("service_s", "service_cv"):
                options[key] = float(value)
    return options


def parse_trace(text: str, name: str) -> Trace:
    """Parse a rate or arrival CSV (see the module docstring)."""
    lines = text.splitlines()
    comments = [line for line in lines if line.startswith("#")]
    rows = list(csv.reader(io.StringIO("\n".join(ln for ln in lines if not ln.startswith("#")))))
    if not rows:
        raise ConfigurationError(f"trace {name!r} is empty: need a `t_s,rate_per_s` header")
    header = [cell.strip() for cell in rows[0]]
    try:
        options = _options(comments)
        body = [[float(cell) for cell in row] for row in rows[1:] if row]
    except ValueError as error:
        raise ConfigurationError(f"trace {name!r} has a bad number: {error}") from None
    if header == ["t_s", "rate_per_s"]:
        return _rate_trace(name, body, options)
    if header == ["arrival_s"]:
        return _arrival_trace(name, [row[0] for row in body], options)
    raise ConfigurationError(
        f"trace {name!r} has header {','.join(header)!r}: use `t_s,rate_per_s` or `arrival_s`"
    )


def _rate_trace(name: str, body: list[list[float]], options: dict[str, float]) -> Trace:
    if len(body) < 2 or any(len(row) != 2 for row in body):
        raise ConfigurationError(f"trace {name!r} needs ≥ 2 rows of `t_s,rate_per_s`")
    body.sort(key=lambda row: row[0])
    if any(rate < 0 for _, rate in body):
        raise ConfigurationError(f"trace {name!r} has a negative rate")
    steps = tuple((t, rate) for t, rate in body[:-1])
    return Trace(
        name,
        steps,
        body[-1][0],
        service_s=options.get("service_s"),
        service_cv=options.get("service_cv"),
    )


def _arrival_trace(name: str, arrivals: list[float], options: dict[str, float]) -> Trace:
    if not arrivals:
        raise ConfigurationError(f"trace {name!r} lists no arrivals")
    arrivals.sort()
    duration_s = math.floor(arrivals[-1]) + 1.0
    counts = [0] * int(duration_s)
    for arrival in arrivals:
        counts[int(arrival)] += 1
    steps = tuple((float(i), float(count)) for i, count in enumerate(counts))
    return Trace(
        name,
        steps,
        duration_s,
        tuple(arrivals),
        options.get("service_s"),
        options.get("service_cv"),
    )
