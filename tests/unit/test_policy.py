"""Table-driven tests of the pure scaling policy (`fleetscale.controller.policy.decide`)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import pytest

from fleetscale.controller.capacity import erlang_c, mean_wait_s, wait_quantile_s, workers_for_wait
from fleetscale.controller.policy import (
    HostView,
    Observation,
    Policy,
    Reason,
    State,
    decide,
)
from fleetscale.controller.quota import assign_quotas
from fleetscale.controller.recommend import capacity_workers
from fleetscale.errors import ConfigurationError

NOW_S = 1000.0
POLICY = Policy(max=200)
SERVICE_S = 0.2


def hosts(running: int, count: int = 4, capacity: int = 64) -> tuple[HostView, ...]:
    """`count` hosts sharing `running` ready workers as evenly as possible."""
    share, extra = divmod(running, count)
    views = []
    for i in range(count):
        n = share + (1 if i < extra else 0)
        views.append(HostView(f"h{i}", capacity, n, n, 0))
    return tuple(views)


def observe(current: int, **changes: object) -> Observation:
    """A healthy, fresh observation of a fleet of `current` at 50 jobs/s, then `changes`."""
    base = Observation(
        wait_p50_s=0.01,
        wait_p99_s=0.1,
        head_of_line_age_s=0.0,
        backlog=current // 2,
        arrival_rate_per_s=50.0,
        service_time_s=SERVICE_S,
        busy_fraction=0.8,
        telemetry_age_s=1.0,
        hosts=hosts(current),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def remembered(current: int, rate_per_s: float | None = 50.0, **changes: object) -> State:
    """A state whose smoothed signals equal `rate_per_s` and the service time."""
    base = State(
        desired=current,
        rate_per_s=rate_per_s,
        service_s=SERVICE_S,
        smoothed_at_s=NOW_S - 1.0,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def need(rate_per_s: float) -> int:
    size = capacity_workers(rate_per_s, SERVICE_S, POLICY)
    assert size is not None
    return size


@dataclass(frozen=True, slots=True)
class Case:
    """One decision scenario and what must hold."""

    id: str
    observation: Observation
    state: State
    reason: Reason
    desired: int | None = None
    at_least: int | None = None
    policy: Policy = POLICY


RATE_LIMIT_CEILING = max(2 * 10, 2 + 4)  # base 2 workers, ratio ×10, step 4

CASES = [
    Case(
        "an empty fleet with a backlog and an unknown run time starts one worker",
        Observation(backlog=5, head_of_line_age_s=0.1, arrival_rate_per_s=5.0, hosts=hosts(0)),
        State(desired=0),
        Reason.SCALE_FROM_ZERO,
        desired=1,
    ),
    Case(
        "an empty fleet with a backlog and a remembered run time starts the model's size",
        observe(0, wait_p99_s=None, telemetry_age_s=None, backlog=5, head_of_line_age_s=0.1),
        remembered(0),
        Reason.SCALE_FROM_ZERO,
        desired=need(50.0),
    ),
    Case(
        "a p99 breach with a slow head of line grows the fleet at once",
        observe(12, wait_p99_s=0.9, head_of_line_age_s=0.3, backlog=30),
        remembered(12),
        Reason.SLO_BREACH,
        at_least=13,
    ),
    Case(
        "an old job at the head of the line grows the fleet to drain the backlog",
        observe(12, head_of_line_age_s=2.0, backlog=212, arrival_rate_per_s=100.0),
        remembered(12),
        Reason.BACKLOG,
        at_least=need(100.0) + 200 * 2 // 5,
    ),
    Case(
        "a capacity need well above the fleet scales up without a breach",
        observe(12, arrival_rate_per_s=100.0),
        remembered(12, 100.0),
        Reason.CAPACITY_UP,
        desired=need(100.0),
    ),
    Case(
        "a capacity need under the Erlang-C floor scales up even within tolerance",
        observe(need(50.0) - 1),
        remembered(need(50.0) - 1),
        Reason.CAPACITY_UP,
        desired=need(50.0),
    ),
    Case(
        "a capacity need well below the fleet with quiet waits scales down",
        observe(16, arrival_rate_per_s=40.0),
        remembered(16, 40.0),
        Reason.CAPACITY_DOWN,
        desired=need(40.0),
    ),
    Case(
        "a fleet at the model's size holds",
        observe(need(50.0)),
        remembered(need(50.0)),
        Reason.AT_TARGET,
        desired=need(50.0),
    ),
    Case(
        "a need just above the fleet and above the floor holds within tolerance",
        observe(23, arrival_rate_per_s=100.0),
        remembered(23, 100.0),
        Reason.WITHIN_TOLERANCE,
        desired=23,
    ),
    Case(
        "a shrink within tolerance of the fleet holds",
        observe(26, arrival_rate_per_s=100.0),
        remembered(26, 100.0),
        Reason.WITHIN_TOLERANCE,
        desired=26,
    ),
    Case(
        "a capacity need below the fleet holds while p99 is over half the target",
        observe(16, arrival_rate_per_s=40.0, wait_p99_s=0.3),
        remembered(16, 40.0),
        Reason.WAIT_GUARD,
        desired=16,
    ),
    Case(
        "a capacity need below the fleet holds within the stabilisation window",
        observe(16, arrival_rate_per_s=40.0),
        remembered(16, 40.0, recommendations=((NOW_S - 5.0, 16),)),
        Reason.STABILISING,
        desired=16,
    ),
    Case(
        "an unknown arrival rate holds",
        observe(16, arrival_rate_per_s=None),
        remembered(16, None),
        Reason.HOLD_UNKNOWN,
        desired=16,
    ),
    Case(
        "stale telemetry never shrinks the fleet",
        observe(16, arrival_rate_per_s=40.0, telemetry_age_s=60.0),
        remembered(16, 40.0),
        Reason.HOLD_UNKNOWN,
        desired=16,
    ),
    Case(
        "telemetry of unknown age never shrinks the fleet",
        observe(16, arrival_rate_per_s=40.0, telemetry_age_s=None),
        remembered(16, 40.0),
        Reason.HOLD_UNKNOWN,
        desired=16,
    ),
    Case(
        "growth beyond ×10 or +4 per period is rate limited",
        observe(2, arrival_rate_per_s=500.0),
        remembered(2, 500.0),
        Reason.RATE_LIMITED,
        desired=RATE_LIMIT_CEILING,
    ),
    Case(
        "shrinking more than half the fleet within the period is rate limited",
        observe(40, arrival_rate_per_s=10.0),
        remembered(40, 10.0),
        Reason.RATE_LIMITED,
        desired=20,
    ),
    Case(
        "a spent change budget holds a non-urgent scale-up",
        observe(12, arrival_rate_per_s=100.0),
        remembered(12, 100.0, changes=tuple((NOW_S - 300.0 + i, 12) for i in range(60))),
        Reason.CHANGE_BUDGET,
        desired=12,
    ),
    Case(
        "a spent change budget never holds an urgent scale-up",
        observe(12, head_of_line_age_s=2.0, backlog=212, arrival_rate_per_s=100.0),
        remembered(12, 100.0, changes=tuple((NOW_S - 300.0 + i, 12) for i in range(60))),
        Reason.BACKLOG,
        at_least=13,
    ),
    Case(
        "a need under the policy minimum is clamped up to it",
        observe(12, arrival_rate_per_s=10.0),
        remembered(12, 10.0),
        Reason.CLAMPED_MIN,
        desired=10,
        policy=dataclasses.replace(POLICY, min=10),
    ),
    Case(
        "a need over the policy maximum is clamped down to it",
        observe(12, arrival_rate_per_s=100.0),
        remembered(12, 100.0),
        Reason.CLAMPED_MAX,
        desired=15,
        policy=dataclasses.replace(POLICY, max=15),
    ),
    Case(
        "a need over the hosts' total capacity is clamped to it",
        observe(12, arrival_rate_per_s=100.0, hosts=hosts(12, count=2, capacity=8)),
        remembered(12, 100.0),
        Reason.HOST_CAPACITY,
        desired=16,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_decide_gives_the_expected_reason_and_size(case: Case) -> None:
    decision = decide(case.observation, case.state, case.policy, NOW_S)
    assert decision.reason is case.reason, (
        f"{case.id}: reason should be {case.reason}, got {decision.reason} "
        f"(desired {decision.desired}, inputs {decision.inputs})"
    )
    if case.desired is not None:
        assert decision.desired == case.desired, f"{case.id}: desired {decision.desired}"
    if case.at_least is not None:
        assert decision.desired >= case.at_least, f"{case.id}: desired {decision.desired}"


def test_every_reason_code_is_covered_by_a_case() -> None:
    assert {case.reason for case in CASES} == set(Reason)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_quotas_sum_to_desired_and_respect_every_host_capacity(case: Case) -> None:
    decision = decide(case.observation, case.state, case.policy, NOW_S)
    capacity = {view.host: view.capacity for view in case.observation.hosts}
    assert sum(decision.quotas.values()) == decision.desired
    assert all(decision.quotas[host] <= capacity[host] for host in decision.quotas)
    assert set(decision.quotas) == set(capacity)


@dataclass(frozen=True, slots=True)
class UnknownCase:
    """A fleet whose signals are missing, which must never shrink."""

    id: str
    observation: Observation


UNKNOWN = [
    UnknownCase("everything unknown", Observation(hosts=hosts(20))),
    UnknownCase("only the rate known", Observation(arrival_rate_per_s=1.0, hosts=hosts(20))),
    UnknownCase("an empty queue with stale telemetry", observe(20, telemetry_age_s=99.0)),
    UnknownCase(
        "stale telemetry and zero arrivals",
        observe(20, telemetry_age_s=99.0, arrival_rate_per_s=0.0, backlog=0),
    ),
    UnknownCase("an unknown head of line", observe(20, head_of_line_age_s=None, backlog=None)),
]


@pytest.mark.parametrize("case", UNKNOWN, ids=[case.id for case in UNKNOWN])
def test_unknown_or_stale_signals_never_shrink_the_fleet(case: UnknownCase) -> None:
    state = State(desired=20)
    for tick in range(30):
        decision = decide(case.observation, state, POLICY, NOW_S + tick)
        assert decision.desired >= 20, f"{case.id}: shrank to {decision.desired} at tick {tick}"
        state = decision.state


def test_a_scale_down_waits_for_the_stabilisation_window_to_pass() -> None:
    state = remembered(24, 100.0)
    quiet = observe(24, arrival_rate_per_s=100.0)
    state = decide(quiet, state, POLICY, NOW_S).state
    low = observe(24, arrival_rate_per_s=40.0)
    sizes = []
    for tick in range(1, 40):
        decision = decide(low, state, POLICY, NOW_S + tick)
        sizes.append((tick, decision.desired))
        state = decision.state
    first_shrink = next(tick for tick, size in sizes if size < 24)
    assert first_shrink >= POLICY.scale_down_stabilisation_s, sizes


def test_within_the_start_up_grace_a_breach_does_not_compound() -> None:
    breach = observe(12, wait_p99_s=1.0, head_of_line_age_s=0.3, backlog=30)
    first = decide(breach, remembered(12), POLICY, NOW_S)
    second = decide(breach, first.state, POLICY, NOW_S + 1.0)
    assert first.desired > 12
    assert second.desired == first.desired, (first.desired, second.desired)


def test_decide_is_pure_the_same_inputs_give_the_same_decision() -> None:
    observation = observe(12, wait_p99_s=0.9, head_of_line_age_s=0.3, backlog=30)
    state = remembered(12)
    assert decide(observation, state, POLICY, NOW_S) == decide(observation, state, POLICY, NOW_S)
    assert state == remembered(12)


def test_the_rate_ewma_moves_toward_a_new_sample_by_its_time_constant() -> None:
    state = remembered(12, 50.0)
    decision = decide(observe(12, arrival_rate_per_s=150.0), state, POLICY, NOW_S)
    # one second after the last update, weight = 1 − exp(−1/τ)
    weight = 1 - math.exp(-1.0 / POLICY.rate_smoothing_s)
    assert decision.state.rate_per_s == pytest.approx(50.0 + weight * 100.0)


def test_quotas_are_sticky_growing_by_one_changes_one_host() -> None:
    capacities = {"a": 8, "b": 8, "c": 8}
    before = {"a": 3, "b": 2, "c": 3}
    after = assign_quotas(9, capacities, before)
    changed = [host for host in capacities if after[host] != before[host]]
    assert changed == ["b"], after


def test_quotas_shrink_from_the_fullest_host_and_drop_hosts_that_left() -> None:
    after = assign_quotas(4, {"a": 4, "b": 8}, {"a": 4, "b": 2, "gone": 5})
    assert after == {"a": 2, "b": 2}


def test_quotas_never_exceed_capacity_even_when_it_shrank() -> None:
    after = assign_quotas(10, {"a": 2, "b": 20}, {"a": 9, "b": 1})
    assert after == {"a": 2, "b": 8}


@dataclass(frozen=True, slots=True)
class BadSetting:
    """A policy value that must be refused, and a word the error must name."""

    id: str
    settings: dict[str, str] = field(default_factory=dict)
    names: str = ""


BAD = [
    BadSetting("zero target", {"target_p99": "0"}, "target_p99_s"),
    BadSetting("min above max", {"min": "9", "max": "3"}, "min=9"),
    BadSetting("tolerance of one", {"tolerance": "1"}, "tolerance"),
    BadSetting("utilisation over one", {"target_utilisation": "1.5"}, "target_utilisation"),
    BadSetting("a bad duration", {"scale_down_stabilisation_s": "soon"}, "soon"),
    BadSetting("an unknown key", {"target": "1s"}, "unknown policy key"),
    BadSetting("a word for an integer", {"max": "many"}, "max='many'"),
    BadSetting("no change budget", {"change_budget": "0"}, "change_budget"),
]


@pytest.mark.parametrize("case", BAD, ids=[case.id for case in BAD])
def test_invalid_policy_values_are_refused_with_a_one_line_message(case: BadSetting) -> None:
    with pytest.raises(ConfigurationError) as raised:
        Policy.from_settings(case.settings)
    message = str(raised.value)
    assert case.names in message and "\n" not in message, message


def test_policy_settings_parse_durations_and_aliases_and_round_trip() -> None:
    policy = Policy.from_settings({"target_p99": "300ms", "stabilisation": "1m", "max": "40"})
    assert (policy.target_p99_s, policy.scale_down_stabilisation_s, policy.max) == (0.3, 60.0, 40)
    again = Policy().with_updates(**{k: str(v) for k, v in policy.to_dict().items()})
    assert again == policy


def test_erlang_c_matches_a_textbook_value() -> None:
    # Two servers, offered load 1: P(wait) = 1/3 (Kleinrock, M/M/2 at ρ = 0.5).
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)
    assert mean_wait_s(2, 1.0, 1.0) == pytest.approx(1 / 3)


def test_the_fewest_workers_for_a_wait_target_is_the_first_that_meets_it() -> None:
    workers = workers_for_wait(100.0, 0.2, 0.5)
    assert wait_quantile_s(workers, 100.0, 0.2) <= 0.5 < wait_quantile_s(workers - 1, 100.0, 0.2)
