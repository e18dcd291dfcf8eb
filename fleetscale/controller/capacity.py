"""Queueing model of a fleet: Erlang-C waits and the fewest workers that meet a wait target.

A fleet of `c` identical workers fed from one FIFO stream is an M/G/c queue: Poisson
arrivals at `rate_per_s`, service times of mean `service_s` and coefficient of variation
`cv`. For exponential service (cv = 1) Erlang's C formula is exact:

    P(wait > 0) = C(c, a)                       with offered load a = rate × service (workers)
    P(wait > t) = C(c, a) · exp(−(c/service − rate) · t)

For other service-time distributions the tail is scaled by (1 + cv²) / 2, the
Allen–Cunneen correction of the mean wait, applied to the exponential tail. It is exact
for cv = 1, close for moderate cv and optimistic for very heavy tails; the policy
corrects the rest from measured waits.

Pure functions of floats; no numpy. `workers_for_wait` is O(√c) in the Erlang-B
recursion plus the workers it tries, and stays stable for thousands of workers.
"""

from __future__ import annotations

import math

_INF = float("inf")

_FORGET_SDS = 7.0
"""How far below the load, in √load, the Erlang-B recursion starts (see `_erlang_b`)."""


def erlang_c(workers: int, load: float) -> float:
    """Return the probability that a job waits at all in M/M/c (Erlang C).

    Args:
        workers: number of workers c.
        load: offered load a = rate × mean service time, in workers.

    Returns:
        A probability in [0, 1]; 1.0 when the fleet is saturated (a ≥ c).
    """
    if load <= 0.0:
        return 0.0
    if workers <= load:
        return 1.0
    return _c_from_b(workers, load, _erlang_b(workers, load))


def _erlang_b(workers: int, load: float) -> float:
    """Erlang B for `workers` > `load`, by the recursion 1/B(k) = 1 + (k / load) / B(k − 1).

    The recursion forgets where it started: an error in 1/B(k) shrinks by k / load at
    every step. So it starts `_FORGET_SDS` standard deviations (√load) below the load,
    from the light-traffic value 1/B(k) ≈ load / (load − k), whose error has shrunk
    by about exp(−_FORGET_SDS² / 2) ≈ 1e-11 when it reaches `workers`: the same value
    to double precision, in O(√load) steps instead of O(load).
    """
    start = max(0, math.floor(load - _FORGET_SDS * math.sqrt(load)))
    inverse = load / (load - start)
    per_load = 1.0 / load
    for k in range(start + 1, workers + 1):
        inverse = 1.0 + inverse * k * per_load
    return 1.0 / inverse


def _c_from_b(workers: int, load: float, blocking: float) -> float:
    return workers * blocking / (workers - load * (1.0 - blocking))


def _tail_decay_per_s(workers: int, rate_per_s: float, service_s: float, cv: float) -> float:
    return (workers / service_s - rate_per_s) * 2.0 / (1.0 + cv * cv)


def wait_quantile_s(
    workers: int, rate_per_s: float, service_s: float, *, q: float = 0.99, cv: float = 1.0
) -> float:
    """Return the q-quantile of queue wait in seconds (inf when saturated).

    Args:
        workers: number of workers.
        rate_per_s: Poisson arrival rate, jobs per second.
        service_s: mean service (run) time per job, seconds.
        q: the quantile, 0 < q < 1.
        cv: coefficient of variation of service times (1 = exponential).
    """
    if rate_per_s <= 0.0:
        return 0.0
    load = rate_per_s * service_s
    if workers <= load:
        return _INF
    waiting = erlang_c(workers, load)
    tail = 1.0 - q
    if waiting <= tail:
        return 0.0
    return math.log(waiting / tail) / _tail_decay_per_s(workers, rate_per_s, service_s, cv)


def mean_wait_s(workers: int, rate_per_s: float, service_s: float, *, cv: float = 1.0) -> float:
    """Return the mean queue wait in seconds (inf when saturated); arguments as above."""
    if rate_per_s <= 0.0:
        return 0.0
    load = rate_per_s * service_s
    if workers <= load:
        return _INF
    waiting = erlang_c(workers, load)
    return waiting / _tail_decay_per_s(workers, rate_per_s, service_s, cv)


def workers_for_wait(
    rate_per_s: float,
    service_s: float,
    target_s: float,
    *,
    q: float = 0.99,
    cv: float = 1.0,
    limit: int = 100_000,
) -> int:
    """Return the fewest workers whose q-quantile wait is at most `target_s`.

    Args:
        rate_per_s: arrival rate, jobs per second (0 needs no worker).
        service_s: mean service time, seconds.
        target_s: the wait target, seconds.
        q: the quantile the target applies to.
        cv: coefficient of variation of service times.
        limit: stop searching here and return it (guards absurd inputs).
    """
    load = rate_per_s * service_s
    if rate_per_s <= 0.0 or service_s <= 0.0 or load <= 0.0:
        return 0  # no load, or one so small it underflows (a rate decayed for hours)
    workers = min(limit, math.floor(load) + 1)
    blocking = _erlang_b(workers, load)
    tail = 1.0 - q
    while workers < limit:
        waiting = _c_from_b(workers, load, blocking)
        if waiting <= tail:
            return workers
        decay = _tail_decay_per_s(workers, rate_per_s, service_s, cv)
        if math.log(waiting / tail) / decay <= target_s:
            return workers
        workers += 1
        blocking = load * blocking / (workers + load * blocking)
    return limit
