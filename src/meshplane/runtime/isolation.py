"""``meshplane up --isolation netns``: each replica in a network namespace, as in a pod.

In the default process mode every replica shares the host's network and its app reaches the mesh
through ``HTTP_PROXY``. With ``--isolation netns`` (root on Linux) each meshed replica gets what
a Kubernetes pod had under App Mesh instead:

* a network namespace ``<prefix>-<n>`` with ``eth0`` (a veth) on a bridge that lives in a
  namespace of its own (``<prefix>-sw``), an address ``10.77.0.<n>/16`` and a default route, so
  no address, route or rule is added to the host's namespace;
* ``meshplane proxy-init``'s iptables rules (the injector's ``APPMESH_*`` env, app ports = the
  VirtualNode's listener ports), so the app's TCP is redirected to its Envoy and no proxy
  setting is needed — TCP backends work too;
* its Envoy as uid 1337 with App Mesh's intercepted layout (``0.0.0.0:15000``/``:15001``),
  its bootstrap and admin socket in a 1337-owned 0700 directory;
* ``/etc/netns/<ns>/hosts`` (mounted over ``/etc/hosts`` by ``ip netns exec``): each virtual
  service name → a virtual IP of its own (``10.77.255.<n>``; only interception ever sees it),
  each VirtualNode's ``serviceDiscovery.dns.hostname`` → the addresses of its replicas; and a
  ``resolv.conf`` with no reachable server: the namespaces have no way out of the bridge, so
  apps there reach the mesh and nothing else. The names follow the store: a virtual service
  applied while ``up`` runs is added to every hosts file, a deleted one removed (the file is
  rewritten in place, in one write: the bind mount pins its inode, so a rename would never
  reach running processes). Sidecars do not read these files for other nodes' replicas: they
  reach them through the endpoints each replica registers once ready (Envoy's resolver
  re-reads a hosts file only once a minute, and an entry is written before its replica
  listens).

A gateway replica (a VirtualGateway's Envoy) gets a namespace, an address and a hosts file
the same way but no proxy-init rules, as App Mesh's injector gave gateway pods no proxyinit:
its Envoy binds the gateway's listener ports at its pod address itself, and the published
address forwards there.

The bridge has ``10.77.0.1``: the host side reaches the namespaces from there with sockets
opened inside the switch namespace (a thread ``setns(2)``-ed into it creates them, and they
stay there). That is how the published address forwards to a replica's pod address (its
sidecar's ingress, through iptables, as a LoadBalancer did) and how sidecars reach the
loopback xDS server: a relay listens on ``10.77.0.1:<xds port>`` in the switch namespace.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import dataclasses
import ipaddress
import os
import shutil
import socket
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from meshplane.runtime import publishing

PROCESS = "process"
NETNS = "netns"
MODES = (PROCESS, NETNS)
ENVOY_UID = 1337
SUBNET = "10.77"
GATEWAY = f"{SUBNET}.0.1"
PREFIX_LENGTH = 16
NETNS_ETC = Path("/etc/netns")
NETNS_RUN = Path("/run/netns")
TOOLS = ("ip", "iptables", "iptables-restore", "iptables-save", "setpriv")
_CLONE_NEWNET = 0x40000000
T = TypeVar("T")


class IsolationError(Exception):
    """A namespace could not be set up; the message says what failed."""


def unavailable() -> str | None:
    """Why ``--isolation netns`` cannot run here (one line), or None if it can."""
    if not sys.platform.startswith("linux"):
        return "--isolation netns needs Linux network namespaces; use the default process mode"
    if os.geteuid() != 0:
        return (
            "--isolation netns needs root (it creates network namespaces and iptables rules); "
            "run it as root or use the default process mode"
        )
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        return (
            f"--isolation netns needs {', '.join(missing)} (Debian: apt-get install iproute2 "
            "iptables util-linux); or use the default process mode"
        )
    return None


def _in_namespace(name: str, function: Callable[[], T]) -> T:
    """``function()`` run by a fresh thread that has entered network namespace ``name``."""
    result: list[T] = []
    failure: list[BaseException] = []

    def inside() -> None:
        try:
            fd = os.open(NETNS_RUN / name, os.O_RDONLY)
            try:
                if ctypes.CDLL(None, use_errno=True).setns(fd, _CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns into network namespace {name}")
            finally:
                os.close(fd)
            result.append(function())
        except BaseException as error:
            failure.append(error)

    thread = threading.Thread(target=inside, name=f"netns-{name}", daemon=True)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]


def socket_in(name: str) -> socket.socket:
    """A non-blocking TCP socket that lives in network namespace ``name``."""

    def make() -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        return sock

    return _in_namespace(name, make)


@dataclasses.dataclass(frozen=True)
class Pod:
    """One replica's namespace and address."""

    netns: str
    address: str
    hostname: str
    """The replica's name: its own hosts entry, as a pod's name was."""

    def wrap(self, argv: Sequence[str], *, uid: int | None = None) -> list[str]:
        """``argv`` run inside this namespace (as ``uid``, if given)."""
        prefix = ["ip", "netns", "exec", self.netns]
        if uid is not None:
            # A change of uid clears the parent-death signal: set it again after the switch.
            prefix += ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
            prefix += ["--pdeathsig", "SIGKILL"]
        return [*prefix, *argv]


def proxy_init_env(app_ports: Sequence[int]) -> dict[str, str]:
    """The env App Mesh's injector gives proxyinit (``k8s-mode.md`` §1)."""
    return {
        "APPMESH_START_ENABLED": "1",
        "APPMESH_IGNORE_UID": str(ENVOY_UID),
        "APPMESH_ENVOY_INGRESS_PORT": "15000",
        "APPMESH_ENVOY_EGRESS_PORT": "15001",
        "APPMESH_APP_PORTS": ",".join(str(port) for port in app_ports),
        "APPMESH_EGRESS_IGNORED_IP": "169.254.169.254",
        "APPMESH_EGRESS_IGNORED_PORTS": "22",
        "APPMESH_ENABLE_IPV6": "0",
    }


class Network:
    """The bridge's namespace and the replicas' namespaces of one ``up``; see :meth:`delete`."""

    def __init__(self, prefix: str | None = None) -> None:
        """Nothing is created until :meth:`create`."""
        self.prefix = prefix or f"mpup{os.getpid() % 100000}"
        self.switch = f"{self.prefix}-sw"
        self.pods: list[Pod] = []
        self._next = 2  # .1 is the bridge
        self._made: list[str] = []
        self._virtual: dict[str, str] = {}
        """Every virtual-service name ever named → its virtual IP (never reused)."""
        self._named: frozenset[str] = frozenset()
        """The names the hosts files hold now."""
        self._hostnames: dict[str, list[str]] = {}
        self._relays: list[asyncio.Server] = []
        self._pipes: set[asyncio.Task[None]] = set()

    async def create(self) -> None:
        """The switch namespace with its bridge and the gateway address."""
        await self._ip("netns", "add", self.switch)
        self._made.append(self.switch)
        for args in (
            ("link", "set", "lo", "up"),
            ("link", "add", "br0", "type", "bridge"),
            ("addr", "add", f"{GATEWAY}/{PREFIX_LENGTH}", "dev", "br0"),
            ("link", "set", "br0", "up"),
        ):
            await self._ip("-n", self.switch, *args)

    async def add(self, replica: str) -> Pod:
        """A namespace for ``replica`` on the bridge, with its address and hosts file."""
        number = self._next  # taken before any await: replicas are placed concurrently
        self._next += 1
        if number > 250 * 256:
            raise IsolationError("--isolation netns: more replicas than addresses (64,000)")
        address = str(ipaddress.IPv4Address(f"{SUBNET}.0.0") + number)
        name = f"{self.prefix}-{number}"
        await self._ip("netns", "add", name)
        self._made.append(name)
        port = f"vp{number}"
        for args in (
            ("-n", name, "link", "set", "lo", "up"),
            ("-n", name, "link", "add", "eth0", "type", "veth", "peer", "name", port),
            ("-n", name, "link", "set", port, "netns", self.switch),
            ("-n", self.switch, "link", "set", port, "master", "br0", "up"),
            ("-n", name, "addr", "add", f"{address}/{PREFIX_LENGTH}", "dev", "eth0"),
            ("-n", name, "link", "set", "eth0", "up"),
            # Any destination leaves by eth0, so a virtual IP is routable far enough for
            # iptables to redirect it (virtual-service names need a non-loopback IP).
            ("-n", name, "route", "add", "default", "dev", "eth0"),
        ):
            await self._ip(*args)
        pod = Pod(name, address, replica)
        self.pods.append(pod)
        self._write_hosts(pod)
        # No DNS server is reachable from the namespaces: names come from the hosts file, and
        # a lookup of any other name fails at once instead of waiting on the host's resolver
        # (Envoy's c-ares would hold a DNS cluster's first resolution for its timeouts).
        (NETNS_ETC / name / "resolv.conf").write_text(
            "nameserver 127.0.0.1\noptions attempts:1 timeout:1\n"
        )
        return pod

    async def proxy_init(self, pod: Pod, app_ports: Sequence[int], python: str) -> None:
        """Install proxy-init's rules in ``pod`` (``meshplane proxy-init``, the init step)."""
        argv = pod.wrap([python, "-m", "meshplane.cli.main", "proxy-init"])
        env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")}
        await _run(argv, {**env, **proxy_init_env(app_ports)})

    def name_services(self, names: Sequence[str]) -> bool:
        """Name exactly ``names`` in every hosts file; whether that changed any of them.

        Each name gets a virtual IP of its own and keeps it across calls — also when it is
        removed and comes back — so a name never moves to another service's address.
        """
        for name in names:
            if name not in self._virtual:
                count = len(self._virtual) + 1
                self._virtual[name] = f"{SUBNET}.{255 - count // 254}.{count % 254 + 1}"
        wanted = frozenset(names)
        if wanted == self._named:
            return False
        self._named = wanted
        self._rewrite_hosts()
        return True

    def resolve(self, hostname: str, address: str) -> None:
        """``hostname`` (a node's DNS service discovery) resolves to ``address`` too."""
        self._hostnames.setdefault(hostname, [])
        if address not in self._hostnames[hostname]:
            self._hostnames[hostname].append(address)
        self._rewrite_hosts()

    def _rewrite_hosts(self) -> None:
        for pod in self.pods:
            self._write_hosts(pod)

    def _write_hosts(self, pod: Pod) -> None:
        lines = ["127.0.0.1 localhost", f"{pod.address} {pod.hostname}"]
        lines += [f"{self._virtual[name]} {name}" for name in sorted(self._named)]
        for name, addresses in sorted(self._hostnames.items()):
            lines += [f"{address} {name}" for address in addresses]
        folder = NETNS_ETC / pod.netns
        folder.mkdir(parents=True, exist_ok=True)
        rewrite_in_place(folder / "hosts", "\n".join(lines) + "\n")

    async def open_connection(
        self, host: str, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A connection from the bridge to ``host:port`` (a replica's pod address)."""
        sock = socket_in(self.switch)
        try:
            await asyncio.get_running_loop().sock_connect(sock, (host, port))
        except OSError:
            sock.close()
            raise
        return await asyncio.open_connection(sock=sock)

    async def accepts(self, pod: Pod, port: int) -> bool:
        """Whether the app in ``pod`` accepts on its own ``127.0.0.1:<port>``."""
        sock = socket_in(pod.netns)
        try:
            await asyncio.wait_for(
                asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port)), 1.0
            )
        except (OSError, TimeoutError):
            return False
        finally:
            sock.close()
        return True

    async def relay(self, port: int, target: tuple[str, int]) -> None:
        """Listen on the bridge's ``GATEWAY:port``; pipe every connection to ``target``."""

        def listen() -> socket.socket:
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((GATEWAY, port))
            listener.setblocking(False)
            return listener

        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            if task is not None:
                self._pipes.add(task)
            try:
                upstream_r, upstream_w = await asyncio.open_connection(*target)
            except OSError:
                writer.close()
                return
            try:
                await asyncio.gather(
                    publishing.pipe(reader, upstream_w), publishing.pipe(upstream_r, writer)
                )
            finally:
                upstream_w.close()
                writer.close()
                if task is not None:
                    self._pipes.discard(task)

        sock = _in_namespace(self.switch, listen)
        self._relays.append(await asyncio.start_server(accept, sock=sock))

    async def delete(self) -> None:
        """Stop the relays; delete every namespace made (their veths and rules go too)."""
        for server in self._relays:
            server.close()
        for task in list(self._pipes):
            task.cancel()
        for task in list(self._pipes):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for server in self._relays:
            await server.wait_closed()
        for name in reversed(self._made):
            with contextlib.suppress(IsolationError):
                await self._ip("netns", "delete", name)
            shutil.rmtree(NETNS_ETC / name, ignore_errors=True)
        self._made.clear()

    @staticmethod
    async def _ip(*args: str) -> None:
        await _run(["ip", *args], None)


def rewrite_in_place(path: Path, text: str) -> None:
    """Give ``path`` the contents ``text`` in one write, keeping its inode.

    ``ip netns exec`` bind-mounts this very file over each process's ``/etc/hosts``, so a
    new file renamed into place would never reach the processes already running. The
    whole text goes in at offset 0 in one ``pwrite`` instead — padded with newlines to the
    old length (blank lines, which every hosts parser skips) — and the padding is cut
    after: a reader that takes the file in one read sees the old lines or the new ones,
    never the empty or half-written file that truncating first and writing after showed.
    """
    data = text.encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        padding = max(0, os.fstat(fd).st_size - len(data))
        os.pwrite(fd, data + b"\n" * padding, 0)
        os.ftruncate(fd, len(data))
    finally:
        os.close(fd)


async def _run(argv: Sequence[str], env: Mapping[str, str] | None) -> None:
    """Run ``argv`` to completion; IsolationError with its output if it fails."""
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=dict(env) if env is not None else None,
    )
    output, _ = await process.communicate()
    if process.returncode != 0:
        text = output.decode(errors="replace").strip()
        raise IsolationError(f"{' '.join(argv[:6])} failed ({process.returncode}): {text}")


def private_dir_for_envoy(directory: Path) -> Path:
    """A 0700 directory owned by uid 1337 in ``directory``, which becomes traversable (0711)."""
    directory.chmod(0o711)
    own = directory / f"envoy-{len(list(directory.glob('envoy-*')))}"
    own.mkdir(mode=0o700)
    os.chown(own, ENVOY_UID, ENVOY_UID)
    return own
