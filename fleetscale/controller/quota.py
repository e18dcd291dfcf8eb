"""Per-host worker quotas: split a fleet size across hosts by their registered capacity.

The split is sticky. It starts from the previous quotas (clamped to each host's current
capacity, hosts that left dropped) and moves only the difference: growth goes one worker
at a time to the host that would be least full, shrinkage comes one at a time from the
most full host. Hosts whose quota does not need to change keep it, so a fleet that grows
by one worker starts exactly one process somewhere, and nothing churns. Ties go to the
host name that sorts first, so the answer is deterministic.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping


def assign_quotas(
    desired: int, capacities: Mapping[str, int], previous: Mapping[str, int]
) -> dict[str, int]:
    """Return quotas per host that sum to min(desired, total capacity).

    Args:
        desired: the fleet size to place, workers (≥ 0).
        capacities: host → the most workers it may run.
        previous: host → its previous quota (missing hosts count as 0).

    Returns:
        host → quota for every host in `capacities`; no quota exceeds its capacity.
    """
    quotas: dict[str, int] = {}
    room = placed = 0
    for host, registered in capacities.items():  # one plain loop: decide runs this per tick
        capacity = registered if registered > 0 else 0
        quota = previous.get(host, 0)
        quota = capacity if quota > capacity else quota if quota > 0 else 0
        quotas[host] = quota
        room += capacity
        placed += quota
    total = min(desired if desired > 0 else 0, room)
    difference = total - placed
    if difference > 0:
        _grow(quotas, capacities, difference)
    elif difference < 0:
        _shrink(quotas, capacities, -difference)
    return quotas


def hold(desired: int, running: Iterable[tuple[str, int]]) -> dict[str, int]:
    """Quotas for hosts that no controller attends while their workers run on: each
    keeps what it runs, in host-name order, up to `desired` workers in all.

    A host with workers running keeps its place even at quota 0 (the fleet is smaller
    than they are): the next tick must still find it lapsed and count its workers, or
    when the fleet grows again their share would go to other hosts too.

    Args:
        desired: the fleet size to place, workers.
        running: (host, workers taking jobs there) pairs.

    Returns:
        host → quota, for every host that runs any workers.
    """
    held: dict[str, int] = {}
    left = max(desired, 0)
    for host, workers in sorted(running):
        if workers > 0:
            held[host] = min(workers, left)
            left -= held[host]
    return held


def _grow(quotas: dict[str, int], capacities: Mapping[str, int], count: int) -> None:
    heap = [
        ((quotas[host] + 1) / capacity, host)
        for host, capacity in capacities.items()
        if quotas[host] < capacity
    ]
    heapq.heapify(heap)
    for _ in range(count):
        _, host = heapq.heappop(heap)
        quotas[host] += 1
        capacity = capacities[host]
        if quotas[host] < capacity:
            heapq.heappush(heap, ((quotas[host] + 1) / capacity, host))


def _shrink(quotas: dict[str, int], capacities: Mapping[str, int], count: int) -> None:
    heap = [(-quotas[host] / capacities[host], host) for host in quotas if quotas[host] > 0]
    heapq.heapify(heap)
    for _ in range(count):
        _, host = heapq.heappop(heap)
        quotas[host] -= 1
        if quotas[host] > 0:
            heapq.heappush(heap, (-quotas[host] / capacities[host], host))
