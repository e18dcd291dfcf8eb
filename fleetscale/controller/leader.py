"""The leader lease: one controller of a fleet decides, the others follow.

A candidate takes the lease with `SET NX PX` and keeps it by renewing before it
expires; each new leader gets a fresh fencing token (a counter in Redis), and every
plan it writes carries that token, so a leader that was paused past its lease and
wakes up late is refused (see `publish.lua`).

A dry-run controller is a standby candidate: it leads only while no real controller
does, and a real candidate takes the lease from it at once. A dry run writes no plan,
so a dry-run leader beside real controllers would freeze the fleet at its size.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from fleetscale.keys import FleetKeys
from fleetscale.store import Client, read_bytes, redis_errors, script


@dataclass(frozen=True, slots=True)
class Lease:
    """The outcome of one lease attempt.

    Attributes:
        leading: this candidate holds the lease.
        token: the current fencing token.
        holder: the lease id of the leader (this candidate's when leading).
        new_term: this attempt took the lease with a new token (not a renewal): even a
            candidate that led before may have had successors meanwhile (it was paused
            past its lease), so it must resume from the stored plan, not its own state.
    """

    leading: bool
    token: int
    holder: str | None
    new_term: bool = False


STANDBY_MARK = "dry-"
"""Starts the nonce of a standby candidate's lease id (`lead.lua` looks for it)."""


def lease_id(host_id: str, *, standby: bool = False) -> str:
    """A candidate id: the host id plus a per-process nonce, so that two controllers
    started with the same host id never both lead.

    Args:
        standby: a dry-run controller: it leads only while no real candidate does.
    """
    return f"{host_id}#{STANDBY_MARK if standby else ''}{secrets.token_hex(4)}"


def host_of(lease: str | None) -> str | None:
    """The host id inside a lease id."""
    return lease.rsplit("#", 1)[0] if lease else None


class Leadership:
    """Takes, renews and gives up the leader lease for one candidate."""

    def __init__(
        self, client: Client, keys: FleetKeys, url: str, candidate: str, ttl_s: float
    ) -> None:
        self.client = client
        self.keys = keys
        self.url = url
        self.candidate = candidate
        self.ttl_s = ttl_s
        self._lead = script(client, "lead")
        self._resign = script(client, "resign")

    def attempt(self) -> Lease:
        """Take the lease if free, renew it if held; one round trip."""
        with redis_errors(self.url):
            reply = self._lead(
                keys=[self.keys.leader, self.keys.fence],
                args=[self.candidate, int(self.ttl_s * 1000)],
            )
        if int(reply[0]):
            return Lease(True, int(reply[1]), self.candidate, new_term=len(reply) > 2)
        return Lease(False, int(reply[1]), reply[2].decode())

    def resign(self) -> None:
        """Release the lease if held (a clean shutdown hands over at once)."""
        with redis_errors(self.url):
            self._resign(keys=[self.keys.leader], args=[self.candidate])

    def current(self) -> str | None:
        """The lease id of the current leader, if any."""
        with redis_errors(self.url):
            value = read_bytes(self.client, self.keys.leader)
        return value.decode() if value else None
