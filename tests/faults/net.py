"""Hosts in network namespaces, linked to this machine by a veth pair, whose link to
Redis the nemesis can cut or make lossy with iptables (inside the namespace only, so
nothing else on the machine is touched).

Needs root, `ip` and `iptables`. Names and addresses derive from this process's pid
and a counter, so concurrent runs do not collide; `delete()` removes everything.
"""

from __future__ import annotations

import itertools
import os
import subprocess
from dataclasses import dataclass

_SERIAL = itertools.count()


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=30)


@dataclass
class NetnsHost:
    """One host: a network namespace with a veth link to the root namespace.

    Attributes:
        name: the namespace's name.
        host_ip: this machine's address on the link (Redis listens on it).
        ns_ip: the namespace's own address.
    """

    name: str
    host_ip: str
    ns_ip: str

    @property
    def veth(self) -> str:
        """The root-side end of the veth pair."""
        return f"{self.name}h"

    @property
    def prefix(self) -> list[str]:
        """Command prefix that runs a program inside the namespace."""
        return ["ip", "netns", "exec", self.name]

    def iptables(self, *rule: str) -> None:
        """Run an iptables command inside the namespace."""
        _run(*self.prefix, "iptables", *rule)

    def cut(self) -> None:
        """Drop every packet between the host and this machine (a partition)."""
        self.heal()
        self.iptables("-A", "OUTPUT", "-d", self.host_ip, "-j", "DROP")
        self.iptables("-A", "INPUT", "-s", self.host_ip, "-j", "DROP")

    def lossy(self, probability: float) -> None:
        """Drop each packet, either way, with `probability` (a flaky link)."""
        self.heal()
        loss = ("-m", "statistic", "--mode", "random", "--probability", f"{probability:.3f}")
        self.iptables("-A", "OUTPUT", "-d", self.host_ip, *loss, "-j", "DROP")
        self.iptables("-A", "INPUT", "-s", self.host_ip, *loss, "-j", "DROP")

    def heal(self) -> None:
        """Remove every rule: the link works again."""
        self.iptables("-F")

    def delete(self) -> None:
        """Remove the namespace and the link (errors ignored: they may be gone)."""
        for argv in (("ip", "netns", "del", self.name), ("ip", "link", "del", self.veth)):
            subprocess.run(argv, capture_output=True, timeout=30, check=False)


def create_host() -> NetnsHost:
    """Create a namespace and its veth link, both ends up; return the host."""
    serial = next(_SERIAL)
    tag = f"{os.getpid() % 100_000}{serial}"
    subnet = f"10.{200 + serial % 50}.{os.getpid() % 250}"
    host = NetnsHost(name=f"fs{tag}", host_ip=f"{subnet}.1", ns_ip=f"{subnet}.2")
    try:
        _run("ip", "netns", "add", host.name)
        _run("ip", "link", "add", host.veth, "type", "veth", "peer", "name", f"{host.name}n")
        _run("ip", "link", "set", f"{host.name}n", "netns", host.name)
        _run("ip", "addr", "add", f"{host.host_ip}/30", "dev", host.veth)
        _run("ip", "link", "set", host.veth, "up")
        _run(*host.prefix, "ip", "addr", "add", f"{host.ns_ip}/30", "dev", f"{host.name}n")
        _run(*host.prefix, "ip", "link", "set", f"{host.name}n", "up")
        _run(*host.prefix, "ip", "link", "set", "lo", "up")
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
        host.delete()
        raise
    return host
