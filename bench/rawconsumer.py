"""The raw redis-py consumer limit: XREADGROUP COUNT 256, one XACK per batch, no logic.

Run as a process: `python -m bench.rawconsumer URL STREAM GROUP NAME`; exits when a
read finds nothing for 0.5 s.
"""

from __future__ import annotations

import sys

import redis


def main(url: str, stream: str, group: str, name: str) -> None:
    client = redis.Redis.from_url(url)
    while True:
        reply = client.xreadgroup(group, name, {stream: ">"}, count=256, block=500)
        if not reply:
            return
        ids = [entry_id for entry_id, _ in reply[0][1]]
        client.xack(stream, group, *ids)


if __name__ == "__main__":
    main(*sys.argv[1:5])
