"""Workers that run on after their controller's registration lapsed (a paused
controller) keep their share of the fleet: the leader's reading and its placement."""

from __future__ import annotations

from fleetscale.controller.observe import lapsed_hosts, unattended_workers
from fleetscale.controller.policy import HostView, Observation, Policy, State, decide
from fleetscale.controller.quota import hold
from fleetscale.registry import Member

FIXED = Policy(min=4, max=4)
NOW_S = 1000.0


def at_max(unattended: tuple[tuple[str, int], ...]) -> dict[str, int]:
    """The quotas of a fleet fixed at 4, split 2 + 2, whose host B has lapsed."""
    state = State(desired=4, quotas=(("A", 2), ("B", 2)))
    observation = Observation(hosts=(HostView("A", 4, 2, 2, 0),), unattended=unattended)
    decision = decide(observation, state, FIXED, NOW_S)
    assert decision.desired == 4
    return dict(decision.quotas)


def test_a_lapsed_host_whose_workers_run_on_keeps_their_share() -> None:
    assert at_max((("B", 2),)) == {"A": 2, "B": 2}, "A would run 4 beside B's 2"


def test_a_lapsed_host_keeps_only_the_workers_still_running_and_the_rest_moves() -> None:
    assert at_max((("B", 1),)) == {"A": 3, "B": 1}
    assert at_max(()) == {"A": 4}, "a host whose workers are gone hands all of it over"


def test_when_the_fleet_shrinks_below_the_unattended_workers_the_others_get_none() -> None:
    state = State(desired=4, quotas=(("A", 1), ("B", 3)))
    observation = Observation(hosts=(HostView("A", 4, 1, 1, 0),), unattended=(("B", 3),))
    decision = decide(observation, state, Policy(min=2, max=2), NOW_S)
    assert (decision.desired, dict(decision.quotas)) == (2, {"A": 0, "B": 2})


def test_hold_keeps_what_runs_in_host_order_up_to_the_fleet_size() -> None:
    assert hold(5, [("b", 2), ("a", 2)]) == {"a": 2, "b": 2}
    assert hold(3, [("b", 2), ("a", 2)]) == {"a": 2, "b": 1}
    assert hold(2, [("b", 2), ("a", 2), ("c", 0)]) == {"a": 2, "b": 0}, "b stays watched"
    assert hold(0, [("a", 2)]) == {"a": 0}


def test_lapsed_hosts_are_those_given_workers_that_no_longer_heartbeat() -> None:
    live = [Member("A", {"capacity": "4"})]
    assert lapsed_hosts((("A", 2), ("B", 2), ("C", 0)), live) == {"B", "C"}, "C may run on"


def test_only_workers_taking_jobs_on_a_lapsed_host_count() -> None:
    workers = [
        Member("B:1:a", {"host": "B", "state": "running", "controller": "10"}),
        Member("B:2:b", {"host": "B", "state": "running", "controller": "10"}),
        Member("B:3:c", {"host": "B", "state": "warm", "controller": "10"}),
        Member("B:4:d", {"host": "B", "state": "draining", "controller": "10"}),
        Member("B:5:e", {"host": "B", "controller": "10"}),  # no state: counts
        Member("A:6:f", {"host": "A", "state": "running", "controller": "11"}),  # attended
        Member("x:7:g", {"host": "x", "state": "running"}),  # a hand-started worker
    ]
    assert unattended_workers(workers, {"B"}) == (("B", 3),)
    assert unattended_workers([], {"B"}) == ()


def test_hand_started_workers_on_a_lapsed_hosts_machine_keep_no_share() -> None:
    # `fleetscale worker` run by hand names the machine's hostname, the default
    # --host-id: a plan never counted it, so it must not take a share once the
    # controller of that name is gone (its own workers drained with it).
    by_hand = [Member("B:8:h", {"host": "B", "state": "running"})]
    assert unattended_workers(by_hand, {"B"}) == ()


def lead(state: State, policy: Policy, workers: list[Member], now_s: float) -> State:
    """One leader tick as `Reconciler._observe` and `decide` run it, with live host A
    (capacity 4) and the worker registrations `workers`."""
    live = [Member("A", {"capacity": "4"})]
    unattended = unattended_workers(workers, lapsed_hosts(state.quotas, live))
    observation = Observation(hosts=(HostView("A", 4, 2, 2, 0),), unattended=unattended)
    return decide(observation, state, policy, now_s).state


def test_a_lapsed_host_held_at_no_share_is_still_watched_when_the_fleet_grows() -> None:
    # B's controller is paused with 2 workers running; the fleet goes to 0 (scaled to
    # zero, or max lowered), then back to 4: B's workers still run, so A gets 2, not 4.
    b_workers = [
        Member(f"B:{n}:w", {"host": "B", "state": "running", "controller": "9"}) for n in (1, 2)
    ]
    state = State(desired=4, quotas=(("A", 2), ("B", 2)))
    state = lead(state, Policy(min=0, max=0), b_workers, NOW_S)
    assert state.desired == 0
    state = lead(state, FIXED, b_workers, NOW_S + 1)
    assert dict(state.quotas) == {"A": 2, "B": 2}, "A would run 4 beside B's 2"
