"""A fake kubelet: runs the test cluster's Pods, as meshplane's injector admitted them, in netns.

The test cluster has no kubelet and no container runtime (``cluster.py``), so its Pods stay
API objects. :class:`Kubelet` plays the node for the Pods a test hands it (``k8s-mode.md`` §7,
Tier 2), reading everything from the Pod object the API server stored — the *mutated* pod:

* the pod gets a network namespace with a veth on a test bridge (``interception/pods.py``'s
  :class:`~interception.pods.Network`) and a default route on it, so a ClusterIP is routable
  far enough for iptables to redirect it;
* each init container runs to completion, then each container starts, with the pod spec's
  ``command``/``args``, ``env`` (``fieldRef`` resolved), ``securityContext.runAsUser``
  (``setpriv``) and ``volumeMounts`` (bind mounts inside ``ip netns exec``'s private mount
  namespace, a missing mount point made on the host's filesystem and removed at the end;
  ``emptyDir`` and projected ``serviceAccountToken`` volumes, the token from the TokenRequest
  API with the projection's audience and expiry, bound to the pod);
* an image does not run here: :class:`Images` maps an image (or a ``command[0]``) to the local
  argv that stands for its entrypoint — Envoy's binary for ``envoy``, ``meshplane proxy-init``
  for the proxyinit image, the echo apps for the test's app images;
* readiness probes (``httpGet``, ``tcpSocket``) are polled inside the pod; then the pod is
  bound to a fake Node and its ``status`` patched (``podIP``, ``Running``, ``Ready``), which is
  what kube-controller-manager's endpointslice controller needs to fill EndpointSlices;
* names resolve through ``/etc/netns/<pod>/hosts`` (:meth:`Kubelet.refresh_dns`): a Service
  with a selector resolves to the ready addresses of its EndpointSlices (no kube-proxy runs,
  so a ClusterIP would lead nowhere), a Service without one to its ClusterIP (any
  non-loopback address does for an intercepted call, roadmap#65), each under
  ``name``, ``name.ns``, ``name.ns.svc`` and ``name.ns.svc.cluster.local``.

Envoy's xDS address in the injected bootstrap is ``127.0.0.1:<port>`` (the test's
``meshplane k8s --xds-address``); a :class:`~k8s.netns_sockets.LoopbackRelay` listens on the
pod's own loopback at that port and relays to the host's, so the bootstrap runs as given.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from interception import pods
from interception.namespaces import Namespace, Namespaces, run
from meshplane.envoy import binary

from . import cluster as k8s
from . import netns_sockets

NODE = "meshplane-test-node"
DEADLINE = 90.0
REPO = Path(__file__).resolve().parents[2]
APPS = REPO / "examples" / "echo" / "apps"
PROXY_INIT = [sys.executable, "-m", "meshplane.cli.main", "proxy-init"]


@dataclass
class Images:
    """What stands for each image's entrypoint, and for binaries a ``command`` names."""

    images: dict[str, list[str]] = field(default_factory=dict)
    commands: dict[str, list[str]] = field(
        default_factory=lambda: {"envoy": [str(binary.binary_path())]}
    )
    init_image_prefixes: tuple[str, ...] = ("aws-appmesh-proxy-route-manager", "meshplane")
    """proxyinit images (the injector's default and meshplane's) run ``meshplane proxy-init``."""

    def argv(self, container: Mapping[str, Any]) -> list[str]:
        """The local argv of ``container``: its command (or image) resolved, then its args."""
        command = list(container.get("command") or [])
        args = [str(a) for a in container.get("args") or []]
        if command:
            head = self.commands.get(command[0])
            if head is None:
                raise AssertionError(f"no local stand-in for command {command[0]!r}")
            return [*head, *command[1:], *args]
        image = str(container.get("image", ""))
        if image in self.images:
            return [*self.images[image], *args]
        repository = image.rsplit("/", 1)[-1].split(":", 1)[0]
        if repository in self.init_image_prefixes:
            return [*PROXY_INIT, *args]
        raise AssertionError(f"no local stand-in for image {image!r}")


@dataclass
class RunningPod:
    """One pod on the fake node: its namespace, address and processes."""

    name: str
    namespace: str
    uid: str
    netns: Namespace
    ip: str
    workdir: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    relay: netns_sockets.LoopbackRelay | None = None

    def exec(self, argv: Sequence[str], env: Mapping[str, str] | None = None) -> list[str]:
        """The argv running ``argv`` inside this pod's network namespace."""
        return self.netns.exec(argv, env)

    def get(self, port: int, path: str) -> tuple[int, bytes]:
        """GET ``http://127.0.0.1:<port><path>`` from inside the pod: (status, body)."""

        def fetch() -> tuple[int, bytes]:
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            try:
                with opener.open(f"http://127.0.0.1:{port}{path}", timeout=5) as reply:
                    return int(reply.status), bytes(reply.read())
            except urllib.error.HTTPError as error:
                with error:
                    return int(error.code), bytes(error.read())
            except OSError:
                return 0, b""

        return netns_sockets.call(self.netns.name, fetch)

    def accepts(self, port: int) -> bool:
        """Whether something in the pod accepts TCP on ``127.0.0.1:<port>``."""

        def connect() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=2):
                    return True
            except OSError:
                return False

        return netns_sockets.call(self.netns.name, connect)

    def log(self, container: str) -> str:
        """The output of one container so far."""
        path = self.workdir / f"{container}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def check_alive(self) -> None:
        """Fail with its log if a container has exited."""
        for name, process in self.processes.items():
            if (code := process.poll()) is not None:
                raise AssertionError(f"{self.name}/{name} exited {code}:\n{self.log(name)[-3000:]}")

    def stop(self) -> None:
        """Stop the containers (SIGTERM, then SIGKILL) and the relay."""
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=15)
        if self.relay is not None:
            self.relay.close()


class Kubelet:
    """Runs Pods of the test cluster in network namespaces on one bridge."""

    def __init__(
        self,
        cluster: k8s.Cluster,
        namespaces: Namespaces,
        subnet: str,
        workdir: Path,
        images: Images,
        *,
        xds_port: int | None = None,
    ) -> None:
        self.cluster = cluster
        self.network = pods.Network(namespaces, subnet)
        self.workdir = workdir
        self.images = images
        self.xds_port = xds_port
        """The host's loopback port relayed into each pod (the injected bootstrap's xDS)."""
        self.pods: list[RunningPod] = []
        self._made: list[Path] = []
        """Mount points created on the host's filesystem, removed at :meth:`stop`."""
        cluster.apply({"apiVersion": "v1", "kind": "Node", "metadata": {"name": NODE}})

    def run(self, pod: Mapping[str, Any]) -> RunningPod:
        """Start ``pod`` (an API object as stored); returns once it is Ready in the API."""
        metadata = pod["metadata"]
        name, namespace = metadata["name"], metadata["namespace"]
        netns, ip = self.network.pod(name.rsplit("-", 2)[0][:8])
        run(netns.exec(["ip", "route", "add", "default", "dev", "eth0"]))
        workdir = self.workdir / f"{namespace}-{name}"
        workdir.mkdir(parents=True)
        running = RunningPod(name, namespace, metadata["uid"], netns, ip, workdir)
        self.pods.append(running)
        netns.write_etc("resolv.conf", "nameserver 127.0.0.1\noptions attempts:1 timeout:1\n")
        self._write_hosts(running, self._names())
        if self.xds_port is not None:
            running.relay = netns_sockets.LoopbackRelay(netns.name, self.xds_port)
        self._bind(running)
        volumes = self._volumes(pod, running)
        spec = pod["spec"]
        for container in spec.get("initContainers") or []:
            done = subprocess.run(
                self._argv(pod, running, container, volumes),
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            if done.returncode != 0:
                raise AssertionError(f"init container {container['name']}: {done.stderr}")
            (workdir / f"{container['name']}.log").write_text(done.stdout + done.stderr)
        for container in spec["containers"]:
            argv = self._argv(pod, running, container, volumes)
            with (workdir / f"{container['name']}.log").open("ab") as sink:
                running.processes[container["name"]] = subprocess.Popen(
                    argv, stdout=sink, stderr=subprocess.STDOUT
                )
        for container in spec["containers"]:
            probe = container.get("readinessProbe")
            if probe:
                k8s.poll(
                    lambda probe=probe: self._probe(running, probe),
                    DEADLINE,
                    f"{name}/{container['name']} readiness (log: {workdir})",
                )
        self._ready(running)
        return running

    # -- the pod's processes -------------------------------------------------------------

    def _argv(
        self,
        pod: Mapping[str, Any],
        running: RunningPod,
        container: Mapping[str, Any],
        volumes: Mapping[str, Path],
    ) -> list[str]:
        """``container`` as a process in the pod: mounts, user, env, then its entrypoint."""
        argv = self.images.argv(container)
        user = (container.get("securityContext") or {}).get("runAsUser")
        if user is not None:
            argv = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *argv]
        mounts = []
        for mount in container.get("volumeMounts") or []:
            source = volumes[mount["name"]] / mount.get("subPath", "")
            target = Path(mount["mountPath"])
            self._mount_point(target, directory=source.is_dir())
            mounts.append(f"mount --bind {shlex.quote(str(source))} {shlex.quote(str(target))}")
        if mounts:
            # ``ip netns exec`` runs in a private mount namespace: the binds stay in the pod.
            script = " && ".join(mounts) + ' && exec "$@"'
            argv = ["sh", "-c", script, "sh", *argv]
        return running.exec(argv, self._env(pod, running, container))

    def _mount_point(self, target: Path, *, directory: bool) -> None:
        """Make ``target`` exist to bind over (the filesystem is the host's); :meth:`stop`
        removes what this made."""
        missing = [p for p in (target, *target.parents) if not p.exists()]
        for path in reversed(missing):
            if path == target and not directory:
                path.touch()
            else:
                path.mkdir()
            self._made.append(path)

    def _env(
        self, pod: Mapping[str, Any], running: RunningPod, container: Mapping[str, Any]
    ) -> dict[str, str]:
        fields = {
            "metadata.name": running.name,
            "metadata.namespace": running.namespace,
            "metadata.uid": running.uid,
            "status.podIP": running.ip,
            "spec.nodeName": NODE,
            "spec.serviceAccountName": pod["spec"].get("serviceAccountName") or "default",
        }
        env: dict[str, str] = {}
        for entry in container.get("env") or []:
            if "value" in entry:
                env[entry["name"]] = str(entry["value"])
            elif "fieldRef" in (entry.get("valueFrom") or {}):
                env[entry["name"]] = fields[entry["valueFrom"]["fieldRef"]["fieldPath"]]
            else:
                raise AssertionError(f"env {entry['name']}: only value and fieldRef are supported")
        return env

    def _volumes(self, pod: Mapping[str, Any], running: RunningPod) -> dict[str, Path]:
        """Each pod volume as a directory here: emptyDir empty, projected tokens requested."""
        found: dict[str, Path] = {}
        for volume in pod["spec"].get("volumes") or []:
            directory = running.workdir / "volumes" / volume["name"]
            directory.mkdir(parents=True)
            directory.chmod(0o755)
            if "emptyDir" in volume:
                directory.chmod(0o777)
            elif "projected" in volume:
                for source in volume["projected"]["sources"]:
                    token = source.get("serviceAccountToken")
                    if token is None:
                        raise AssertionError(f"volume {volume['name']}: only tokens are supported")
                    path = directory / token["path"]
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(self._token(pod, running, token))
                    path.chmod(0o644)
            else:
                raise AssertionError(f"volume {volume['name']}: {sorted(volume)} not supported")
            found[volume["name"]] = directory
        return found

    def _token(self, pod: Mapping[str, Any], running: RunningPod, token: Mapping[str, Any]) -> str:
        """A TokenRequest for the pod's service account, bound to the pod, as a kubelet asks."""
        account = pod["spec"].get("serviceAccountName") or "default"
        k8s.poll(  # kube-controller-manager creates `default` just after the namespace
            lambda: (
                self.cluster.kubectl(
                    "get", "serviceaccount", account, "-n", running.namespace, check=False
                ).returncode
                == 0
            ),
            DEADLINE,
            f"service account {running.namespace}/{account}",
        )
        args = ["create", "token", account, "-n", running.namespace]
        args += ["--bound-object-kind", "Pod", "--bound-object-name", running.name]
        args += ["--bound-object-uid", running.uid]
        if audience := token.get("audience"):
            args += ["--audience", audience]
        if seconds := token.get("expirationSeconds"):
            args += ["--duration", f"{seconds}s"]
        return self.cluster.kubectl(*args).stdout.strip()

    def _probe(self, running: RunningPod, probe: Mapping[str, Any]) -> bool:
        running.check_alive()
        if "httpGet" in probe:
            status, _ = running.get(int(probe["httpGet"]["port"]), probe["httpGet"]["path"])
            return 200 <= status < 400
        if "tcpSocket" in probe:
            return running.accepts(int(probe["tcpSocket"]["port"]))
        raise AssertionError(f"probe {sorted(probe)} not supported")

    # -- the API side ---------------------------------------------------------------------

    def _bind(self, running: RunningPod) -> None:
        """Schedule the pod onto the fake node (the Binding subresource, as a scheduler does)."""
        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": running.name, "namespace": running.namespace},
            "target": {"apiVersion": "v1", "kind": "Node", "name": NODE},
        }
        path = f"/api/v1/namespaces/{running.namespace}/pods/{running.name}/binding"
        self.cluster.kubectl("create", "--raw", path, "-f", "-", stdin=json.dumps(binding))

    def _ready(self, running: RunningPod) -> None:
        """Patch the pod's status as a kubelet would once every readiness probe passed."""
        now = self.cluster.kubectl_json("get", "pod", running.name, "-n", running.namespace)
        started = now["metadata"]["creationTimestamp"]
        conditions = [
            {"type": kind, "status": "True", "lastTransitionTime": started}
            for kind in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
        ]
        status = {
            "phase": "Running",
            "hostIP": running.ip,
            "podIP": running.ip,
            "podIPs": [{"ip": running.ip}],
            "startTime": started,
            "conditions": conditions,
        }
        self.cluster.kubectl(
            "patch",
            "pod",
            running.name,
            "-n",
            running.namespace,
            "--subresource=status",
            "--type=merge",
            "-p",
            json.dumps({"status": status}),
        )

    # -- names --------------------------------------------------------------------------

    def _names(self) -> dict[str, list[str]]:
        """Every Service's DNS names → the addresses a pod resolves them to."""
        services = self.cluster.kubectl_json("get", "services", "-A")["items"]
        slices = self.cluster.kubectl_json("get", "endpointslices", "-A")["items"]
        ready: dict[tuple[str, str], list[str]] = {}
        for item in slices:
            owner = item["metadata"].get("labels", {}).get("kubernetes.io/service-name")
            key = (item["metadata"]["namespace"], owner)
            for endpoint in item.get("endpoints") or []:
                if (endpoint.get("conditions") or {}).get("ready", True):
                    ready.setdefault(key, []).extend(endpoint["addresses"])
        names: dict[str, list[str]] = {}
        for service in services:
            name, namespace = service["metadata"]["name"], service["metadata"]["namespace"]
            if service["spec"].get("selector"):
                addresses = sorted(set(ready.get((namespace, name), [])))
            else:
                addresses = [service["spec"]["clusterIP"]]
            for form in (f"{name}.{namespace}", f"{name}.{namespace}.svc"):
                names[form] = addresses
            names[f"{name}.{namespace}.svc.cluster.local"] = addresses
            names.setdefault(name, addresses)  # the short name: a pod's own namespace first
        return names

    def _write_hosts(self, running: RunningPod, names: Mapping[str, list[str]]) -> None:
        own = {
            form: names[f"{form.split('.')[0]}.{running.namespace}"]
            for form in names
            if "." not in form and f"{form}.{running.namespace}" in names
        }
        lines = ["127.0.0.1 localhost", f"{running.ip} {running.name}"]
        for name, addresses in sorted({**names, **own}.items()):
            lines += [f"{address} {name}" for address in addresses]
        running.netns.write_etc("hosts", "\n".join(lines) + "\n")

    def refresh_dns(self) -> dict[str, list[str]]:
        """Rewrite every pod's hosts file from the Services and EndpointSlices now; the names."""
        names = self._names()
        for running in self.pods:
            self._write_hosts(running, names)
        return names

    def stop(self) -> None:
        """Stop every pod started, and confirm their deletion as a kubelet does.

        A pod bound to a node is only removed once that node's kubelet says its containers
        are gone (a grace-period-0 delete); without it the pods, and so their namespace,
        would stay Terminating. The network namespaces go with the test's :class:`Namespaces`.
        """
        for running in reversed(self.pods):
            with contextlib.suppress(Exception):
                running.stop()
            self.cluster.kubectl(
                "delete",
                "pod",
                running.name,
                "-n",
                running.namespace,
                "--grace-period=0",
                "--force",
                "--ignore-not-found",
                check=False,
            )
        for path in reversed(self._made):
            with contextlib.suppress(OSError):
                path.rmdir() if path.is_dir() else path.unlink()
        self._made.clear()


def environment_of(container: Mapping[str, Any]) -> dict[str, Any]:
    """A container's env as name → value (or valueFrom), for assertions."""
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env") or []}
