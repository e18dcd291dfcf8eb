"""The values handed along `decide`'s chain of steps: Tick, Needs and Step."""

from __future__ import annotations

from dataclasses import dataclass

from fleetscale.controller.policytypes import Observation, Policy, Reason, State


@dataclass(frozen=True, slots=True)
class Tick:
    """The fixed context of one `decide` call, handed to each step.

    Attributes:
        signals: the observation after staleness was applied.
        state: the previous state.
        policy: the policy in force.
        now_s: the caller's clock, seconds.
        current: the fleet size the decision starts from, workers.
    """

    signals: Observation
    state: State
    policy: Policy
    now_s: float
    current: int


@dataclass(frozen=True, slots=True)
class Needs:
    """What the model and the waits say the fleet needs this tick (None = unknown).

    Attributes:
        steady: capacity-model workers for the rate to cover (the slow rate plus its
            spread).
        up: capacity-model workers at the low end of that rate's noise band: a fleet
            below it is short of capacity beyond doubt.
        down: capacity-model workers at the high end of the band (wider by the rate's
            spread): the size a scale-down may go to.
        surge: capacity-model workers at the higher of the raw and the fast rate (at
            least `steady`).
        drain: the fleet that, once its new workers are up, soon serves new arrivals
            within the target despite the queued jobs (0 when the head of the line is
            younger than half the target).
        wait_ratio: the worse of p99 wait and head-of-line age over the target.
        model_sized: the fleet is at least the surge size and out of the start-up
            grace: a breach now is the model's to answer for (see `learn`).
        idle_since_s: since when the fleet has been idle without a break (None: not
            idle), caller's clock.
    """

    steady: int | None
    up: int | None
    down: int | None
    surge: int | None
    drain: int | None
    wait_ratio: float | None
    model_sized: bool
    idle_since_s: float | None = None


@dataclass(frozen=True, slots=True)
class Step:
    """A value on its way through the decision chain.

    Attributes:
        value: the fleet size so far, workers.
        reason: the step that shaped it.
        urgent: an SLO-driven scale-up (bypasses tolerance, stabilisation and budget).
        record: the sizing recommendation to remember for stabilisation (None: none).
    """

    value: int
    reason: Reason
    urgent: bool = False
    record: int | None = None
