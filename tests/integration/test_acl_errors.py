"""An ACL user too narrow for fleetscale gets an access error that says so, in one line.

Redis reports a command or key refused inside a Lua script as a plain error ("The user
executing the script can't run this command…"), not as NOPERM: without a mapping it read
as "refused a command" with a script hash, and exited 1 like a bug. A refused command in a
pipeline was quoted whole by redis-py, a job's msgpack bytes and all.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from fleetscale import Producer
from fleetscale.cli import main
from fleetscale.embedded import EmbeddedRedis
from fleetscale.errors import RedisAuthError
from fleetscale.exitcode import ExitCode


def narrow_user_url(server: EmbeddedRedis, *rules: str) -> str:
    """Create ACL user `narrow` with password `pw` and `rules`; return its URL."""
    admin = Producer("admin", server.url).client
    admin.execute_command("ACL", "SETUSER", "narrow", "on", ">pw", *rules)
    return f"redis://narrow:pw@127.0.0.1:{server.port}/0"


@pytest.mark.parametrize(
    "rules",
    [("~*", "+@all", "-xadd"), ("~other:*", "+@all")],
    ids=["command-refused", "key-refused"],
)
@pytest.mark.parametrize("job_id", [None, "by-script"], ids=["pipelined", "scripted"])
def test_a_command_refused_by_the_acl_is_an_access_error_naming_the_acl(
    private_redis: EmbeddedRedis, fleet: str, rules: tuple[str, ...], job_id: str | None
) -> None:
    url = narrow_user_url(private_redis, *rules)
    with pytest.raises(RedisAuthError, match=r"refused access.*ACL") as caught:
        Producer(fleet, url).submit("noop", job_id=job_id)
    message = str(caught.value)
    assert ":pw@" not in message
    assert "pipeline" not in message and "noop" not in message, "the command is not quoted"

    args = ["submit", fleet, "noop", "--redis-url", url] + (["--job-id", job_id] if job_id else [])
    result = CliRunner().invoke(main, args)
    assert result.exit_code == ExitCode.USAGE, result.output
    assert "ACL" in result.output and "Traceback" not in result.output
