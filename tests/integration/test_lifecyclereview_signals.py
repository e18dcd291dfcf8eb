"""Worker process lifecycle under a controller: signals, fork server, exit codes."""

from __future__ import annotations

import os
import signal

import pytest

from fleetscale.keys import FleetKeys
from fleetscale.producer import Producer
from fleetscale.store import Client
from tests.support.fleet import LedgerFleet, alive, controller, host_fields
from tests.support.ledger import read_ledger
from tests.support.procs import wait_until


def started(fleet: LedgerFleet, key: str) -> bool:
    return any(e.kind == "start" and e.key == key for e in read_ledger(fleet.ledger))


def finished(fleet: LedgerFleet, key: str) -> bool:
    return any(e.kind == "done" and e.key == key for e in read_ledger(fleet.ledger))


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("spawn", "signum"),
    [
        ("fork", signal.SIGINT),
        ("exec", signal.SIGINT),
        ("fork", signal.SIGHUP),
        ("fork", signal.SIGTERM),
        ("exec", signal.SIGTERM),
    ],
)
def test_a_stop_signal_to_the_controllers_whole_process_group_drains_its_workers(
    ledger_fleet: LedgerFleet, client: Client, keys: FleetKeys, spawn: str, signum: int
) -> None:
    """Ctrl-C (SIGINT) or a closed terminal (SIGHUP) signals the whole foreground
    process group: the controller, its fork server and its workers; so does a SIGTERM
    from systemd's default KillMode (control-group), `timeout` or `kill -- -PGID`. The
    controller drains the workers; a worker must not take the group's signal as its
    first stop signal and its controller's drain as a second one (ending it mid-job),
    nor die of its SIGHUP; the fork server must not die before its workers drained
    (its death is a stop signal to them)."""
    proc = controller(ledger_fleet, "A", "--min", "1", "--max", "1", "--warm", "0",
                      "--spawn", spawn)  # fmt: skip
    wait_until(lambda: host_fields(client, keys, "A").get("ready") == "1", timeout_s=60,
               what="a ready worker")  # fmt: skip
    Producer(ledger_fleet.fleet, ledger_fleet.redis_url).submit("record", args=("slow", 2.0))
    wait_until(lambda: started(ledger_fleet, "slow"), timeout_s=30, what="the job to start")
    os.killpg(proc.pid, signum)  # what the terminal does
    assert proc.wait(timeout_s=60) == 0, proc.output()
    assert finished(ledger_fleet, "slow"), proc.output()
    assert "aborted" not in proc.output()
    assert "controller A stopped" in proc.output().splitlines()[-1], "its last line says so"


def fork_server_of(controller_pid: int) -> int:
    """The pid of the controller's fork server (its child running `--zygote`)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                argv = cmdline.read().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == controller_pid and b"--zygote" in argv:
            return int(entry)
    raise AssertionError(f"controller {controller_pid} has no fork server")


def running_worker_pids(client: Client, keys: FleetKeys) -> set[int]:
    """Pids of the registered workers that are consuming (not warm, not draining)."""
    pids = set()
    for member in client.zrange(keys.workers, 0, -1):
        fields = client.hgetall(keys.worker(member.decode()))
        if fields.get(b"state") == b"running":
            pids.add(int(fields[b"pid"]))
    return pids


@pytest.mark.timeout(180)
def test_a_dead_fork_server_is_replaced_at_once_and_its_draining_workers_are_no_failed_starts(
    ledger_fleet: LedgerFleet, client: Client, keys: FleetKeys
) -> None:
    """Workers forked by the fork server die with it (they drain: a parent-death
    SIGTERM). Their jobs finish; replacements start while they drain, from a new fork
    server; none of that counts as a failed start (no back-off), and the log says what
    happened."""
    proc = controller(ledger_fleet, "A", "--min", "2", "--max", "2", "--warm", "1",
                      "--capacity", "6")  # fmt: skip
    old = wait_until(lambda: len(p := running_worker_pids(client, keys)) == 2 and p,
                     timeout_s=60, what="two consuming workers")  # fmt: skip
    producer = Producer(ledger_fleet.fleet, ledger_fleet.redis_url)
    for key in ("long-1", "long-2"):
        producer.submit("record", args=(key, 20.0))
    wait_until(lambda: started(ledger_fleet, "long-1") and started(ledger_fleet, "long-2"),
               timeout_s=30, what="both jobs to start")  # fmt: skip
    os.kill(fork_server_of(proc.pid), signal.SIGKILL)
    wait_until(lambda: len(running_worker_pids(client, keys) - old) == 2, timeout_s=60,
               what="two new consuming workers")  # fmt: skip
    assert not finished(ledger_fleet, "long-1"), "replaced only after the old ones drained"
    wait_until(lambda: finished(ledger_fleet, "long-1") and finished(ledger_fleet, "long-2"),
               timeout_s=60, what="the jobs the old workers held")  # fmt: skip
    assert host_fields(client, keys, "A")["spawn_failures"] == "0", proc.output()
    assert "fork server" in proc.output() and "failed to start" not in proc.output()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("spawn", ["fork", "exec"])
def test_a_second_stop_signal_to_the_controller_ends_its_draining_workers_at_once(
    ledger_fleet: LedgerFleet, client: Client, keys: FleetKeys, spawn: str
) -> None:
    """The first signal drains the workers; the second is "stop now": the controller
    kills them and exits (the job runs again after --min-idle), rather than leaving
    them to finish a long job on their own."""
    proc = controller(ledger_fleet, "A", "--min", "1", "--max", "1", "--warm", "0",
                      "--spawn", spawn)  # fmt: skip
    (pid,) = wait_until(lambda: running_worker_pids(client, keys), timeout_s=60,
                        what="a consuming worker")  # fmt: skip
    Producer(ledger_fleet.fleet, ledger_fleet.redis_url).submit("record", args=("long", 60.0))
    wait_until(lambda: started(ledger_fleet, "long"), timeout_s=30, what="the job to start")
    os.kill(proc.pid, signal.SIGTERM)
    wait_until(lambda: pid not in running_worker_pids(client, keys), timeout_s=30,
               what="the worker to drain")  # fmt: skip
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout_s=30) == 1, proc.output()
    assert "second stop signal: workers killed" in proc.output()
    wait_until(lambda: not alive(pid), timeout_s=30, what="the worker to be gone")
    assert not finished(ledger_fleet, "long"), proc.output()
