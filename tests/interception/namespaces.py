"""Network namespaces made by a test and removed after it: the "pods" of the data-path tests.

Everything here stays inside namespaces the test creates (``ip netns add``):
addresses live on veth ends inside them and on a bridge inside a namespace of
its own, so no address is added to the host's namespace and no traffic leaves
the namespaces the test made. ``/etc/netns/<ns>/hosts`` is what ``ip netns
exec`` mounts over ``/etc/hosts`` inside one, which is how pods resolve
virtual-service names to virtual IPs here.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

_COUNTER = itertools.count()
NETNS_ETC = Path("/etc/netns")


def skip_without_net_admin() -> None:
    """Skip the calling test unless it may create network namespaces (root, CAP_NET_ADMIN)."""
    if os.geteuid() != 0:
        pytest.skip("needs root (CAP_NET_ADMIN) to create network namespaces and nat rules")
    status = Path("/proc/self/status").read_text()
    [caps] = [line.split()[1] for line in status.splitlines() if line.startswith("CapEff:")]
    if not int(caps, 16) >> 12 & 1:
        pytest.skip("needs CAP_NET_ADMIN to create network namespaces and nat rules")
    missing = [tool for tool in ("ip", "iptables", "iptables-save") if shutil.which(tool) is None]
    assert not missing, f"{missing} missing: `make test` installs iptables and iproute2 as root"


def run(argv: Sequence[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a command to completion, failing the test with its output when ``check`` fails."""
    result = subprocess.run(list(argv), capture_output=True, text=True, check=False, timeout=60)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} -> {result.returncode}: {result.stderr}")
    return result


class Namespace:
    """One network namespace, its loopback up; ``exec`` runs a command inside it."""

    def __init__(self, name: str) -> None:
        self.name = name
        run(["ip", "netns", "add", name])
        run(self.exec(["ip", "link", "set", "lo", "up"]))

    def exec(self, argv: Sequence[str], env: Mapping[str, str] | None = None) -> list[str]:
        """The argv that runs ``argv`` inside this namespace (with exactly ``env``, if given)."""
        prefix = ["ip", "netns", "exec", self.name]
        if env is not None:
            pairs = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin"), **env}
            prefix += ["env", "-i", *(f"{key}={value}" for key, value in sorted(pairs.items()))]
        return [*prefix, *argv]

    def nat_rules(self, tool: str = "iptables-save") -> list[str]:
        """The nat table as ``iptables-save`` prints it, without comments and counters."""
        saved = run(self.exec([tool, "-t", "nat"])).stdout
        return [
            line.split(" [", 1)[0] if line.startswith(":") else line
            for line in saved.splitlines()
            if line and not line.startswith("#")
        ]

    def write_hosts(self, entries: Mapping[str, str]) -> None:
        """``/etc/hosts`` as processes in this namespace see it: name → address."""
        lines = ["127.0.0.1 localhost"] + [f"{ip} {name}" for name, ip in sorted(entries.items())]
        self.write_etc("hosts", "\n".join(lines) + "\n")

    def write_etc(self, name: str, text: str) -> None:
        """A file ``ip netns exec`` mounts over ``/etc/<name>`` for processes in this namespace."""
        folder = NETNS_ETC / self.name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)

    def delete(self) -> None:
        """Remove the namespace (its veth ends go with it) and its /etc/netns folder."""
        run(["ip", "netns", "delete", self.name], check=False)
        shutil.rmtree(NETNS_ETC / self.name, ignore_errors=True)


class Namespaces:
    """Creates namespaces with names unique to this test run, and removes them all."""

    def __init__(self) -> None:
        self._made: list[Namespace] = []
        self._prefix = f"mp{os.getpid() % 100000}"

    def make(self, role: str) -> Namespace:
        """A fresh namespace named after ``role`` (short: interface names have 15 chars)."""
        namespace = Namespace(f"{self._prefix}-{next(_COUNTER)}-{role}"[:40])
        self._made.append(namespace)
        return namespace

    def cleanup(self) -> None:
        """Delete every namespace made, newest first."""
        for namespace in reversed(self._made):
            namespace.delete()
        self._made.clear()
