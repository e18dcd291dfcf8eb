"""A controller process: build the reconciler, install the signals, run until stopped.

The first SIGTERM (or Ctrl-C, or SIGHUP: a closed terminal) stops the loop: the lease
is handed over, local workers drain, the host unregisters. A second kills the workers
and exits at once (the jobs they held run again after --min-idle).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType

from fleetscale.config import RedisSettings
from fleetscale.controller.forkserver import fork_launcher
from fleetscale.controller.leader import Leadership, lease_id
from fleetscale.controller.policy import Policy
from fleetscale.controller.policystore import PolicyStore
from fleetscale.controller.reconciler import ControllerSettings, Reconciler, seed_policy
from fleetscale.controller.supervisor import (
    Supervisor,
    SupervisorSettings,
    exec_launcher,
    worker_command,
)
from fleetscale.errors import ConfigurationError, FleetscaleError, RedisUnavailable
from fleetscale.exitcode import ExitCode
from fleetscale.keys import FleetKeys
from fleetscale.metrics import PrometheusRecorder, Recorder
from fleetscale.stopsignals import handle_stop_signals
from fleetscale.store import connect, preflight, redis_errors

log = logging.getLogger("fleetscale.controller")


@dataclass(frozen=True, slots=True)
class ControllerOptions:
    """Everything `fleetscale controller` is given.

    Attributes:
        app_path: the workers' APP (`module:attr`).
        fleet: the fleet name (the App's).
        flags: the policy from the command line (seeds the fleet's policy).
        settings: the reconciler's settings.
        supervisor: the supervisor's settings.
        worker_args: extra `fleetscale worker` arguments, one word each.
        worker_redis_url: the Redis URL of the workers it starts (with the worker ACL
            user); None for the controller's own.
        metrics_port: serve Prometheus metrics here; None for none.
        strict: refuse to start on an unsafe Redis deployment.
        fork: start workers by forking a preloaded parent (else a fresh interpreter each).
    """

    app_path: str
    fleet: str
    flags: Policy
    settings: ControllerSettings
    supervisor: SupervisorSettings = field(default_factory=SupervisorSettings)
    worker_args: tuple[str, ...] = ()
    worker_redis_url: str | None = None
    metrics_port: int | None = None
    strict: bool = False
    fork: bool = True


def policy_differences(stored: Policy, flags: Policy) -> list[str]:
    """`key: stored (flags: value)` for every field where the two policies differ."""
    a, b = stored.to_dict(), flags.to_dict()
    return [f"{k}={a[k]} (flags: {b[k]})" for k in a if a[k] != b[k]]


def build_controller(options: ControllerOptions, redis: RedisSettings) -> Reconciler:
    """Connect, check Redis, settle the policy and build the reconciler.

    Raises:
        RedisUnavailable, RedisAuthError: Redis cannot be used.
        ConfigurationError: `strict` and the deployment is unsafe.
    """
    keys = FleetKeys(options.fleet)
    client = connect(redis)
    with redis_errors(redis.url):
        warnings = preflight(client).warnings
    for warning in warnings:
        log.warning("unsafe Redis deployment: %s", warning)
    if warnings and options.strict:
        raise ConfigurationError(f"refusing to start (--strict): {warnings[0]}")
    policy, differs = seed_policy(PolicyStore(client, keys, redis.url), options.flags)
    if differs:
        log.warning("fleet %r already has a policy (version %d) that differs from the flags; "
                    "using the stored one: %s", options.fleet, policy.version,
                    "; ".join(policy_differences(policy.policy, options.flags)))  # fmt: skip
    if policy.unknown:
        log.warning("%s", policy.unknown_note())
    recorder: Recorder | None = None
    if options.metrics_port is not None:
        prometheus = PrometheusRecorder(options.settings.host_id)
        try:
            prometheus.serve(options.metrics_port)
        except OSError as exc:
            raise ConfigurationError(
                f"cannot serve metrics on port {options.metrics_port} ({exc.strerror}); "
                "pick a free --metrics-port"
            ) from None
        recorder = prometheus
    run = worker_command(
        options.app_path,
        options.worker_redis_url or redis.url,
        options.settings.host_id,
        options.worker_args,
        url_source=(
            "the controller's --worker-redis-url / FLEETSCALE_WORKER_REDIS_URL"
            if options.worker_redis_url
            else "the controller's --redis-url / FLEETSCALE_REDIS_URL"
        ),
    )
    launcher = fork_launcher(run, wait_s=0) if options.fork else exec_launcher(run)
    candidate = lease_id(options.settings.host_id, standby=options.settings.dry_run)
    return Reconciler(
        client=client,
        keys=keys,
        url=redis.url,
        settings=options.settings,
        supervisor=Supervisor(launcher, options.supervisor),
        leadership=Leadership(client, keys, redis.url, candidate, options.settings.lease_ttl_s),
        policy=policy,
        recorder=recorder,
    )


def install_stop_signals(stop: threading.Event, abort: Callable[[], None]) -> None:
    """First stop signal (see `handle_stop_signals`): stop cleanly. Second: `abort` (it
    must only send signals), say so on stderr, exit now."""

    def on_stop(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            abort()
            os.write(2, b"fleetscale: a second stop signal: workers killed, exiting now\n")
            os._exit(ExitCode.FAILURE)
        stop.set()

    handle_stop_signals(on_stop)


def run_controller(options: ControllerOptions, redis: RedisSettings) -> ExitCode:
    """Run this host's controller until stopped; return the exit code."""
    try:
        reconciler = build_controller(options, redis)
    except RedisUnavailable as exc:
        log.error("%s", exc)
        return ExitCode.REDIS_UNREACHABLE
    except FleetscaleError as exc:
        log.error("%s", exc)
        return ExitCode.USAGE
    stop = threading.Event()
    install_stop_signals(stop, abort=reconciler.supervisor.kill_all)
    s = options.settings
    try:
        if not reconciler.claim_host(2 * s.host_ttl_s + s.tick_s, stop):
            return ExitCode.OK  # stopped while waiting for this host id
    except FleetscaleError as exc:
        log.error("%s", exc)
        return ExitCode.REDIS_UNREACHABLE if isinstance(exc, RedisUnavailable) else ExitCode.USAGE
    mode = "dry run (recommends only)" if s.dry_run else f"{options.supervisor.warm} warm"
    log.info("controller %s for fleet %r: capacity %d, %s", s.host_id, options.fleet,
             s.capacity, mode)  # fmt: skip
    reconciler.run(stop)
    return ExitCode.OK if reconciler.displaced is None else ExitCode.USAGE
