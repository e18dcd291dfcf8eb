"""`fleetscale status --watch` while Redis goes away and comes back."""

from __future__ import annotations

import signal

from fleetscale.embedded import EmbeddedRedis
from fleetscale.exitcode import ExitCode
from fleetscale.producer import Producer
from tests.support.procs import Processes, wait_until


def test_a_watch_says_once_that_redis_went_away_and_carries_on_when_it_is_back(
    procs: Processes, private_redis: EmbeddedRedis
) -> None:
    Producer("watched", private_redis.url).submit("job")
    watch = procs.fleetscale(
        "status", "watched", "--watch", "--json", "--interval", "100ms",
        "--redis-url", private_redis.url,
    )  # fmt: skip

    def objects() -> int:
        return watch.output().count('{"fleet": "watched"')

    wait_until(lambda: objects() >= 2, what="two refreshes")
    private_redis.kill()
    wait_until(lambda: "retrying every 100ms" in watch.output(), what="the outage line")
    assert watch.alive(), watch.output()
    seen = objects()
    private_redis.start()
    wait_until(lambda: objects() >= seen + 2, timeout_s=30, what="refreshes once Redis is back")
    output = watch.output()
    assert output.count("retrying every") == 1, f"one line per outage:\n{output}"
    assert "unreachable" in output and "Traceback" not in output
    watch.signal(signal.SIGINT)
    assert watch.wait(timeout_s=10) == ExitCode.OK, watch.output()
