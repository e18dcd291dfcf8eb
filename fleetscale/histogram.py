"""A fixed log-linear histogram of durations, mergeable by adding counts.

Each power-of-two range ("octave") above `MIN_VALUE_S` is cut into `SUB_BUCKETS` equal
parts, so a bucket spans at most 1/16 of its lower edge. A quantile is answered with
the bucket's midpoint, which is within 1/32 ≈ 3.1 % of any value in the bucket: the
≤ 5 % relative-error promise holds from `MIN_VALUE_S` (0.1 ms) to `MAX_VALUE_S`
(10 min). Values below land in bucket 0 (reported as `MIN_VALUE_S / 2`), values above
in the last bucket (reported as `MAX_VALUE_S`).

Bucket indices are stable: they are the field names of the telemetry hashes in Redis,
so workers and controllers of different versions merge the same way. Recording is
O(1) with no sorting; merging and quantiles are O(buckets).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

MIN_VALUE_S = 1e-4
MAX_VALUE_S = 600.0
SUB_BUCKETS = 16
OCTAVES = math.ceil(math.log2(MAX_VALUE_S / MIN_VALUE_S))
OVERFLOW_BUCKET = 1 + OCTAVES * SUB_BUCKETS
BUCKET_COUNT = OVERFLOW_BUCKET + 1


def bucket_index(value_s: float) -> int:
    """Return the bucket of a duration in seconds (0 = below 0.1 ms, last = above 10 min)."""
    if value_s < MIN_VALUE_S:
        return 0
    if value_s >= MAX_VALUE_S:
        return OVERFLOW_BUCKET
    mantissa, exponent = math.frexp(value_s / MIN_VALUE_S)  # x = m·2^e, 0.5 ≤ m < 1
    octave = exponent - 1
    sub = int((2.0 * mantissa - 1.0) * SUB_BUCKETS)
    return 1 + octave * SUB_BUCKETS + sub


def bucket_value(index: int) -> float:
    """Return the representative duration (seconds) of a bucket: its midpoint."""
    if index <= 0:
        return MIN_VALUE_S / 2
    if index >= OVERFLOW_BUCKET:
        return MAX_VALUE_S
    octave, sub = divmod(index - 1, SUB_BUCKETS)
    width = MIN_VALUE_S * 2.0**octave / SUB_BUCKETS
    return MIN_VALUE_S * 2.0**octave + (sub + 0.5) * width


class Histogram:
    """Weighted counts per log-linear bucket; sparse, mutable, not thread-safe.

    Use `record` on the owning thread; hand a finished histogram to another thread only
    after the owner stops writing to it (see `TelemetryBuffer.swap`).
    """

    __slots__ = ("counts",)

    def __init__(self, counts: Mapping[int, int] | None = None) -> None:
        self.counts: dict[int, int] = dict(counts or {})

    def record(self, value_s: float, weight: int = 1) -> None:
        """Add `weight` observations of a duration in seconds."""
        index = bucket_index(value_s)
        self.counts[index] = self.counts.get(index, 0) + weight

    def total(self) -> int:
        """The sum of all weights."""
        return sum(self.counts.values())

    def merged(self, *others: Histogram) -> Histogram:
        """Return a new histogram holding this one's counts plus the others'."""
        result = Histogram(self.counts)
        for other in others:
            for index, count in other.counts.items():
                result.counts[index] = result.counts.get(index, 0) + count
        return result

    def quantile(self, q: float) -> float | None:
        """Return the q-quantile (0 ≤ q ≤ 1) in seconds, or None when empty.

        The answer is the midpoint of the bucket holding the observation of rank
        ⌈q·total⌉ (at least 1), so it is within 3.1 % of the exact nearest-rank value.
        """
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"quantile q={q} must be within [0, 1]")
        total = self.total()
        if total <= 0:
            return None
        rank = max(1, math.ceil(q * total))
        seen = 0
        for index in sorted(self.counts):
            seen += self.counts[index]
            if seen >= rank:
                return bucket_value(index)
        return bucket_value(max(self.counts))

    def cv(self) -> float | None:
        """Coefficient of variation (std ÷ mean) of the recorded values, from bucket
        midpoints; None with fewer than two observations or a zero mean."""
        total = self.total()
        if total < 2:
            return None
        mean = sum(bucket_value(i) * n for i, n in self.counts.items()) / total
        if mean <= 0:
            return None
        var = sum(n * (bucket_value(i) - mean) ** 2 for i, n in self.counts.items()) / total
        return math.sqrt(var) / mean

    def __repr__(self) -> str:
        return f"Histogram(total={self.total()}, buckets={len(self.counts)})"


def merge_all(histograms: Iterable[Histogram]) -> Histogram:
    """Merge any number of histograms into a new one."""
    return Histogram().merged(*histograms)
