"""Live sets: members that stay live while they heartbeat (workers, hosts).

A heartbeat puts a member in a sorted set with its expiry time (Redis ms) as the score
and refreshes its info hash, which expires on its own; readers take members whose
expiry is in the future, so a killed process drops out after its TTL without anyone
deleting it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from fleetscale.errors import ConfigurationError
from fleetscale.keys import GROUP, FleetKeys
from fleetscale.store import Client, redis_errors, script


class MemberTaken(ConfigurationError):
    """Raised when a member id is live under another owner: two controllers were
    started with one host id.

    Attributes:
        member: the id both claim.
        owner: the live owner's id.
    """

    def __init__(self, member: str, owner: str, pid: str, hostname: str) -> None:
        super().__init__(
            f"host id {member!r} is in use by another live controller (pid {pid or '?'} on "
            f"{hostname or '?'}); give every host its own --host-id"
        )
        self.member = member
        self.owner = owner


@dataclass(frozen=True, slots=True)
class Member:
    """One live member as its last heartbeat describes it."""

    id: str
    fields: Mapping[str, str]

    @property
    def host(self) -> str:
        """The host the member runs on (its `host` field)."""
        return self.fields.get("host", "")

    def number(self, name: str) -> int | None:
        """The field `name` as a whole number, rounded down; None when it is missing,
        empty or not a number. Members of another fleetscale version may lack a field
        or write it another way (`2.5` CPUs): that reads as 2, not as a failure."""
        value = self.fields.get(name, "")
        try:
            return int(value)
        except ValueError:
            pass
        try:
            return math.floor(float(value))
        except (ValueError, OverflowError):  # '', 'x', 'nan', 'inf'
            return None

    def count(self, name: str) -> int:
        """The field `name` as `number` reads it, 0 when unknown (a count it lacks)."""
        return self.number(name) or 0


class LiveSet:
    """Members of one kind, registered by heartbeat (any thread).

    Args:
        members_key: the sorted set of member → expiry.
        info_key: the info hash key of a member.
    """

    def __init__(
        self, client: Client, url: str, members_key: str, info_key: Callable[[str], str]
    ) -> None:
        self.client = client
        self.url = url
        self.members_key = members_key
        self.info_key = info_key
        self._heartbeat = script(client, "heartbeat")
        self._unregister = script(client, "unregister")

    def heartbeat(
        self, member: str, ttl_s: float, info: Mapping[str, Any], *, owner: str = ""
    ) -> int:
        """Mark `member` live for `ttl_s` seconds with its info; return Redis ms.

        Args:
            owner: who registers it (a controller's lease id); empty for no check.

        Raises:
            MemberTaken: `member` is live under another owner (nothing was written).
        """
        args: list[Any] = [member, int(ttl_s * 1000), owner]
        for name, value in info.items():
            args += [name, str(value)]
        with redis_errors(self.url):
            reply = self._heartbeat(keys=[self.members_key, self.info_key(member)], args=args)
        if isinstance(reply, list):
            other, pid, hostname = (part.decode() for part in reply)
            raise MemberTaken(member, other, pid, hostname)
        return int(reply)

    def live(self) -> list[Member]:
        """Members whose heartbeat has not expired, with their info (two round trips)."""
        with redis_errors(self.url):
            now_s, _ = self.client.time()
            ids = cast(
                list[bytes], self.client.zrangebyscore(self.members_key, now_s * 1000, "+inf")
            )
            pipe = self.client.pipeline(transaction=False)
            for member in ids:
                pipe.hgetall(self.info_key(member.decode()))
            infos = pipe.execute()
        return [
            Member(m.decode(), {k.decode(): v.decode() for k, v in info.items()})
            for m, info in zip(ids, infos, strict=True)
            if info
        ]

    def remove(self, member: str, *, owner: str = "") -> None:
        """Drop a member now (a clean exit).

        Args:
            owner: who registered it (as given to `heartbeat`); a member another owner
                has registered since is left alone. Empty for no check.
        """
        with redis_errors(self.url):
            self._unregister(keys=[self.members_key, self.info_key(member)], args=[member, owner])


class Registry(LiveSet):
    """The live workers of one fleet."""

    def __init__(self, client: Client, keys: FleetKeys, url: str) -> None:
        super().__init__(client, url, keys.workers, keys.worker)
        self.keys = keys
        self._retire = script(client, "retire")

    def retire(self, worker_id: str) -> int | None:
        """Unregister an exiting worker; delete its consumer only if nothing is pending.

        Returns how many entries it still had pending (they will be reclaimed), or None
        when the consumer group is gone (Redis lost its data): nothing left to retire.
        """
        with redis_errors(self.url):
            pending = int(
                self._retire(
                    keys=[self.keys.jobs, self.keys.workers, self.keys.worker(worker_id)],
                    args=[GROUP, worker_id],
                )
            )
        return None if pending < 0 else pending
