"""Security rows: the ACL roles and their forbidden-command matrix, TLS, hostile
payloads, and secrets that must never be printed."""

from __future__ import annotations

from collections.abc import Sequence

import redis

from fleetscale.config import RedisSettings
from fleetscale.errors import FleetscaleError
from fleetscale.status import read_status
from fleetscale.store import connect
from tests.faults.cluster import Cluster, start_cluster
from tests.faults.load import Load, new_submitter
from tests.faults.rows import Outcome, RowEnv, judge, row, settle
from tests.faults.security import ROLES, acl_with_passwords, role_url
from tests.support.procs import wait_until

Command = tuple[str, ...]


def everyone_forbidden(f: str) -> list[Command]:
    """Commands no fleetscale role may run (server admin, other keys, arbitrary scripts,
    destroying the job stream or its group)."""
    jobs = f"fs:{{{f}}}:jobs"
    return [
        ("FLUSHALL",),
        ("FLUSHDB",),
        ("CONFIG", "GET", "*"),
        ("CONFIG", "SET", "appendonly", "no"),
        ("KEYS", "*"),
        ("SCAN", "0"),
        ("BGSAVE",),
        ("SHUTDOWN", "NOSAVE"),
        ("ACL", "SETUSER", "intruder", "on"),
        ("ACL", "LIST"),
        ("MODULE", "LIST"),
        ("CLIENT", "KILL", "TYPE", "normal"),
        ("REPLICAOF", "127.0.0.1", "1"),
        ("EVAL", "return 1", "0"),
        ("FUNCTION", "FLUSH"),
        ("SUBSCRIBE", "any"),
        ("GET", "other:key"),
        ("SET", "other:key", "1"),
        ("XGROUP", "DESTROY", jobs, "workers"),
        ("XGROUP", "SETID", jobs, "workers", "$"),
        ("DEL", jobs),
        ("SET", jobs, "x"),
        ("XDEL", jobs, "1-1"),
    ]


def role_forbidden(k: str) -> dict[str, list[Command]]:
    """Per role, what another role does but this one must not (`k`: the key prefix)."""
    jobs = k + "jobs"
    return {
        "producer": [
            ("XREADGROUP", "GROUP", "workers", "p", "STREAMS", jobs, ">"),
            ("XACK", jobs, "workers", "1-1"),
            ("XCLAIM", jobs, "workers", "p", "0", "1-1"),
            ("XAUTOCLAIM", jobs, "workers", "p", "0", "0"),
            ("XTRIM", jobs, "MAXLEN", "0"),
            ("XADD", k + "dlq", "*", "j", "x"),
            ("HSET", k + "worker:w", "pid", "1"),
            ("SET", k + "leader", "me"),
            ("SET", k + "plan", "{}"),
            ("SET", k + "policy", "{}"),
            ("ZREM", k + "delayed", "x"),
            ("INFO",),
            ("DEL", k + "dlq"),
        ],
        "worker": [
            ("XTRIM", jobs, "MAXLEN", "0"),
            ("SET", k + "leader", "me"),
            ("SET", k + "plan", "{}"),
            ("SET", k + "policy", "{}"),
            ("INCR", k + "fence"),
            ("DEL", k + "dlq"),
            ("XDEL", k + "dlq", "1-1"),
            ("HSET", k + "host:h", "quota", "99"),
            ("DEL", k + "delayed"),
            ("SET", k + "id:x", "1"),
            ("GET", k + "policy"),
            ("HSET", jobs, "a", "b"),
        ],
        "controller": [
            ("XREADGROUP", "GROUP", "workers", "c", "STREAMS", jobs, ">"),
            ("XACK", jobs, "workers", "1-1"),
            ("XCLAIM", jobs, "workers", "c", "0", "1-1"),
            ("XAUTOCLAIM", jobs, "workers", "c", "0", "0"),
            ("HSET", k + "worker:w", "pid", "1"),
            ("ZADD", k + "workers", "1", "w"),
            ("ZADD", k + "delayed", "1", "x"),
            ("SET", k + "id:x", "1"),
            ("XADD", k + "lost", "*", "entry_id", "1-1"),
            ("HINCRBY", k + "tm:1", "done", "1"),
            ("SET", k + "dlq", "x"),
            ("DEL", k + "policy"),
        ],
    }


def forbidden(role: str, f: str) -> list[Command]:
    """The forbidden-command matrix of one role (fleet `f`)."""
    return everyone_forbidden(f) + role_forbidden(f"fs:{{{f}}}:")[role]


def try_forbidden(url: str, commands: Sequence[Command]) -> tuple[int, list[str]]:
    """Run each command as the URL's user; return how many got NOPERM and the others."""
    client = redis.Redis.from_url(url, socket_timeout=5)
    refused, allowed = 0, []
    try:
        for command in commands:
            try:
                client.execute_command(*command)
            except redis.exceptions.NoPermissionError:
                refused += 1
                continue
            except redis.RedisError as exc:
                allowed.append(f"{' '.join(command)} → {type(exc).__name__}: {exc}")
                continue
            allowed.append(f"{' '.join(command)} was allowed")
    finally:
        client.close()
    return refused, allowed


@row(
    "security-acl",
    "security",
    "producer, workers and controller each run with their own ACL user only; every "
    "command of the forbidden matrix gets NOPERM; lost = 0",
)
def acl_roles(env: RowEnv) -> Outcome:
    """A fleet run with the shipped ACL file, then the forbidden matrix per role."""
    acl, passwords = acl_with_passwords(env.directory / "acl")
    cluster = start_cluster(env, redis_args=("--include", str(acl)))
    urls = {r: role_url(r, passwords[r], cluster.redis.port) for r in ROLES}
    bad: list[str] = []
    refused = 0
    for role in ROLES:
        n, allowed = try_forbidden(urls[role], forbidden(role, cluster.fleet))
        refused += n
        bad += [f"{role}: {line}" for line in allowed]
    roles_env = {"FLEETSCALE_REDIS_URL": urls["controller"],
                 "FLEETSCALE_WORKER_REDIS_URL": urls["worker"]}  # fmt: skip
    cluster.controller("A", "--capacity", "2", "--min", "2", "--max", "2", env=roles_env)
    run_as_producer(cluster, urls["producer"])
    bad += status_as(cluster, urls["controller"])
    verdict = settle(cluster)
    figure = f"{refused} forbidden commands refused for 3 roles"
    return judge(cluster, verdict, figure, bad)


def run_as_producer(cluster: Cluster, url: str) -> None:
    """Submit jobs as the producer user: idempotent ones, plain ones, delayed ones."""
    for explicit in (True, False):
        submitter = new_submitter(url, cluster.fleet, cluster.producer_ledger,
                                  explicit_ids=explicit)  # fmt: skip
        load = Load(submitter, prefix=f"k{int(explicit)}-", rate_per_s=200, total=100).start()
        wait_until(load.finished, timeout_s=60, what="the producer's jobs")
        submitter.submit("work", f"delayed-{int(explicit)}", delay_s=0.5)


def status_as(cluster: Cluster, url: str) -> list[str]:
    """`status` read with the controller's user, as a violation if refused."""
    client = connect(RedisSettings(url=url))
    try:
        read_status(client, cluster.keys, url)
    except FleetscaleError as exc:
        return [f"status as the controller user fails: {exc}"]
    finally:
        client.close()
    return []
