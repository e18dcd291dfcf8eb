"""A worker process: wire the consumer, the housekeeper and the signals, then run.

Signal handlers only set flags: the first SIGTERM (or SIGINT, or SIGHUP) drains —
stop reading, finish and ack what is held, flush telemetry, unregister, exit 0 — and a
second exits at once. SIGUSR2 (`DRAIN_SIGNAL`, how a controller stops its workers) drains however
often it comes. Redis unreachable at start exits with `ExitCode.REDIS_UNREACHABLE`; once
running, the worker rides out Redis outages with capped, jittered backoff.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from types import FrameType

from fleetscale.app import App
from fleetscale.clock import RedisTimeEstimate
from fleetscale.config import RedisSettings, WorkerSettings
from fleetscale.errors import ConfigurationError, FleetscaleError
from fleetscale.exitcode import ExitCode
from fleetscale.jobstream import JobStream
from fleetscale.keys import FleetKeys
from fleetscale.registry import Registry
from fleetscale.stopsignals import handle_stop_signals
from fleetscale.store import connect, preflight, redis_errors, redis_time_s
from fleetscale.telemetry import TelemetryBuffer, TelemetryFlusher
from fleetscale.worker.consumer import Consumer
from fleetscale.worker.housekeeper import Housekeeper
from fleetscale.worker.lifeline import DRAIN_SIGNAL, Lifeline
from fleetscale.worker.watchdog import Watchdog, in_main_thread

log = logging.getLogger("fleetscale.worker")


def new_worker_id(host: str) -> str:
    """A consumer name unique across hosts and restarts: `host:pid:random`."""
    return f"{host}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass(frozen=True, slots=True)
class WorkerParts:
    """Everything one worker process runs, built and connected."""

    consumer: Consumer
    housekeeper: Housekeeper


def build_worker(
    app: App,
    redis: RedisSettings,
    settings: WorkerSettings,
    *,
    host: str | None = None,
    extra_info: Mapping[str, str] | None = None,
    watchdog: Watchdog | None = None,
) -> WorkerParts:
    """Connect, check the deployment, create the group and build the worker's parts.

    Args:
        host: the host name the worker reports (a controller's host id; default the
            machine's hostname).

    Task time limits are enforced only with a `watchdog` (see `run_worker`).

    Raises:
        RedisUnavailable, RedisAuthError: Redis cannot be used.
        ConfigurationError: `settings.strict` and the deployment is unsafe.
    """
    settings.validate()
    keys = FleetKeys(app.fleet)
    host = host or socket.gethostname()
    worker_id = new_worker_id(host)
    main_client = connect(redis, block_s=settings.block_ms / 1000)
    side_client = connect(redis)
    stream = JobStream(main_client, keys, redis.url)
    with redis_errors(redis.url):
        report = preflight(side_client)
    _report_preflight(report.warnings, settings.strict)
    stream.ensure_group()
    clock = RedisTimeEstimate()
    with redis_errors(redis.url):
        for _ in range(3):
            clock.calibrate(lambda: redis_time_s(side_client))
    buffer = TelemetryBuffer() if settings.telemetry else None
    consumer = Consumer(
        app=app,
        stream=stream,
        worker_id=worker_id,
        settings=settings,
        clock=clock,
        buffer=buffer,
        watchdog=watchdog,
    )
    side_stream = JobStream(side_client, keys, redis.url)
    flusher = TelemetryFlusher(side_client, keys, worker_id, redis.url) if buffer else None
    info = {"host": host, "pid": os.getpid(), **(extra_info or {})}
    housekeeper = Housekeeper(
        consumer=consumer,
        stream=side_stream,
        registry=Registry(side_client, keys, redis.url),
        flusher=flusher,
        buffer=buffer,
        clock=clock,
        watchdog=watchdog,
        settings=settings,
        info=info,
    )
    return WorkerParts(consumer, housekeeper)


def _report_preflight(warnings: tuple[str, ...], strict: bool) -> None:
    for warning in warnings:
        log.warning("unsafe Redis deployment: %s", warning)
    if warnings and strict:
        raise ConfigurationError(
            f"refusing to start (--strict): {warnings[0]}"
            + (f" (and {len(warnings) - 1} more)" if len(warnings) > 1 else "")
        )


def install_signal_handlers(
    consumer: Consumer, go: threading.Event, lifeline: Lifeline | None = None
) -> None:
    """First SIGTERM drains; a second exits at once; SIGUSR1 wakes a warm worker (main
    thread only). SIGINT and SIGHUP (a closed terminal) too, unless a controller started
    the worker (see `Lifeline.die_with_parent`) or they were ignored when it started
    (`nohup`, a background job of a script): they then stay ignored. A drain is reported
    on the lifeline (`stopping`), so the controller replaces a worker that drains on its
    own at once.

    Neither a drain the worker started on its own (its controller died) nor one its
    controller asked for (`DRAIN_SIGNAL`) is a first stop signal: the kernel's
    parent-death SIGTERM may be handled after the first, and a SIGTERM sent to the
    whole process group (systemd's default KillMode, `timeout`, `kill -- -PGID`)
    reaches the worker beside its controller's request.
    """
    line = lifeline or Lifeline()
    signalled = False

    def on_stop(signum: int, frame: FrameType | None) -> None:
        nonlocal signalled
        if signalled:
            os._exit(ExitCode.FAILURE)
        signalled = True
        on_drain(signum, frame)

    def on_drain(signum: int, frame: FrameType | None) -> None:
        drain(consumer, line)
        go.set()

    def on_go(signum: int, frame: FrameType | None) -> None:
        go.set()

    # A controller's workers leave Ctrl-C and a closed terminal to the controller.
    handle_stop_signals(on_stop, terminal=line.parent_pid is None)
    signal.signal(DRAIN_SIGNAL, on_drain)
    signal.signal(signal.SIGUSR1, on_go)


def drain(consumer: Consumer, lifeline: Lifeline) -> None:
    """Stop taking jobs (finish and ack what is held), and tell the controller."""
    consumer.drain()
    lifeline.reached("stopping")


def wait_warm(parts: WorkerParts, go: threading.Event, lifeline: Lifeline) -> None:
    """Stay imported, connected and registered, but take no job, until SIGUSR1."""
    parts.housekeeper.warm = True
    lifeline.reached("warm")
    while not go.wait(0.5):
        if not lifeline.parent_alive():
            drain(parts.consumer, lifeline)
            return
    parts.housekeeper.warm = False


def run_worker(
    app: App,
    redis: RedisSettings,
    settings: WorkerSettings,
    *,
    warm: bool = False,
    lifeline: Lifeline | None = None,
) -> ExitCode:
    """Run a worker until drained (or, in burst mode, until the stream is empty).

    Args:
        warm: start as a warm spare: get ready, then wait for SIGUSR1 to consume.
        lifeline: the link to a controller that started this worker, if any.

    Returns the process exit code.

    Raises:
        FleetscaleError: the worker could not start (Redis unreachable, refused
            credentials, an unsafe deployment with `strict`); reported on the lifeline too.
    """
    lifeline = lifeline or Lifeline()
    lifeline.die_with_parent()
    watchdog = None
    if in_main_thread():
        watchdog = Watchdog(threading.get_ident(), hard_exit=True, exit_code=ExitCode.FAILURE)
        watchdog.install()
    extra_info = {"controller": str(lifeline.parent_pid)} if lifeline.parent_pid else {}
    try:
        parts = build_worker(
            app, redis, settings, host=lifeline.host_id, extra_info=extra_info, watchdog=watchdog
        )
    except FleetscaleError as exc:
        lifeline.report(f"error {exc}")
        raise
    go = threading.Event()
    if in_main_thread():
        install_signal_handlers(parts.consumer, go, lifeline)
    parts.housekeeper.lifeline = lifeline
    parts.housekeeper.start()
    if warm:
        wait_warm(parts, go, lifeline)
    if not parts.consumer.draining:
        lifeline.reached("ready")
        log.info("worker %s consuming fleet %r", parts.consumer.worker_id, app.fleet)
    try:
        parts.consumer.run()
    finally:
        parts.housekeeper.stop()
    stats = parts.consumer.stats
    log.info("worker %s done: %d ok, %d failed, %d dead-lettered, %d lost",
             parts.consumer.worker_id, stats.done, stats.failed, stats.dead,
             stats.lost)  # fmt: skip
    return ExitCode.OK
