"""A real Kubernetes control plane for tests: etcd, kube-apiserver and kube-controller-manager.

Started the way controller-runtime's envtest starts one (loopback ports, generated certificates,
RBAC, an admin client cert in ``system:masters``) plus the controllers that turn a Deployment into
ReplicaSets and Pods. No kubelet runs, so Pods stay Pending: they are API objects here. The
binaries come from ``make k8s-tools`` (pinned in tools/k8s/go.mod); :func:`tools_dir` finds them
where that target puts them. Every wait polls a condition with a deadline.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import hashlib
import json
import os
import signal
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from . import certs

REPO = Path(__file__).resolve().parents[2]
TOOLS = ("etcd", "kube-apiserver", "kube-controller-manager", "kubectl", "helm")
# KCM's controllers: Deployments make ReplicaSets make Pods, `rollout restart` a new ReplicaSet,
# Services get EndpointSlices, owners' deletes cascade, namespaces empty on delete, and every
# namespace gets its `default` ServiceAccount (which is also how we tell that KCM is up).
CONTROLLERS = (
    "deployment",
    "replicaset",
    "endpointslice",
    "garbagecollector",
    "namespace",
    "serviceaccount",
    "serviceaccount-token",
)
STARTUP_DEADLINE = 180.0  # a cold apiserver on a busy 2-core machine takes tens of seconds
STOP_DEADLINE = 15.0


def tools_dir() -> Path:
    """Where ``make k8s-tools`` puts the binaries; tools/k8s/build.sh computes the same path."""
    if explicit := os.environ.get("MESHPLANE_K8S_TOOLS"):
        return Path(explicit)
    digest = hashlib.sha256((REPO / "tools/k8s/go.sum").read_bytes()).hexdigest()[:16]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "meshplane" / "k8s" / digest / "bin"


def missing_tools(directory: Path) -> list[str]:
    """The binaries of :data:`TOOLS` not (yet) built into ``directory``."""
    return [name for name in TOOLS if not os.access(directory / name, os.X_OK)]


def free_port() -> int:
    """A loopback port free right now (the kernel's pick; another process could take it first)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def poll(condition: Callable[[], Any], deadline: float, what: str) -> Any:
    """Call ``condition`` until it returns something truthy; fail after ``deadline`` seconds."""
    end = time.monotonic() + deadline
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > end:
            raise TimeoutError(f"{what}: not within {deadline:.0f} s")
        time.sleep(0.1)


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child: get SIGKILL when pytest dies, so even a killed session leaks no process."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class Process:
    """One control-plane binary, its output in a log file, stopped by SIGTERM then SIGKILL."""

    def __init__(self, name: str, argv: list[str], log: Path) -> None:
        self.name = name
        self.argv = argv
        self.log = log
        with log.open("wb") as out:
            self.popen = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,  # noqa: PLW1509  started before any test thread
            )

    def check_alive(self) -> None:
        """Raise with the log's tail if the process has exited (so a bad flag fails fast)."""
        if (code := self.popen.poll()) is not None:
            raise RuntimeError(f"{self.name} exited with {code}:\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        """The last lines of the process's output, for failure messages."""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        """Terminate and reap the process; kill it if it ignores SIGTERM."""
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(STOP_DEADLINE)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


@dataclass
class Cluster:
    """A running control plane, as a test uses it: a kubeconfig, the server URL and kubectl."""

    kubeconfig: Path
    server: str
    tools: Path
    ca: certs.CertificateAuthority
    admin: certs.KeyPair
    processes: list[Process] = field(default_factory=list)

    def kubectl(
        self, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run ``kubectl --kubeconfig <ours> <args>``; with ``check`` a failure raises."""
        return self._run(
            "kubectl", "--kubeconfig", str(self.kubeconfig), *args, stdin=stdin, check=check
        )

    def kubectl_json(self, *args: str) -> Any:
        """``kubectl <args> -o json``, parsed."""
        return json.loads(self.kubectl(*args, "-o", "json").stdout)

    def apply(self, *manifests: dict[str, Any]) -> str:
        """``kubectl apply -f -`` of ``manifests``; returns kubectl's output."""
        documents = yaml.safe_dump_all(manifests)
        return self.kubectl("apply", "-f", "-", stdin=documents).stdout

    def helm(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``helm --kubeconfig <ours> <args>``."""
        return self._run("helm", "--kubeconfig", str(self.kubeconfig), *args, check=check)

    def _run(
        self, tool: str, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(self.tools / tool), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={**os.environ, "HOME": str(self.kubeconfig.parent)},  # helm/kubectl caches
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"{tool} {' '.join(args)} failed ({done.returncode}):\n{done.stderr}"
            )
        return done

    def get(self, path: str) -> tuple[int, Any]:
        """GET ``path`` on the apiserver as admin: (status, parsed body or text)."""
        context = ssl.create_default_context(cafile=str(self.ca.cert))
        context.load_cert_chain(str(self.admin.cert), str(self.admin.key))
        try:
            with urllib.request.urlopen(self.server + path, context=context, timeout=10) as reply:
                status, body = reply.status, reply.read()
        except urllib.error.HTTPError as exc:
            with exc:  # an unclosed error response is a ResourceWarning, and warnings are errors
                status, body = exc.code, exc.read()
        except OSError:
            return 0, None
        try:
            return status, json.loads(body)
        except ValueError:
            return status, body.decode(errors="replace")

    def check_alive(self) -> None:
        """Raise if any control-plane process has died."""
        for process in self.processes:
            process.check_alive()

    def restart_apiserver(self) -> None:
        """Stop kube-apiserver, start it again on the same port with the same flags, await /readyz.

        Its new output goes to a second log beside the first, so both runs can be read afterwards.
        """
        (index,) = [i for i, p in enumerate(self.processes) if p.name == "kube-apiserver"]
        old = self.processes[index]
        old.stop()  # SIGTERM, reaped; etcd and its data dir stay up
        if old.popen.returncode != 0:
            raise RuntimeError(f"kube-apiserver did not stop on SIGTERM:\n{old.tail()}")
        log = old.log.with_name(f"{old.log.stem}.restarted{old.log.suffix}")
        self.processes[index] = Process(old.name, old.argv, log)
        poll(lambda: _ready(self, "/readyz"), STARTUP_DEADLINE, "restarted kube-apiserver /readyz")


def _ready(cluster: Cluster, path: str) -> bool:
    cluster.check_alive()
    return cluster.get(path)[0] == 200


@contextlib.contextmanager
def running(tools: Path, workdir: Path) -> Iterator[Cluster]:
    """Start etcd, kube-apiserver and kube-controller-manager in ``workdir``; stop them on exit.

    Yields once the apiserver's /readyz answers 200 and KCM has created the ``default``
    ServiceAccount (its controllers are running). Stops everything also when start-up fails.
    """
    ca = certs.CertificateAuthority(workdir / "pki")
    serving = ca.issue(
        "kube-apiserver", hosts=("127.0.0.1", "localhost", "10.0.0.1", "kubernetes.default.svc")
    )
    admin = ca.issue("admin", organizations=("system:masters",))
    sa_key = certs.service_account_key(workdir / "pki")
    etcd_port, peer_port, api_port = free_port(), free_port(), free_port()
    server = f"https://127.0.0.1:{api_port}"
    kubeconfig = workdir / "kubeconfig"
    kubeconfig.write_text(_kubeconfig(server, ca.cert, admin))
    cluster = Cluster(kubeconfig=kubeconfig, server=server, tools=tools, ca=ca, admin=admin)
    etcd_url = f"http://127.0.0.1:{etcd_port}"
    argvs = {
        "etcd": [
            f"--data-dir={workdir / 'etcd'}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
            f"--initial-cluster=default=http://127.0.0.1:{peer_port}",
            "--unsafe-no-fsync=true",  # test data: durability buys nothing, fsync costs seconds
            "--log-level=warn",
        ],
        "kube-apiserver": [
            f"--etcd-servers={etcd_url}",
            f"--cert-dir={workdir / 'apiserver'}",
            f"--tls-cert-file={serving.cert}",
            f"--tls-private-key-file={serving.key}",
            f"--client-ca-file={ca.cert}",
            f"--secure-port={api_port}",
            "--bind-address=127.0.0.1",
            "--service-cluster-ip-range=10.0.0.0/24",
            "--allow-privileged=true",
            "--authorization-mode=RBAC",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={sa_key}",
            f"--service-account-signing-key-file={sa_key}",
            # No kubelet mounts tokens, and the plugin would refuse Pods until KCM made the SA.
            "--disable-admission-plugins=ServiceAccount",
            # On SIGTERM, end open watches after this long instead of waiting on them until
            # SIGKILL: a stop (and a restart in a test) is then a graceful one, in seconds.
            "--shutdown-watch-termination-grace-period=2s",
        ],
        "kube-controller-manager": [
            f"--kubeconfig={kubeconfig}",
            "--leader-elect=false",
            "--secure-port=0",
            f"--controllers={','.join(CONTROLLERS)}",
            f"--service-account-private-key-file={sa_key}",
            f"--root-ca-file={ca.cert}",
        ],
    }
    try:
        try:
            _start(cluster, argvs, workdir)
        except (RuntimeError, TimeoutError) as exc:
            logs = "\n".join(f"--- {p.name} ---\n{p.tail()}" for p in cluster.processes)
            raise RuntimeError(f"test cluster failed: {exc}\n{logs}") from exc
        yield cluster
    finally:
        for process in reversed(cluster.processes):
            process.stop()


def _start(cluster: Cluster, argvs: dict[str, list[str]], workdir: Path) -> None:
    for name, flags in argvs.items():
        argv = [str(cluster.tools / name), *flags]
        cluster.processes.append(Process(name, argv, workdir / f"{name}.log"))
        if name == "kube-apiserver":
            poll(lambda: _ready(cluster, "/readyz"), STARTUP_DEADLINE, "kube-apiserver /readyz")
    poll(
        lambda: _ready(cluster, "/api/v1/namespaces/default/serviceaccounts/default"),
        STARTUP_DEADLINE,
        "kube-controller-manager creating the default ServiceAccount",
    )


def _kubeconfig(server: str, ca: Path, admin: certs.KeyPair) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "meshplane-test",
                    "cluster": {"server": server, "certificate-authority": str(ca)},
                }
            ],
            "users": [
                {
                    "name": "admin",
                    "user": {"client-certificate": str(admin.cert), "client-key": str(admin.key)},
                }
            ],
            "contexts": [
                {
                    "name": "meshplane-test",
                    "context": {"cluster": "meshplane-test", "user": "admin"},
                }
            ],
            "current-context": "meshplane-test",
        }
    )


Review = Callable[[dict[str, Any]], dict[str, Any]]


def json_patch(request: dict[str, Any], operations: list[dict[str, Any]]) -> dict[str, Any]:
    """An AdmissionReview v1 ``response`` allowing ``request`` with a JSONPatch."""
    return {
        "uid": request["uid"],
        "allowed": True,
        "patchType": "JSONPatch",
        "patch": base64.b64encode(json.dumps(operations).encode()).decode(),
    }


class AdmissionServer:
    """A tiny HTTPS AdmissionReview v1 server on 127.0.0.1 for webhooks the apiserver really calls.

    ``review`` maps the AdmissionReview's ``request`` to its ``response``; every request is kept in
    ``requests``. Register ``clientConfig: {url: server.url(path), caBundle: server.ca_bundle}``.
    """

    def __init__(self, ca: certs.CertificateAuthority, review: Review) -> None:
        self.requests: list[dict[str, Any]] = []
        self.ca_bundle = base64.b64encode(ca.pem).decode()
        pair = ca.issue(f"webhook-{id(self)}", hosts=("127.0.0.1",))
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                owner.requests.append(body["request"])
                reply = json.dumps(
                    {
                        "apiVersion": "admission.k8s.io/v1",
                        "kind": "AdmissionReview",
                        "response": review(body["request"]),
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(pair.cert), str(pair.key))
        self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        self.port: int = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        """The ``clientConfig.url`` for ``path`` on this server."""
        return f"https://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> AdmissionServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()


def pinned(module: str) -> str:
    """The version tools/k8s/go.mod requires of ``module`` (what the built binary must report)."""
    for line in (REPO / "tools/k8s/go.mod").read_text().splitlines():
        words = line.split()  # "<module> <version>", tidy adds "// indirect" to tool modules
        if len(words) >= 2 and words[0] == module and words[1].startswith("v"):
            return words[1]
    raise LookupError(f"{module} is not required in tools/k8s/go.mod")
