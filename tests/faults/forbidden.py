"""The forbidden-command matrix of the ACL roles: what each fleetscale Redis user must
be refused (NOPERM), and a helper that tries it."""

from __future__ import annotations

from collections.abc import Sequence

import redis

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
