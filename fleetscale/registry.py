"""The live-worker registry: heartbeats in, live workers out.

A worker's heartbeat puts it in `fs:{F}:workers` with its expiry time as the score and
refreshes its info hash (which expires on its own); readers count members whose expiry
is in the future, so a killed worker drops out after its TTL without anyone deleting it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from fleetscale.keys import GROUP, FleetKeys
from fleetscale.store import Client, redis_errors, script


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """One live worker as its heartbeat describes it."""

    worker_id: str
    fields: Mapping[str, str]

    @property
    def host(self) -> str:
        """The host the worker runs on."""
        return self.fields.get("host", "")


class Registry:
    """Registers workers of one fleet and lists the live ones (any thread)."""

    def __init__(self, client: Client, keys: FleetKeys, url: str) -> None:
        self.client = client
        self.keys = keys
        self.url = url
        self._heartbeat = script(client, "heartbeat")
        self._retire = script(client, "retire")

    def heartbeat(self, worker_id: str, ttl_s: float, info: Mapping[str, Any]) -> int:
        """Mark `worker_id` live for `ttl_s` seconds with its info; return Redis ms."""
        args: list[Any] = [worker_id, int(ttl_s * 1000)]
        for name, value in info.items():
            args += [name, str(value)]
        with redis_errors(self.url):
            return int(
                self._heartbeat(keys=[self.keys.workers, self.keys.worker(worker_id)], args=args)
            )

    def retire(self, worker_id: str) -> int:
        """Unregister an exiting worker; delete its consumer only if nothing is pending.

        Returns how many entries it still had pending (they will be reclaimed).
        """
        with redis_errors(self.url):
            return int(
                self._retire(
                    keys=[self.keys.jobs, self.keys.workers, self.keys.worker(worker_id)],
                    args=[GROUP, worker_id],
                )
            )

    def live(self) -> list[WorkerInfo]:
        """Workers whose heartbeat has not expired, with their info."""
        with redis_errors(self.url):
            now_s, _ = self.client.time()
            ids = cast(
                list[bytes], self.client.zrangebyscore(self.keys.workers, now_s * 1000, "+inf")
            )
            pipe = self.client.pipeline(transaction=False)
            for worker_id in ids:
                pipe.hgetall(self.keys.worker(worker_id.decode()))
            infos = pipe.execute()
        return [
            WorkerInfo(w.decode(), {k.decode(): v.decode() for k, v in info.items()})
            for w, info in zip(ids, infos, strict=True)
            if info
        ]
