"""Hosts of their own on one machine: Linux network namespaces on a bridge (tests of nodes on other hosts).

A :class:`Lan` is a bridge on this host with an address of its own (``.1``: where this host, the edge
and the phones are) and one network namespace per simulated host (``.2``, ``.3``, ...), each with its
own loopback and one interface on the bridge — and no default route, as a host on an isolated LAN:
it reaches this host and the other hosts on the bridge, nothing beyond. A process started with
:func:`entering` as its ``preexec_fn`` (or by :func:`call_in`, for one blocking call of ours) lives in
the namespace's network: its 127.0.0.1 is its own, as on another machine.

Needs root (``ip netns``, ``ip link``). Names are short (an interface name is at most 15 bytes).
"""

from __future__ import annotations

import ctypes
import ipaddress
import os
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")
NETNS_DIR = "/run/netns"
CLONE_NEWNET = 0x40000000  # <sched.h>; os.setns only exists from Python 3.12


class NetnsError(RuntimeError):
    """A namespace or link could not be made (not root, no ``ip``); the message says which command failed."""


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {result.stderr.strip()}")


def entering(name: str) -> Callable[[], None]:
    """A ``preexec_fn`` that moves the child into namespace ``name``'s network before it execs."""
    path = f"{NETNS_DIR}/{name}"

    libc = ctypes.CDLL(None, use_errno=True)  # loaded here: a preexec_fn should not load libraries

    def enter() -> None:
        fd = os.open(path, os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                errno = ctypes.get_errno()
                raise OSError(errno, f"setns({path}): {os.strerror(errno)}")
        finally:
            os.close(fd)

    return enter


def call_in(name: str, fn: Callable[[], T]) -> T:
    """Run ``fn`` in namespace ``name``'s network and return its result (or raise its error).

    It runs in a thread of its own: a thread's network namespace is its own (``setns``), so the rest of
    this process stays where it is.
    """
    outcome: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            entering(name)()
            outcome.append(fn())
        except BaseException as exc:  # handed to the caller's thread
            failure.append(exc)

    thread = threading.Thread(target=run, name=f"netns-{name}", daemon=True)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return outcome[0]


def free_subnet(first: str = "10.77.0.0/24", start: int = 0) -> ipaddress.IPv4Network:
    """The first /24 from ``first`` on (the third octet counted up from ``start``, wrapping) that no
    address of this host is in: a LAN that collides with no other (another test run's, a real one)."""
    base = ipaddress.IPv4Network(first)
    taken = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, check=True).stdout
    used = [ipaddress.IPv4Interface(word).network for word in taken.split() if "/" in word and word[0].isdigit()]
    for step in range(256):
        octet = (start + step) % 256
        candidate = ipaddress.IPv4Network((int(base.network_address) + (octet << 8), 24))
        if not any(candidate.overlaps(network) for network in used):
            return candidate
    raise NetnsError(f"no free /24 next to {first}")


@dataclass
class Lan:
    """A bridge ``<prefix>br`` on ``subnet`` (this host: its first address) with namespaces on it."""

    prefix: str
    subnet: ipaddress.IPv4Network
    hosts: dict[str, str] = field(default_factory=dict)  # namespace -> its address
    _up: bool = False

    @property
    def bridge(self) -> str:
        return f"{self.prefix}br"

    @property
    def host_address(self) -> str:
        """This host's address on the LAN."""
        return str(self.subnet.network_address + 1)

    def create(self) -> None:
        if len(self.bridge) > 15:
            raise NetnsError(f"the prefix {self.prefix!r} is too long for an interface name")
        _ip("link", "add", self.bridge, "type", "bridge")
        self._up = True
        _ip("addr", "add", f"{self.host_address}/{self.subnet.prefixlen}", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")

    def add_host(self) -> tuple[str, str]:
        """A new namespace on the LAN; returns its name and address."""
        index = len(self.hosts) + 1
        name, veth = f"{self.prefix}h{index}", f"{self.prefix}v{index}"
        address = str(self.subnet.network_address + 1 + index)
        _ip("netns", "add", name)
        self.hosts[name] = address
        _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", name)
        _ip("link", "set", veth, "master", self.bridge)
        _ip("link", "set", veth, "up")
        _ip("-n", name, "addr", "add", f"{address}/{self.subnet.prefixlen}", "dev", "eth0")
        _ip("-n", name, "link", "set", "eth0", "up")
        _ip("-n", name, "link", "set", "lo", "up")
        return name, address

    def remove(self) -> None:
        """Delete every namespace (their veth ends go with them) and the bridge; never raises."""
        for name in list(self.hosts):
            subprocess.run(["ip", "netns", "delete", name], capture_output=True)
            self.hosts.pop(name)
        if self._up:
            subprocess.run(["ip", "link", "delete", self.bridge], capture_output=True)
            self._up = False
