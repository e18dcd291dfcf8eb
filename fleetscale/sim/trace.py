"""Load traces: piecewise-constant arrival rates or explicit job arrival times.

A rate trace is a CSV with header `t_s,rate_per_s`: each row's rate holds from its `t_s`
until the next row's, and the last row only marks the end (its rate never applies).
Rows are in time order, the first at `t_s` 0 (write `0,0` for an idle start), each
later than the one before. Arrivals are Poisson within each step. An arrival trace is a
CSV with the single header `arrival_s`, one job per row (seconds from the start, sorted
or not). Every number is finite and ≥ 0; blank lines are skipped. A trace lasts at most
`MAX_DURATION_S` and brings at most `MAX_JOBS` jobs (expected, for a rate trace), so a
mistyped row fails at once instead of running for hours or out of memory.

Comment lines starting with `#` may set the trace's own service-time defaults, e.g.
`# service_s=0.2 service_cv=3` (used unless the caller overrides them); they are checked
like `simulate --service-time` and `--service-cv`.

Files are read as UTF-8 (a byte-order mark is allowed). The shipped traces live in
`fleetscale/sim/traces/` (see `SHIPPED`); a name that is not shipped is read as a path.
"""

from __future__ import annotations

import bisect
import csv
import itertools
import math
import random
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from fleetscale.errors import ConfigurationError
from fleetscale.sim.service import check_service

SHIPPED = ("steady", "step", "spike", "ramp", "diurnal", "bursty", "heavy_tail")
"""Names of the traces in the package, in the order reports list them."""

MAX_DURATION_S = 7 * 24 * 3600.0
"""The longest trace, seconds: one week (about two minutes to simulate at a 1 s period)."""

MAX_JOBS = 10_000_000
"""The most jobs one trace may bring: about 1.3 GB and a minute and a half to simulate."""

RISE_WINDOW_S = 10
"""An arrival trace's rises compare the arrivals of this many seconds after a whole
second with those of as many before it."""

RISE_Z = 5.0
"""An arrival trace's rise must also exceed Poisson noise by this many standard errors
(none in 10⁶ seconds of steady Poisson load at 0.5 to 500 jobs a second)."""


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
        """Times at which the rate rises at least `ratio`-fold.

        A rate trace: a step's rate over the previous step's. An arrival trace, whose 1 s
        counts rise that much by chance: the arrivals of the `RISE_WINDOW_S` after a
        whole second over those of the window before it, by at least `ratio` and by
        `RISE_Z` Poisson standard errors; of consecutive such seconds, the one furthest
        beyond the noise. A rise within a window of either end is not seen.
        """
        if self.arrivals_s:
            return _arrival_rises([count for _, count in self.steps], ratio)
        found = []
        for (_, before), (start_s, after) in zip(self.steps, self.steps[1:], strict=False):
            if after > 0 and after >= before * ratio and start_s < self.duration_s:
                found.append(start_s)
        return found


def _arrival_rises(counts: list[float], ratio: float) -> list[float]:
    """Rises of the windowed arrival counts of 1 s `counts` (see `Trace.increases`)."""
    window = RISE_WINDOW_S
    total = list(itertools.accumulate(counts, initial=0.0))
    rises: list[float] = []
    best: tuple[float, int] | None = None  # (z, second) of the current run of rises
    for second in range(window, len(counts) - window + 1):
        before = total[second] - total[second - window]
        after = total[second + window] - total[second]
        z = (after - before) / math.sqrt(after + before) if after + before else 0.0
        if after >= ratio * before and z >= RISE_Z:
            best = best if best is not None and best[0] >= z else (z, second)
        elif best is not None:
            rises.append(float(best[1]))
            best = None
    if best is not None:
        rises.append(float(best[1]))
    return rises


def load_trace(name_or_path: str) -> Trace:
    """Load a shipped trace by name, or a CSV file by path.

    Raises:
        ConfigurationError: for a name that is neither shipped nor an existing file
            (saying the file does not exist and naming the shipped traces), an
            unreadable file or a bad CSV.
    """
    if name_or_path in SHIPPED:
        resource = resources.files("fleetscale.sim") / "traces" / f"{name_or_path}.csv"
        return parse_trace(resource.read_text(encoding="utf-8-sig"), name_or_path)
    path = Path(name_or_path)
    if not path.exists():
        raise ConfigurationError(
            f"unknown trace {name_or_path!r}: no file of that name exists, and no shipped "
            f"trace has it ({', '.join(SHIPPED)}); give a shipped name or a CSV file's path"
        )
    if not path.is_file():
        raise ConfigurationError(f"trace {name_or_path!r} is not a regular file: give a CSV file")
    return parse_trace(_read_text(path), path.stem)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise ConfigurationError(
            f"trace file {str(path)!r} is not UTF-8 text (byte {error.start}): save it as UTF-8"
        ) from None
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise ConfigurationError(f"cannot read trace file {str(path)!r}: {reason}") from None


def _options(name: str, lines: list[str]) -> dict[str, float]:
    options = {}
    for line in lines:
        for word in line.lstrip("#").split():
            key, sep, value = word.partition("=")
            if not (sep and key in ("service_s", "service_cv")):
                continue
            try:
                number = float(value)
            except ValueError:
                raise ConfigurationError(f"trace {name!r} comment `{word}`: not a number") from None
            mean_s, cv = (number, None) if key == "service_s" else (None, number)
            try:
                check_service(mean_s, cv)
            except ConfigurationError as error:
                raise ConfigurationError(f"trace {name!r} comment `{word}`: {error}") from None
            options[key] = number
    return options


def _numbers(name: str, line: int, cells: list[str]) -> list[float]:
    values = []
    for cell in cells:
        try:
            value = float(cell)
        except ValueError:
            raise ConfigurationError(
                f"trace {name!r} line {line}: {cell.strip()!r} is not a number"
            ) from None
        if not (math.isfinite(value) and value >= 0):
            raise ConfigurationError(
                f"trace {name!r} line {line}: {cell.strip()} must be a finite number ≥ 0"
            )
        values.append(value)
    return values


def parse_trace(text: str, name: str) -> Trace:
    """Parse a rate or arrival CSV (see the module docstring).

    Raises:
        ConfigurationError: naming the trace, and the line of a bad row.
    """
    comments: list[str] = []
    rows: list[tuple[int, list[str]]] = []
    for line, content in enumerate(text.removeprefix("\ufeff").splitlines(), start=1):
        stripped = content.strip()
        if stripped.startswith("#"):
            comments.append(stripped)
        elif stripped:
            rows.append((line, next(csv.reader([stripped]))))
    if not rows:
        raise ConfigurationError(f"trace {name!r} is empty: need a `t_s,rate_per_s` header")
    header = [cell.strip() for cell in rows[0][1]]
    options = _options(name, comments)
    body = [(line, _numbers(name, line, cells)) for line, cells in rows[1:]]
    if header == ["t_s", "rate_per_s"]:
        return _rate_trace(name, body, options)
    if header == ["arrival_s"]:
        return _arrival_trace(name, body, options)
    raise ConfigurationError(
        f"trace {name!r} has header {','.join(header)!r}: use `t_s,rate_per_s` or `arrival_s`"
    )


def _check_size(name: str, duration_s: float, jobs: float) -> None:
    if duration_s > MAX_DURATION_S:
        raise ConfigurationError(
            f"trace {name!r} lasts {duration_s:g} s: at most {MAX_DURATION_S:g} s (one week)"
        )
    if jobs > MAX_JOBS:
        raise ConfigurationError(
            f"trace {name!r} brings {jobs:.3g} jobs: at most {MAX_JOBS:,}; "
            "lower the rates or shorten it"
        )


def _rate_trace(name: str, body: list[tuple[int, list[float]]], options: dict[str, float]) -> Trace:
    if len(body) < 2:
        raise ConfigurationError(f"trace {name!r} needs ≥ 2 rows of `t_s,rate_per_s`")
    for line, row in body:
        if len(row) != 2:
            raise ConfigurationError(
                f"trace {name!r} line {line}: need 2 values `t_s,rate_per_s`, not {len(row)}"
            )
    line, (first_s, _) = body[0]
    if first_s != 0:
        raise ConfigurationError(
            f"trace {name!r} line {line}: the first row must be at t_s 0, not {first_s:g} "
            "(write `0,0` for an idle start)"
        )
    for (_, (before_s, _)), (line, (t_s, _)) in itertools.pairwise(body):
        if t_s <= before_s:
            raise ConfigurationError(
                f"trace {name!r} line {line}: t_s {t_s:g} must be later than the row "
                f"before ({before_s:g}): rows in time order"
            )
    trace = Trace(
        name,
        tuple((t_s, rate) for _, (t_s, rate) in body[:-1]),
        body[-1][1][0],
        service_s=options.get("service_s"),
        service_cv=options.get("service_cv"),
    )
    jobs = sum(rate * (end_s - start_s) for start_s, end_s, rate in trace.segments())
    _check_size(name, trace.duration_s, jobs)
    return trace


def _arrival_trace(
    name: str, body: list[tuple[int, list[float]]], options: dict[str, float]
) -> Trace:
    for line, row in body:
        if len(row) != 1:
            raise ConfigurationError(
                f"trace {name!r} line {line}: need 1 value `arrival_s`, not {len(row)}"
            )
    arrivals = sorted(row[0] for _, row in body)
    if not arrivals:
        raise ConfigurationError(f"trace {name!r} lists no arrivals")
    duration_s = math.floor(arrivals[-1]) + 1.0
    _check_size(name, duration_s, len(arrivals))
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
