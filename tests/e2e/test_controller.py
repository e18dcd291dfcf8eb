"""Real controllers driving real worker processes on a real Redis."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from fleetscale.controller.leader import host_of
from fleetscale.controller.plan import PlanStore
from fleetscale.embedded import free_port
from fleetscale.keys import FleetKeys
from fleetscale.metrics import METRICS
from fleetscale.producer import Producer
from fleetscale.store import Client, redis_time_s
from tests.support.fleet import LedgerFleet, alive, controller, host_fields, worker_pids
from tests.support.ledger import done_counts
from tests.support.procs import REPO, Proc, wait_until

LEASE_TTL_S = 2.0
TICK_S = 0.5


class Load:
    """Submits `record` jobs at a steady rate from a thread; remembers every key."""

    def __init__(self, fleet: LedgerFleet, rate_per_s: float, job_s: float) -> None:
        self.producer = Producer(fleet.fleet, fleet.redis_url)
        self.rate_per_s, self.job_s = rate_per_s, job_s
        self.keys: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        start = time.monotonic()
        while not self._stop.is_set():
            due = int((time.monotonic() - start) * self.rate_per_s) - len(self.keys)
            batch = [f"k{len(self.keys) + i}" for i in range(max(0, due))]
            if batch:
                self.producer.submit_many([("record", (k, self.job_s), {}) for k in batch])
                self.keys += batch
            time.sleep(0.02)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def cli(fleet: LedgerFleet, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "fleetscale", *args]
    env = {**os.environ, **fleet.env}
    return subprocess.run(
        argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False
    )


def decisions(client: Client, keys: FleetKeys, url: str, last: int = 50) -> list[dict]:
    return PlanStore(client, keys, url).decisions(last)


@pytest.mark.timeout(240)
def test_two_controllers_share_one_leader_and_the_survivor_takes_over_when_it_dies(
    ledger_fleet: LedgerFleet, client: Client, keys: FleetKeys
) -> None:
    a = controller(ledger_fleet, "A", "--capacity", "4", "--min", "2", "--max", "8")
    b = controller(ledger_fleet, "B", "--capacity", "4", "--min", "2", "--max", "8")
    plans = PlanStore(client, keys, ledger_fleet.redis_url)
    with Load(ledger_fleet, rate_per_s=60, job_s=0.05) as load:
        wait_until(lambda: {h.decode() for h in client.zrange(keys.hosts, 0, -1)} == {"A", "B"},
                   timeout_s=30, what="both hosts registered")  # fmt: skip
        wait_until(plans.read, timeout_s=30, what="a plan")
        samples = 0
        for _ in range(40):
            leading = [h for h in "AB" if host_fields(client, keys, h).get("leading") == "1"]
            holder = client.get(keys.leader)
            plan = plans.read()
            assert len(leading) == 1, f"exactly one leader at every sample, saw {leading}"
            assert holder is not None and host_of(holder.decode()) in "AB"
            assert plan is not None and sum(plan.quotas.values()) == plan.desired
            samples += 1
            time.sleep(0.2)
        leader = host_of(client.get(keys.leader).decode())
        survivor, dead = ("B", a) if leader == "A" else ("A", b)
        dead_pids = worker_pids(client, keys, leader)
        assert dead_pids, "the leader's host runs workers"
        killed_at = time.monotonic()
        dead.signal(signal.SIGKILL)
        wait_until(lambda: host_of((client.get(keys.leader) or b"").decode()) == survivor,
                   timeout_s=LEASE_TTL_S + TICK_S + 10, what="the survivor to lead")  # fmt: skip
        takeover_s = time.monotonic() - killed_at
        wait_until(lambda: set((plans.read() or plan).quotas) == {survivor}, timeout_s=30,
                   what="the dead host's quota to move to the survivor")  # fmt: skip
        wait_until(
            lambda: not any(alive(p) for p in dead_pids),
            timeout_s=30,
            what="the dead host's workers to exit",
        )
        time.sleep(2)
    wait_until(
        lambda: set(load.keys) <= set(done_counts(ledger_fleet.ledger)),
        timeout_s=60,
        what="every job done",
    )
    print(f"{samples} samples with one leader; takeover after {takeover_s:.2f}s "
          f"(lease {LEASE_TTL_S}s + tick {TICK_S}s); {len(dead_pids)} orphaned workers exited; "
          f"{len(load.keys)} jobs, none lost")  # fmt: skip


@pytest.mark.timeout(120)
def test_a_policy_change_applies_at_the_next_decision_and_a_bad_one_is_refused(
    ledger_fleet: LedgerFleet, client: Client, keys: FleetKeys
) -> None:
    controller(ledger_fleet, "A", "--capacity", "4", "--min", "0", "--max", "4", "--warm", "0")
    url = ledger_fleet.redis_url
    wait_until(lambda: decisions(client, keys, url, 1), timeout_s=30, what="a first decision")
    asked_at_s = redis_time_s(client)
    result = cli(ledger_fleet, "policy", ledger_fleet.fleet, "set", "min=2")
    assert result.returncode == 0, result.stderr
    set_at_s = redis_time_s(client)  # the write landed between asked_at_s and now
    wait_until(lambda: decisions(client, keys, url, 1)[0]["at_s"] > set_at_s,
               timeout_s=10, what="a decision after the policy was set")  # fmt: skip
    log = [d for d in reversed(decisions(client, keys, url)) if d["at_s"] > asked_at_s]
    versions = [d["policy_version"] for d in log]
    assert versions == sorted(versions), f"the swap is one-way: {versions}"
    after = [d for d in log if d["at_s"] > set_at_s]
    assert after[0]["policy_version"] == 2, "the very next decision used the new policy"
    assert after[0]["desired"] == 2
    bad = cli(ledger_fleet, "policy", ledger_fleet.fleet, "set", "min=lots")
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and "min" in bad.stderr, bad.stderr
    time.sleep(3 * TICK_S)
    latest = decisions(client, keys, url, 3)
    assert all(d["policy_version"] == 2 and d["desired"] == 2 for d in latest)
    shown = json.loads(cli(ledger_fleet, "policy", ledger_fleet.fleet, "show", "--json").stdout)
    assert shown["version"] == 2 and shown["policy"]["min"] == 2


@pytest.mark.timeout(120)
def test_with_workers_frozen_the_controller_holds_and_explain_says_why(
    ledger_fleet: LedgerFleet, client: Client, keys: FleetKeys
) -> None:
    controller(ledger_fleet, "A", "--capacity", "6", "--min", "1", "--max", "6", "--warm", "0")
    url = ledger_fleet.redis_url
    with Load(ledger_fleet, rate_per_s=40, job_s=0.05):
        wait_until(
            lambda: len(worker_pids(client, keys, "A")) >= 2,
            timeout_s=60,
            what="workers for the load",
        )
        time.sleep(3)
    pids = worker_pids(client, keys, "A")
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        wait_until(lambda: decisions(client, keys, url, 1)[0]["reason"] == "hold_unknown",
                   timeout_s=30, what="the controller to hold on stale telemetry")  # fmt: skip
        running = host_fields(client, keys, "A")["running"]
        time.sleep(3)
        newest_first = decisions(client, keys, url, 50)
        run = next(i for i, d in enumerate(newest_first) if d["reason"] != "hold_unknown")
        held, before = newest_first[:run], newest_first[run]
        assert len(held) >= 4, "the controller kept holding"
        assert {d["desired"] for d in held} == {before["desired"]}, "the worker count is held"
        assert host_fields(client, keys, "A")["running"] == running, "no worker stopped or added"
        explained = cli(ledger_fleet, "explain", ledger_fleet.fleet, "--last", "1")
        assert "hold_unknown" in explained.stdout and "telemetry age" in explained.stdout
        print(explained.stdout)
    finally:
        for pid in pids:
            # One the controller was already stopping when the load ended is killed
            # once its stop grace runs out, frozen or not.
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


@pytest.mark.timeout(120)
def test_a_worker_app_that_fails_to_import_backs_off_shows_the_error_and_recovers(
    ledger_fleet: LedgerFleet, client: Client, keys: FleetKeys, tmp_path: Path
) -> None:
    marker = tmp_path / "import-ok"
    env = {"FLEETSCALE_TEST_IMPORT_OK": str(marker)}
    controller(ledger_fleet, "A", "--fleet", ledger_fleet.fleet, "--capacity", "2", "--min", "1",
               "--max", "2", "--warm", "0", app="tests.apps.flaky_import:app", env=env)  # fmt: skip
    wait_until(lambda: int(host_fields(client, keys, "A").get("spawn_failures", 0)) >= 2,
               timeout_s=30, what="failed starts")  # fmt: skip
    time.sleep(6)
    failures = int(host_fields(client, keys, "A")["spawn_failures"])
    assert failures <= 5, f"backed off: {failures} starts in about 10 s, not one per tick"
    status = json.loads(cli(ledger_fleet, "status", ledger_fleet.fleet, "--json").stdout)
    (host,) = status["hosts"]
    assert "not ready yet" in (host["last_error"] or ""), host
    marker.touch()
    wait_until(lambda: host_fields(client, keys, "A").get("ready") == "1", timeout_s=70,
               what="a worker once the import works")  # fmt: skip
    print(f"{failures} failed starts before the fix; recovered without a restart")


@pytest.mark.timeout(120)
@pytest.mark.parametrize("spawn", ["fork", "exec"])
def test_workers_that_cannot_reach_their_redis_name_the_controller_flag_that_set_it(
    ledger_fleet: LedgerFleet, client: Client, keys: FleetKeys, spawn: str
) -> None:
    """The workers' URL comes from the controller's --worker-redis-url: their
    unreachable hint must not send the operator to a --redis-url they never set."""
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    proc = controller(ledger_fleet, "A", "--min", "1", "--max", "1", "--warm", "0",
                      "--spawn", spawn, "--worker-redis-url", nowhere)  # fmt: skip
    wait_until(lambda: "failed to start" in proc.output(), timeout_s=60, what="a failed start")
    error = host_fields(client, keys, "A").get("last_error", "") or proc.output()
    assert "the controller's --worker-redis-url / FLEETSCALE_WORKER_REDIS_URL" in error, error


@pytest.mark.timeout(120)
def test_a_dry_run_controller_recommends_and_exports_metrics_but_starts_nothing(
    ledger_fleet: LedgerFleet, client: Client, keys: FleetKeys
) -> None:
    port = free_port()
    controller(ledger_fleet, "A", "--capacity", "4", "--min", "1", "--max", "4", "--dry-run",
               "--metrics-port", str(port))  # fmt: skip
    url = ledger_fleet.redis_url
    Producer(ledger_fleet.fleet, url).submit_many(
        [("record", (f"k{i}", 0.0), {}) for i in range(50)]
    )
    wait_until(lambda: any(d["desired"] >= 1 for d in decisions(client, keys, url)), timeout_s=30,
               what="a recommendation to scale up")  # fmt: skip
    assert all(d["dry_run"] for d in decisions(client, keys, url))
    assert PlanStore(client, keys, url).read() is None, "a dry run writes no plan"
    assert worker_pids(client, keys, "A") == set(), "a dry run starts no worker"
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    exported = {
        line.split("{")[0].split(" ")[0] for line in body.splitlines() if line and line[0] != "#"
    }
    missing = {name for name in METRICS if name not in exported}
    assert not missing, f"metrics not exported: {missing}"
    recommended = [
        line for line in body.splitlines() if line.startswith("fleetscale_recommended_workers ")
    ]
    assert recommended and float(recommended[0].split()[1]) >= 1


@pytest.mark.timeout(120)
def test_an_idle_fleet_with_min_zero_scales_to_zero_and_starts_again_for_new_work(
    ledger_fleet: LedgerFleet, client: Client, keys: FleetKeys
) -> None:
    settings = ("min=0", "max=4", "scale_to_zero_after=3s", "scale_down_stabilisation=2s")
    assert cli(ledger_fleet, "policy", ledger_fleet.fleet, "set", *settings).returncode == 0
    controller(ledger_fleet, "A", "--capacity", "4", "--min", "0", "--max", "4", "--warm", "0")
    with Load(ledger_fleet, rate_per_s=20, job_s=0.05) as load:
        wait_until(lambda: worker_pids(client, keys, "A"), timeout_s=60, what="a worker")
        time.sleep(2)
    wait_until(lambda: set(load.keys) <= set(done_counts(ledger_fleet.ledger)), timeout_s=30,
               what="the load done")  # fmt: skip
    url = ledger_fleet.redis_url
    wait_until(lambda: decisions(client, keys, url, 1)[0]["desired"] == 0, timeout_s=30,
               what="the idle fleet to go to zero")  # fmt: skip
    wait_until(lambda: not worker_pids(client, keys, "A"), timeout_s=30, what="no worker left")
    Producer(ledger_fleet.fleet, url).submit("record", ("after-zero", 0.0))
    wait_until(lambda: "after-zero" in done_counts(ledger_fleet.ledger), timeout_s=30,
               what="the job that came after zero to run")  # fmt: skip
    reasons = [d["reason"] for d in decisions(client, keys, url, 50)]
    assert "scale_from_zero" in reasons, reasons


def consuming(client: Client, keys: FleetKeys) -> dict[str, set[int]]:
    """Pids of the fleet's live registered workers that take jobs (not warm spares,
    not draining), by host."""
    found: dict[str, set[int]] = {}
    for member in client.zrangebyscore(keys.workers, redis_time_s(client) * 1000, "+inf"):
        fields = client.hgetall(keys.worker(member.decode()))
        pid = int(fields.get(b"pid", 0))
        if fields.get(b"state") == b"running" and alive(pid):
            found.setdefault(fields[b"host"].decode(), set()).add(pid)
    return found


class Census:
    """Counts the fleet's consuming workers every 0.1 s; keeps the largest count."""

    def __init__(self, client: Client, keys: FleetKeys) -> None:
        self.client, self.keys = client, keys
        self.most: tuple[int, dict[str, set[int]]] = (0, {})
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            seen = consuming(self.client, self.keys)
            total = sum(len(pids) for pids in seen.values())
            if total > self.most[0]:
                self.most = (total, seen)

    def stop(self) -> tuple[int, dict[str, set[int]]]:
        """Stop counting; the largest count seen and the workers behind it."""
        self._stop.set()
        self._thread.join()
        return self.most


def registered(client: Client, keys: FleetKeys, host_id: str) -> bool:
    """Whether host `host_id`'s controller registration is live."""
    expiry = client.zscore(keys.hosts, host_id)
    return expiry is not None and expiry > redis_time_s(client) * 1000


def quotas(plans: PlanStore) -> dict[str, int]:
    """The current plan's quotas (none without a plan)."""
    plan = plans.read()
    return dict(plan.quotas) if plan else {}


def plans_until(plans: PlanStore, after_s: float) -> list[dict[str, int]]:
    """The quotas of every plan read until one decided after `after_s` (Redis seconds)."""
    seen: list[dict[str, int]] = []

    def late_enough() -> bool:
        plan = plans.read()
        if plan is not None and (not seen or seen[-1] != plan.quotas):
            seen.append(dict(plan.quotas))
        return plan is not None and plan.decided_at_s > after_s

    wait_until(late_enough, timeout_s=60, every_s=0.1, what=f"a plan decided after {after_s}")
    return seen


def two_hosts_at_max(
    ledger_fleet: LedgerFleet, client: Client, keys: FleetKeys
) -> tuple[PlanStore, dict[str, Proc]]:
    """Controllers A and B (capacity 4 each) running a fleet fixed at its max, 4: two
    workers each (the policy is set once both are registered, so the split is even)."""
    limits = ("--capacity", "4", "--min", "0", "--max", "4", "--warm", "0")
    controllers = {host: controller(ledger_fleet, host, *limits) for host in "AB"}
    plans = PlanStore(client, keys, ledger_fleet.redis_url)
    wait_until(lambda: registered(client, keys, "A") and registered(client, keys, "B"),
               timeout_s=30, what="both hosts registered")  # fmt: skip
    wait_until(plans.read, timeout_s=30, what="a plan")
    assert cli(ledger_fleet, "policy", ledger_fleet.fleet, "set", "min=4").returncode == 0
    wait_until(lambda: {h: len(p) for h, p in consuming(client, keys).items()} == {"A": 2, "B": 2},
               timeout_s=60, what="two workers on each host")  # fmt: skip
    assert quotas(plans) == {"A": 2, "B": 2}
    return plans, controllers


@pytest.mark.timeout(240)
@pytest.mark.parametrize("paused", ["leader", "follower"])
def test_a_paused_controllers_running_workers_keep_their_share_and_it_resumes_without_churn(
    ledger_fleet: LedgerFleet, client: Client, keys: FleetKeys, paused: str
) -> None:
    """A SIGSTOPped controller's workers run on after its host registration lapses:
    the leader must not hand their share to the other host (the fleet would run 6
    workers with max 4), and when it resumes nothing stops or starts."""
    plans, controllers = two_hosts_at_max(ledger_fleet, client, keys)
    before = consuming(client, keys)
    leader = host_of((client.get(keys.leader) or b"").decode())
    frozen_host = leader if paused == "leader" else ({"A", "B"} - {leader}).pop()
    other = ({"A", "B"} - {frozen_host}).pop()
    frozen = controllers[frozen_host]
    census = Census(client, keys)
    with Load(ledger_fleet, rate_per_s=40, job_s=0.05):
        frozen.signal(signal.SIGSTOP)
        try:
            wait_until(lambda: not registered(client, keys, frozen_host), timeout_s=30,
                       what="the paused host's registration to lapse")  # fmt: skip
            lapsed_s = redis_time_s(client)
            paused_plans = plans_until(plans, lapsed_s + 6)
            assert consuming(client, keys)[frozen_host] == before[frozen_host], "still running"
        finally:
            frozen.signal(signal.SIGCONT)
        wait_until(lambda: registered(client, keys, frozen_host), timeout_s=30,
                   what="the resumed host to register again")  # fmt: skip
        resumed_plans = plans_until(plans, redis_time_s(client) + 4)
        after = consuming(client, keys)
    most, workers = census.stop()
    print(f"paused the {paused} ({frozen_host}): at most {most} consuming workers; "
          f"plans while paused {paused_plans}")  # fmt: skip
    assert all(q.get(other, 0) <= 2 for q in paused_plans), f"share handed over: {paused_plans}"
    assert most <= 4, f"{most} consuming workers with max 4: {workers}"
    assert resumed_plans[-1] == {"A": 2, "B": 2}, resumed_plans
    assert after == before, "a resumed controller causes no churn"


@pytest.mark.timeout(240)
def test_a_host_lost_with_its_workers_hands_its_share_over_once_their_registrations_lapse(
    ledger_fleet: LedgerFleet, client: Client, keys: FleetKeys
) -> None:
    """A host that dies whole (controller and workers at once, a machine lost) is not
    held like a paused one: its share moves to the other host."""
    plans, controllers = two_hosts_at_max(ledger_fleet, client, keys)
    lost = controllers["B"]
    lost.signal(signal.SIGSTOP)  # it must not replace the workers killed next
    for pid in consuming(client, keys)["B"]:
        os.kill(pid, signal.SIGKILL)
    lost.signal(signal.SIGKILL)
    killed_at = time.monotonic()
    wait_until(lambda: quotas(plans) == {"A": 4}, timeout_s=60,
               what="the lost host's share to move to A")  # fmt: skip
    moved_s = time.monotonic() - killed_at
    wait_until(lambda: {h: len(p) for h, p in consuming(client, keys).items()} == {"A": 4},
               timeout_s=60, what="four workers on A")  # fmt: skip
    print(f"the lost host's share moved {moved_s:.1f} s after the kill")
