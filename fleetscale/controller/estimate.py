"""The smoothed estimates `decide` sizes the fleet on: arrival rate, run time and its cv.

Two speeds per signal. A **fast** EWMA follows the load within seconds: it gives the
surge size of urgent scale-ups and tells a real change from noise. A **slow** EWMA is
what the capacity model sizes on: on a stationary load it is several times less noisy,
so the fleet does not follow the noise up and down. The slow estimate

- starts as a running mean (a sample weighs at least Δt ÷ (age + Δt)), so its first samples do
  not stick for τ; run times count by jobs rather than by time (`jobs_seen`), so the few
  noisy run times of a fleet's first seconds weigh little;
- jumps to the fast estimate when the two differ by more than `CHANGE_Z` standard
  errors of the fast one: a change that large is a new load (a step, a burst, a deploy),
  not noise, and the fleet must follow it at the fast pace.

Time constants and why:

- arrival rate: fast `Policy.rate_smoothing_s` (5 s), slow `RATE_SLOW_S` (30 s). Poisson
  arrivals at r per second counted under an EWMA of time constant τ have variance
  r ÷ 2τ: at 60 jobs/s the fast estimate scatters by ±2.4/s, the slow one by ±1.0/s.
  A longer slow τ lags a rising load by τ × its slope and costs SLO on ramps;
- mean run time: fast `SERVICE_FAST_S` (60 s), slow `SERVICE_SLOW_S` (600 s). Run times
  change with deploys, not by the second, and a mean of heavy-tailed run times is noisy
  (cv 3 over 3 600 jobs: ±5 %);
- run-time cv: from the slow mean and the slow mean square of run times (the ratio of
  smoothed moments, not a smoothed ratio: a short window of a heavy tail mostly misses
  its rare long jobs, so its own cv is biased low);
- rate spread (`SCATTER_S`, 60 s): the mean square gap between the fast and the slow
  rate, less the part Poisson noise explains, is how much the rate itself moves on a
  scale of seconds (real traffic is burstier than Poisson, and a trend shows up here
  too, as the slow estimate's lag). Gaps beyond the jump threshold, and those of the
  `SETTLE_TAUS` fast time constants after a jump, are level changes, not spread.

Every EWMA weighs an update by 1 − exp(−Δt/τ), so irregular ticks smooth the same as
regular ones. Pure functions; `decide` keeps the results in its `State`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from fleetscale.controller.policytypes import Observation, Policy, State

RATE_SLOW_S = 30.0
"""Time constant of the slow arrival-rate EWMA, seconds."""

SERVICE_FAST_S = 60.0
"""Time constant of the fast run-time EWMA, seconds."""

SERVICE_SLOW_S = 600.0
"""Time constant of the slow run-time EWMAs (mean and mean square), seconds."""

SCATTER_S = 60.0
"""Time constant of the EWMA of the squared gap between fast and slow rate, seconds."""

CHANGE_Z = 4.0
"""The slow estimate jumps to the fast one beyond this many of the fast one's standard
errors (a stationary Poisson rate strays that far about once in 16 000 looks)."""

SETTLE_TAUS = 3.0
"""Fast time constants after a jump during which the rate gap is not spread."""


@dataclass(frozen=True, slots=True)
class Estimates:
    """The smoothed signals of one tick; None means unknown.

    Attributes:
        rate_per_s: fast arrival-rate EWMA, jobs per second.
        rate_slow_per_s: slow arrival-rate EWMA, jobs per second.
        rate_scatter: EWMA of the squared gap between fast and slow rate, (jobs/s)².
        rate_jump_s: when the slow rate last jumped to the fast one (caller's clock).
        service_s: fast mean run-time EWMA, seconds.
        service_slow_s: slow mean run-time EWMA, seconds.
        service_sq_s2: slow EWMA of the mean square of run times, seconds².
        jobs_seen: completed jobs behind the run-time estimates so far.
        since_s: when the estimates got their first sample (caller's clock).
        fast_tau_s: the fast rate's time constant, seconds.
    """

    rate_per_s: float | None
    rate_slow_per_s: float | None
    rate_scatter: float | None
    rate_jump_s: float | None
    service_s: float | None
    service_slow_s: float | None
    service_sq_s2: float | None
    jobs_seen: float
    since_s: float | None
    fast_tau_s: float

    @property
    def service_cv(self) -> float | None:
        """Run-time coefficient of variation from the slow moments (None: not reported)."""
        return _cv(self.service_slow_s, self.service_sq_s2)

    def rate_spread_per_s(self) -> float:
        """How much the arrival rate moves beyond Poisson noise, jobs per second.

        For Poisson arrivals at r, EWMAs of time constants f and s over the same
        arrivals differ with variance r (s − f)² ÷ (2 f s (f + s)); the scatter beyond
        that is the rate's own movement.
        """
        rate, scatter = self.rate_slow_per_s, self.rate_scatter
        if rate is None or scatter is None:
            return 0.0
        fast, slow = self.fast_tau_s, RATE_SLOW_S
        poisson = rate * (slow - fast) ** 2 / (2.0 * fast * slow * (fast + slow))
        return math.sqrt(max(0.0, scatter - poisson))

    def load_rel_sigma(self) -> float:
        """Relative standard error of the slow load estimate (rate × run time).

        The rate's Poisson variance (r ÷ 2τ, relative 1 ÷ 2τr) plus the mean run time's
        sampling variance (cv² over the 2τr jobs the slow mean remembers).
        """
        rate = self.rate_slow_per_s
        if rate is None or rate <= 0.0:
            return 0.0
        cv = self.service_cv
        spread2 = 1.0 if cv is None else cv * cv
        return math.sqrt(1.0 / (2.0 * RATE_SLOW_S * rate) + spread2 / (2.0 * SERVICE_SLOW_S * rate))


def _ewma(previous: float | None, sample: float | None, weight: float) -> float | None:
    if sample is None:
        return previous
    if previous is None:
        return sample
    return previous + weight * (sample - previous)


def _weight(elapsed_s: float, tau_s: float) -> float:
    return 1.0 if tau_s <= 0 else 1.0 - math.exp(-max(elapsed_s, 0.0) / tau_s)


def _young_weight(elapsed_s: float, tau_s: float, age_s: float) -> float:
    """EWMA weight, but at least a running mean's, Δt ÷ (age + Δt), while young."""
    if age_s <= 0.0:
        return 1.0
    return max(_weight(elapsed_s, tau_s), elapsed_s / (age_s + elapsed_s))


def _job_weight(elapsed_s: float, tau_s: float, jobs_new: float | None, jobs_seen: float) -> float:
    """EWMA weight of a run-time sample, at least its share of the jobs seen so far."""
    weight = _weight(elapsed_s, tau_s)
    if jobs_new is None or jobs_new <= 0.0:
        return weight
    return max(weight, jobs_new / (jobs_seen + jobs_new))


def _cv(mean_s: float | None, square_s2: float | None) -> float | None:
    if not mean_s or square_s2 is None:
        return None
    return math.sqrt(max(0.0, square_s2 / (mean_s * mean_s) - 1.0))


def estimate(signals: Observation, state: State, policy: Policy, now_s: float) -> Estimates:
    """Fold this tick's signals into the smoothed estimates (see the module docstring)."""
    elapsed_s = now_s - state.smoothed_at_s if state.smoothed_at_s is not None else 0.0
    known = signals.arrival_rate_per_s is not None or signals.service_time_s is not None
    since_s = state.estimates_since_s
    if since_s is None and known:
        since_s = now_s
    age_s = now_s - since_s if since_s is not None else 0.0
    fast_tau_s = max(policy.rate_smoothing_s, 1.0)
    sample = signals.arrival_rate_per_s
    fast = _ewma(state.rate_per_s, sample, _weight(elapsed_s, fast_tau_s))
    limit = CHANGE_Z * math.sqrt(max(fast or 0.0, 0.0) / (2.0 * fast_tau_s))
    slow = _ewma(state.rate_slow_per_s, sample, _young_weight(elapsed_s, RATE_SLOW_S, age_s))
    gap = None if fast is None or slow is None or state.rate_slow_per_s is None else fast - slow
    jump_s = state.rate_jump_s
    if gap is not None and abs(gap) > limit:
        slow, jump_s = fast, now_s
    scatter = state.rate_scatter
    settled = jump_s is None or now_s - jump_s >= SETTLE_TAUS * fast_tau_s
    if gap is not None and settled:
        scatter = _ewma(scatter, gap * gap, _young_weight(elapsed_s, SCATTER_S, age_s))
    mean_s, mean_slow_s, square_s2, jobs = _run_times(signals, state, elapsed_s, fast)
    return Estimates(
        rate_per_s=fast,
        rate_slow_per_s=slow,
        rate_scatter=scatter,
        rate_jump_s=jump_s,
        service_s=mean_s,
        service_slow_s=mean_slow_s,
        service_sq_s2=square_s2,
        jobs_seen=jobs,
        since_s=since_s,
        fast_tau_s=fast_tau_s,
    )


def _run_times(
    signals: Observation, state: State, elapsed_s: float, rate: float | None
) -> tuple[float | None, float | None, float | None, float]:
    """Return the fast mean, slow mean and slow mean square of run times, and jobs seen.

    The slow mean jumps to the fast one on a change beyond `CHANGE_Z` standard errors
    (cv ÷ √jobs of the fast mean); the mean square then follows it, keeping the cv.
    """
    mean_s, window_cv, done = signals.service_time_s, signals.service_cv, signals.completed_per_s
    jobs_new = None if done is None or mean_s is None else done * max(elapsed_s, 0.0)
    seen = state.jobs_seen
    fast = _ewma(state.service_s, mean_s, _job_weight(elapsed_s, SERVICE_FAST_S, jobs_new, seen))
    weight = _job_weight(elapsed_s, SERVICE_SLOW_S, jobs_new, seen)
    slow = _ewma(state.service_slow_s, mean_s, weight)
    square = state.service_sq_s2
    old_cv = _cv(state.service_slow_s, square)
    jobs = max(1.0, (rate or 0.0) * 2.0 * SERVICE_FAST_S)
    limit = CHANGE_Z * (fast or 0.0) * (1.0 if old_cv is None else old_cv) / math.sqrt(jobs)
    if slow is not None and fast is not None and state.service_slow_s and abs(fast - slow) > limit:
        if square is not None:
            square *= (fast / state.service_slow_s) ** 2
        slow = fast
    if mean_s is not None and window_cv is not None:
        square = _ewma(square, mean_s * mean_s * (1.0 + window_cv * window_cv), weight)
    return fast, slow, square, seen + (jobs_new or 0.0)
