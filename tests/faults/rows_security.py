"""Security rows: the ACL roles and their forbidden-command matrix, TLS, hostile
payloads, and secrets that must never be printed."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

from fleetscale.config import RedisSettings
from fleetscale.embedded import free_port
from fleetscale.errors import FleetscaleError, SubmitError
from fleetscale.jobstream import JobStream
from fleetscale.keys import JOB_FIELD, FleetKeys
from fleetscale.producer import Producer
from fleetscale.status import read_status
from fleetscale.store import connect
from tests.faults.cluster import Cluster, first_log_s, key_of, start_cluster
from tests.faults.forbidden import forbidden, try_forbidden
from tests.faults.hostile import hostile_entries
from tests.faults.ledger import ACKNOWLEDGED, FAILED, SUBMITTED
from tests.faults.load import Load, Submitter, new_submitter
from tests.faults.rows import Outcome, RowEnv, judge, row, settle
from tests.faults.security import (
    ROLES,
    acl_with_passwords,
    make_certificates,
    role_url,
    tls_args,
    tls_url,
)
from tests.support.procs import REPO, wait_until


@row(
    "security-acl",
    "security",
    "producer, workers and controller each run with their own ACL user only; every "
    "command of the forbidden matrix gets NOPERM; lost = 0",
)
def acl_roles(env: RowEnv) -> Outcome:
    """A fleet run with the shipped ACL file, then the forbidden matrix per role."""
    acl, passwords = acl_with_passwords(env.directory / "acl")
    cluster = start_cluster(env, redis_args=("--aclfile", str(acl)))
    urls = {r: role_url(r, passwords[r], cluster.redis.port) for r in ROLES}
    bad: list[str] = []
    refused = 0
    for role in ROLES:
        n, allowed = try_forbidden(urls[role], forbidden(role, cluster.fleet))
        refused += n
        bad += [f"{role}: {line}" for line in allowed]
    roles_env = {"FLEETSCALE_REDIS_URL": urls["controller"],
                 "FLEETSCALE_WORKER_REDIS_URL": urls["worker"]}  # fmt: skip
    ctl = cluster.controller("A", "--capacity", "2", "--min", "2", "--max", "2", env=roles_env)
    run_as_producer(cluster, urls["producer"])
    bad += status_as(cluster, urls["controller"])
    bad += promote_as_controller(urls["producer"], urls["controller"])
    verdict = settle(cluster)
    # Every duty ran within its role's rights (the workers it forked log to its output).
    if any(first_log_s(ctl, refusal) is not None for refusal in ("refused access", "can't access")):
        bad.append(f"the controller or a worker was refused a command it needs: {ctl.log_path}")
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


def promote_as_controller(producer_url: str, controller_url: str) -> list[str]:
    """A due delayed job of a fleet with no worker, promoted by the controller's user (a
    violation if refused). The leader promotes so that a fleet scaled to zero gets its
    delayed jobs; with workers running they usually promote first, so this checks the
    right directly."""
    fleet = "acl-promote"
    Producer(fleet, producer_url).submit("work", ("promoted",), delay_s=0.05)
    client = connect(RedisSettings(url=controller_url))
    stream = JobStream(client, FleetKeys(fleet), controller_url)
    try:
        wait_until(lambda: stream.promote_due() == 1, timeout_s=5, every_s=0.02,
                   what="the controller user to promote the due job")  # fmt: skip
    except FleetscaleError as exc:
        return [f"the controller user cannot promote a due delayed job: {exc}"]
    except AssertionError as exc:
        return [str(exc)]
    finally:
        client.close()
    return []


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


@row(
    "security-tls",
    "security",
    "rediss:// trusting the test CA runs producer, controller and workers (lost = 0); a "
    "plaintext client and one trusting another CA are refused and their jobs never run",
    needs=("openssl",),
)
def tls(env: RowEnv) -> Outcome:
    """A Redis with a TLS port and certificates generated for this run."""
    certs = make_certificates(env.directory / "tls")
    port = free_port()
    cluster = start_cluster(env, redis_args=tls_args(certs, port))
    good = tls_url(port, certs.ca)
    bad, notes = [], []
    refusing = {
        "plaintext": f"redis://127.0.0.1:{port}/0",
        "wrong CA": tls_url(port, certs.wrong_ca),
    }
    for name, url in refusing.items():
        submitter = new_submitter(url, cluster.fleet, cluster.producer_ledger)
        outcome = submitter.submit("work", f"refused-{name.replace(' ', '-')}")
        if outcome == ACKNOWLEDGED:
            bad.append(f"a {name} client was accepted")
        notes += [f"{name}: {e.replace(str(env.directory), '<row dir>')}" for e in submitter.errors]
    cluster.controller("A", "--capacity", "1", "--min", "1", "--max", "1",
                       env={"FLEETSCALE_REDIS_URL": good})  # fmt: skip
    cluster.worker(url=good)
    load = Load(new_submitter(good, cluster.fleet, cluster.producer_ledger), prefix="k",
                rate_per_s=200, total=200).start()  # fmt: skip
    wait_until(load.finished, timeout_s=60, what="the jobs over TLS")
    verdict = settle(cluster)
    figure = f"{load.outcomes.get(ACKNOWLEDGED, 0)} jobs over TLS; plaintext and wrong CA refused"
    return judge(cluster, verdict, figure, bad, notes=notes)


def letters_by_entry(cluster: Cluster) -> dict[bytes, str]:
    """Reason of each dead letter, by the stream entry it came from."""
    return {
        f[b"entry_id"]: f[b"reason"].decode()
        for _, f in cluster.client.xrange(cluster.keys.dlq, count=10_000)
    }


@row(
    "security-hostile",
    "security",
    "hostile entries (pickle, import paths, 10 MB, deep nesting, bad UTF-8, missing or "
    "mistyped fields, a reused job id with another payload) never run and are each "
    "dead-lettered with their reason (or refused at submit); lost = 0",
)
def hostile_payloads(env: RowEnv) -> Outcome:
    """A hostile writer's raw entries and misuses of the producer, among normal jobs."""
    canary = env.directory / "canary"
    cluster = start_cluster(env)
    submitter = cluster.submitter(explicit_ids=True)
    submitter.submit("work", "plain-0")
    entries = hostile_entries(canary)
    added = {}
    for name, (fields, _) in entries.items():
        added[name] = cluster.client.xadd(cluster.keys.jobs, fields)
        key = key_of(fields.get(JOB_FIELD, b""))
        if key is not None:  # Redis accepted it: the checker must find it run or dead
            cluster.producer_ledger.note(SUBMITTED, key)
            cluster.producer_ledger.note(ACKNOWLEDGED, key)
    submitter.submit("work", "too-big", (0.0, "x" * 10 * 2**20))
    submitter.submit("work", "reuse-a", ())
    cluster.producer_ledger.note(SUBMITTED, "reuse-b")
    reused = reuse_job_id(submitter, "reuse-a", "reuse-b")
    cluster.worker()
    verdict = settle(cluster)
    reasons = letters_by_entry(cluster)
    bad = [reused] if reused else []
    for name, (_, expected) in entries.items():
        reason = reasons.get(added[name])
        if reason is None or expected not in reason:
            bad.append(f"{name}: dead letter reason {reason!r}, expected {expected!r}")
    bad += ["the canary exists: a hostile payload ran"] if canary.exists() else []
    bad += [f"{verdict.failed} producer refusals, expected 2"] if verdict.failed != 2 else []
    figure = f"{len(entries)} hostile entries dead-lettered, 2 refused at submit, none ran"
    return judge(cluster, verdict, figure, bad)


def reuse_job_id(submitter: Submitter, first: str, second: str) -> str | None:
    """Submit job `second` with the job id of `first`; the producer must refuse it
    (noted `failed`), not report it submitted. Returns a violation or None."""
    ledger = submitter.ledger
    try:
        submitter.producer.submit("work", (second,), job_id=first)
    except SubmitError as exc:
        ledger.note(FAILED, second, str(exc))
        return None
    ledger.note(ACKNOWLEDGED, second)
    return f"a job id reused with another payload ({second}) was accepted"


def cli(env: dict[str, str], *args: str) -> tuple[int, str]:
    """Run `python -m fleetscale ARGS`; return its exit code and everything it printed."""
    done = subprocess.run(
        [sys.executable, "-m", "fleetscale", *args],
        cwd=REPO, env={**os.environ, **env}, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    return done.returncode, done.stdout + done.stderr


def leaks(text: str, secrets_: Sequence[str]) -> bool:
    """Whether any form of the secret appears in `text`."""
    return any(s in text for s in secrets_)


@row(
    "security-secrets",
    "security",
    "a password in the Redis URL never appears in logs, status, CLI output, errors or "
    "process arguments, whether Redis works, refuses it or is down, or the URL is "
    "malformed; lost = 0",
)
def secrets_never_printed(env: RowEnv) -> Outcome:
    """A fleet on a password-protected Redis; outputs of every kind searched for it."""
    halves = (secrets.token_hex(6), secrets.token_hex(6))
    password = f"{halves[0]}$#{halves[1]}"  # a '#' must be percent-encoded in a URL
    encoded = quote(password, safe="")
    forms = (password, encoded, *halves)
    user = ("--user", "fleet", "on", f">{password}", "~*", "&*", "+@all")
    cluster = start_cluster(env, redis_args=user)
    port = cluster.redis.port
    good = f"redis://fleet:{encoded}@127.0.0.1:{port}/0"
    wrong = f"redis://fleet:{quote('wrong-' + password, safe='')}@127.0.0.1:{port}/0"
    down = f"redis://fleet:{encoded}@127.0.0.1:{free_port()}/0"
    unencoded = f"redis://fleet:{password}@127.0.0.1:{port}/0"
    controller = cluster.controller("A", "--capacity", "1", "--min", "1", "--max", "1",
                                    env={"FLEETSCALE_REDIS_URL": good})  # fmt: skip
    worker = cluster.worker(url=good)
    load = Load(new_submitter(good, cluster.fleet, cluster.producer_ledger), prefix="k",
                rate_per_s=200, total=100).start()  # fmt: skip
    wait_until(load.finished, timeout_s=60, what="the jobs")
    outputs = cli_outputs(cluster, good, wrong, down)
    outputs += [(f"{what}, password not percent-encoded",
                 cli({"FLEETSCALE_REDIS_URL": unencoded}, *args)[1])
                for what, args in (("status", ("status", cluster.fleet)),
                                   ("worker", ("worker", "tests.faults.app:app")))]  # fmt: skip
    outputs += [(f"process {p.pid} arguments", cmdline(p.pid)) for p in (controller, worker)]
    outputs += [(f"error of {kind}", producer_error(cluster.fleet, url))
                for kind, url in (("wrong password", wrong), ("Redis down", down))]  # fmt: skip
    verdict = settle(cluster)
    outputs += [(p.log_path.name, p.output()) for p in env.procs.started]
    bad = [f"the password appears in {where}" for where, text in outputs if leaks(text, forms)]
    if not any("fleet:***@" in text for _, text in outputs):
        bad.append("no output shows the redacted URL: the search saw nothing to check")
    figure = f"{len(outputs)} outputs searched, {len(bad)} with the password"
    return judge(cluster, verdict, figure, bad)


def cli_outputs(cluster: Cluster, good: str, wrong: str, down: str) -> list[tuple[str, str]]:
    """What the operator commands print with a working, a refused and a dead URL (the
    jobs `submit` sends are noted in the ledger)."""
    fleet = cluster.fleet
    runs = [
        ("status --json", good, ("status", fleet, "--json")),
        ("explain", good, ("explain", fleet)),
        ("dlq list", good, ("dlq", fleet, "list", "--json")),
        ("policy show", good, ("policy", fleet, "show")),
        ("submit", good, ("submit", fleet, "work", "--args", '["cli-0"]')),
        ("status, wrong password", wrong, ("status", fleet)),
        ("submit, wrong password", wrong, ("submit", fleet, "work", "--args", '["cli-1"]')),
        ("status, Redis down", down, ("status", fleet)),
        ("worker, wrong password", wrong, ("worker", "tests.faults.app:app", "--burst")),
    ]
    outputs = []
    for name, url, args in runs:
        key = json.loads(args[-1])[0] if args[0] == "submit" else None
        if key:
            cluster.producer_ledger.note(SUBMITTED, key)
        code, text = cli({"FLEETSCALE_REDIS_URL": url}, *args)
        if key:
            cluster.producer_ledger.note(ACKNOWLEDGED if code == 0 else FAILED, key)
        outputs.append((name, text))
    return outputs


def cmdline(pid: int) -> str:
    """A process's arguments and environment-free command line."""
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def producer_error(fleet: str, url: str) -> str:
    """The error a producer raises on `url`, as the library reports it."""
    try:
        Producer(fleet, url).submit("work", ("never",))
    except FleetscaleError as exc:
        return str(exc)
    return ""
