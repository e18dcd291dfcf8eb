"""The log-linear histogram: accuracy against exact quantiles, and merge algebra."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleetscale.histogram import (
    MAX_VALUE_S,
    MIN_VALUE_S,
    OVERFLOW_BUCKET,
    Histogram,
    bucket_index,
    bucket_value,
    merge_all,
)

QUANTILES = (0.5, 0.9, 0.99)


def exact_quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def _constant(rng: random.Random) -> float:
    return 0.250


def _exponential(rng: random.Random) -> float:
    return rng.expovariate(1 / 0.2)


def _heavy_tailed(rng: random.Random) -> float:
    return 0.001 * rng.paretovariate(1.2)  # Pareto, infinite variance


@pytest.mark.parametrize(
    "draw", [_constant, _exponential, _heavy_tailed], ids=lambda f: f.__name__[1:]
)
def test_quantiles_are_within_five_percent_of_exact_on_100k_samples(draw) -> None:
    rng = random.Random(7)
    values = [min(draw(rng), MAX_VALUE_S * 0.99) for _ in range(100_000)]
    hist = Histogram()
    for v in values:
        hist.record(v)
    for q in QUANTILES:
        exact = exact_quantile(values, q)
        got = hist.quantile(q)
        assert got is not None
        assert abs(got - exact) / exact <= 0.05, f"p{q * 100:g}: {got} vs exact {exact}"


@given(st.floats(min_value=MIN_VALUE_S, max_value=MAX_VALUE_S * 0.999))
def test_every_value_in_range_is_reported_within_five_percent(value: float) -> None:
    reported = bucket_value(bucket_index(value))
    assert abs(reported - value) / value <= 0.05


def test_values_outside_the_range_land_in_the_edge_buckets() -> None:
    assert bucket_index(0.0) == 0
    assert bucket_index(MIN_VALUE_S / 10) == 0
    assert bucket_index(MAX_VALUE_S * 10) == OVERFLOW_BUCKET
    assert bucket_value(OVERFLOW_BUCKET) == MAX_VALUE_S


def test_bucket_indices_increase_with_the_value() -> None:
    values = [MIN_VALUE_S * 1.01**k for k in range(1600)]
    indices = [bucket_index(v) for v in values if v < MAX_VALUE_S]
    assert indices == sorted(indices)


def test_an_empty_histogram_has_no_quantile() -> None:
    assert Histogram().quantile(0.99) is None


def test_weights_count_as_that_many_observations() -> None:
    weighted, repeated = Histogram(), Histogram()
    weighted.record(0.1, weight=10)
    weighted.record(1.0, weight=1)
    for _ in range(10):
        repeated.record(0.1)
    repeated.record(1.0)
    assert weighted.counts == repeated.counts
    assert weighted.quantile(0.9) == pytest.approx(0.1, rel=0.05)


def _build(pairs: list[tuple[float, int]]) -> Histogram:
    h = Histogram()
    for value, weight in pairs:
        h.record(value, weight)
    return h


histograms = st.lists(
    st.tuples(st.floats(min_value=0, max_value=1000), st.integers(min_value=1, max_value=50)),
    max_size=30,
).map(_build)


@given(histograms, histograms, histograms)
def test_merge_is_associative(a: Histogram, b: Histogram, c: Histogram) -> None:
    assert a.merged(b).merged(c).counts == a.merged(b.merged(c)).counts


@given(histograms, histograms)
def test_merge_is_commutative(a: Histogram, b: Histogram) -> None:
    assert a.merged(b).counts == b.merged(a).counts


@given(histograms, histograms)
def test_merging_leaves_the_inputs_unchanged(a: Histogram, b: Histogram) -> None:
    before = dict(a.counts), dict(b.counts)
    merge_all([a, b])
    assert (a.counts, b.counts) == before


@given(histograms, st.lists(st.floats(min_value=0, max_value=1), min_size=2, max_size=10))
def test_quantiles_are_monotone_in_q(h: Histogram, qs: list[float]) -> None:
    if h.total() == 0:
        return
    answers = [h.quantile(q) for q in sorted(qs)]
    assert answers == sorted(answers)


def test_the_cv_of_recorded_values_is_close_to_the_exact_one() -> None:
    rng = random.Random(5)
    values = [rng.expovariate(1 / 0.2) for _ in range(50_000)]
    hist = Histogram()
    for v in values:
        hist.record(v)
    mean = sum(values) / len(values)
    exact = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values)) / mean
    assert hist.cv() == pytest.approx(exact, rel=0.05)
    constant = Histogram()
    constant.record(0.05, weight=100)
    assert constant.cv() == pytest.approx(0.0)
    assert Histogram().cv() is None
