"""Automatic mTLS end to end: certificates from the built-in CA over SDS, rotated under traffic.

An in-process control plane whose mesh carries ``meshplane.dev/mtls: STRICT``
serves two real Envoys: the frontend's sidecar and the backend's. The backend's
sidecar accepts only mutual TLS from mesh members; the frontend's calls it with
its own SPIFFE certificate and checks the backend's. Certificates live a few
seconds (``cert_ttl``), so rotations happen during the test: every request
keeps succeeding and the backend presents new serial numbers.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import http.client
import http.server
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2
from envoy.service.discovery.v3 import discovery_pb2

from meshplane import app, envoy, settings
from meshplane.envoy import resources as types
from meshplane.kit.clock import system_clock
from meshplane.model import kinds
from meshplane.pki import authorities, authority
from meshplane.testing import FakeAdsClient

pytestmark = pytest.mark.integration
BACKEND_ID = "spiffe://meshplane.local/mesh/demos/virtualNode/vn-backend"
TTL_S = 3


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _Answer(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"backend"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def app_port() -> Iterator[int]:
    """The backend app: answers 'backend'."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _node(host: str, backends: list[str] | None = None) -> dict[str, object]:
    spec: dict[str, object] = {
        "listeners": [{"portMapping": {"port": 80, "protocol": "http"}}],
        "serviceDiscovery": {"dns": {"hostname": host}},
    }
    if backends:
        spec["backends"] = [{"virtualService": {"virtualServiceName": b}} for b in backends]
    return spec


def _sidecar(
    plane: app.ControlPlane,
    tmp_path: Path,
    name: str,
    meta: dict[str, object],
    pipe: Path | None = None,
    *,
    delta: bool = False,
) -> subprocess.Popen[bytes]:
    """A real Envoy for ``name``; with ``pipe`` its admin is that unix socket, announced.

    ``delta``: it speaks incremental ADS (``DELTA_GRPC``), its secrets too.
    """
    node_id = f"mesh/demos/virtualNode/{name}"
    if pipe is not None:
        meta = {**meta, "admin": str(pipe)}
    credentials = plane.services.credentials
    config = envoy.bootstrap(
        node_id,
        node_id,
        "127.0.0.1",
        plane.xds_port,
        "127.0.0.1",
        0,
        {"meshplane": meta},
        # Each replica proves its node on the ADS stream with a credential the plane issued.
        credential=credentials.issue(node_id, str(meta["replica"])).token
        if credentials is not None
        else None,
        admin_pipe=pipe,
        delta=delta,
    )
    argv = envoy.command(config, admin_address_path=None if pipe else tmp_path / f"admin-{name}")
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def _synced(plane: app.ControlPlane, key: str) -> None:
    """Wait until the proxy runs its current snapshot (which rotations keep replacing)."""
    await plane.ads.status.wait_for(key, lambda s: s.connected, timeout=30)
    async with asyncio.timeout(30):
        while True:
            snapshot, status = plane.ads.cache.snapshot(key), plane.ads.status.node(key)
            if snapshot is not None and status is not None and status.has_acked(snapshot):
                return
            await asyncio.sleep(0.01)


KEYS = (
    "mesh/demos/virtualNode/vn-backend#backend-0",
    "mesh/demos/virtualNode/vn-frontend#frontend-0",
)
"""The two sidecars of :func:`_two_sidecars`."""


@contextlib.contextmanager
def _two_sidecars(
    plane: app.ControlPlane,
    tmp_path: Path,
    app_port: int,
    ingress: int,
    egress: int,
    pipe: Path | None = None,
    delta: bool = False,
) -> Iterator[None]:
    """Real Envoys for vn-backend (registered at ``ingress``, serving ``app_port``; its admin on
    ``pipe`` if given) and vn-frontend (calls out through ``egress``), killed afterwards;
    ``delta``: both speak incremental ADS."""
    plane.services.discovery.register(
        "demos",
        "vn-backend",
        "backend-0",
        [{"listenerPort": 80, "address": "127.0.0.1", "port": ingress}],
    )
    meta = {"replica": "backend-0", "ingress": {"80": ingress}, "app": {"80": app_port}}
    backend = _sidecar(
        plane, tmp_path, "vn-backend", {**meta, "egress": _free_port()}, pipe, delta=delta
    )
    frontend = _sidecar(
        plane, tmp_path, "vn-frontend", {"replica": "frontend-0", "egress": egress}, delta=delta
    )
    try:
        yield
    finally:
        for proxy in (backend, frontend):
            proxy.kill()
            proxy.wait()


async def _converged(plane: app.ControlPlane) -> None:
    """Both sidecars were published the store's revision and run it."""
    async with asyncio.timeout(30):
        while any(
            (p := plane.sync.published.get(k)) is None or p.revision < plane.store.revision()
            for k in KEYS
        ):
            await asyncio.sleep(0.01)
    for key in KEYS:
        await _synced(plane, key)


def _call(egress: int) -> tuple[int, str]:
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({"http": f"http://127.0.0.1:{egress}"})
    )
    with opener.open("http://vs-backend:80/", timeout=5) as response:
        return response.status, response.read().decode()


def _plain(port: int) -> None:
    """GET / in plaintext (a STRICT listener closes the connection)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/")
        connection.getresponse()
    finally:
        connection.close()


def _peer(port: int, ca: Path, client: tuple[Path, Path] | None) -> x509.Certificate:
    """The certificate the backend's sidecar presents (the request itself must succeed)."""
    context = ssl.create_default_context(cafile=str(ca))
    context.check_hostname = False  # the identity is a SPIFFE URI SAN, checked by the caller
    if client is not None:
        context.load_cert_chain(*client)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw) as wrapped,
    ):
        der = wrapped.getpeercert(binary_form=True)
        wrapped.sendall(b"GET / HTTP/1.1\r\nHost: vn-backend\r\nConnection: close\r\n\r\n")
        response = http.client.HTTPResponse(wrapped)  # type: ignore[arg-type]
        response.begin()
        assert (response.status, response.read()) == (200, b"backend")
    assert der is not None
    return x509.load_der_x509_certificate(der)


@pytest.mark.parametrize("delta", [False, True], ids=["sotw", "delta"])
def test_automatic_mtls_serves_sds_certificates_and_rotates_them_under_traffic(
    app_port: int, tmp_path: Path, delta: bool
) -> None:
    """Mesh tag STRICT: calls succeed over mTLS, plaintext and certificate-less clients are
    refused, the backend's certificate chains to ca.pem with its SPIFFE ID, and rotations
    bring new serials while no request fails — over SotW and over delta ADS alike."""
    data = tmp_path / "data"
    config = settings.load(environ={}, data_dir=data, api_port=0, xds_port=0, cert_ttl=TTL_S)
    ingress, egress = _free_port(), _free_port()

    async def scenario() -> None:
        async with app.running(app.build(config)) as plane:
            svc = plane.services.resources
            svc.create(
                kinds.MESH,
                "demos",
                "demos",
                {},
                tags=[{"key": "meshplane.dev/mtls", "value": "STRICT"}],
            )
            svc.create(kinds.VIRTUAL_NODE, "demos", "vn-backend", _node("backend"))
            provider = {"provider": {"virtualNode": {"virtualNodeName": "vn-backend"}}}
            svc.create(kinds.VIRTUAL_SERVICE, "demos", "vs-backend", provider)
            svc.create(kinds.VIRTUAL_NODE, "demos", "vn-frontend", _node("fe", ["vs-backend"]))
            pipe = tmp_path / "backend.admin"
            with _two_sidecars(plane, tmp_path, app_port, ingress, egress, pipe, delta=delta):
                await _synced(plane, "mesh/demos/virtualNode/vn-backend#backend-0")
                await _synced(plane, "mesh/demos/virtualNode/vn-frontend#frontend-0")
                await _check(ingress, egress, data)
                await _proxy_config(plane.api_port, data)

    asyncio.run(scenario())


async def _check(ingress: int, egress: int, data: Path) -> None:
    ca_file = data / "ca" / "ca.pem"
    assert (data / "ca" / "ca-key.pem").stat().st_mode & 0o777 == 0o600
    ca = authority.load_or_create(data / "ca", system_clock)
    probe = ca.issue("spiffe://meshplane.local/mesh/demos/virtualNode/probe", 600)
    (data / "probe.pem").write_bytes(probe.chain_pem)
    (data / "probe-key.pem").write_bytes(probe.key_pem)
    client = (data / "probe.pem", data / "probe-key.pem")
    root = x509.load_pem_x509_certificate(ca_file.read_bytes())

    assert await asyncio.to_thread(_call, egress) == (200, "backend")
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        _plain(ingress)
    with pytest.raises((ssl.SSLError, ConnectionError, http.client.HTTPException)):
        await asyncio.to_thread(_peer, ingress, ca_file, None)

    first = await asyncio.to_thread(_peer, ingress, ca_file, client)
    first.verify_directly_issued_by(root)
    sans = first.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.UniformResourceIdentifier) == [BACKEND_ID]

    # Rotation under traffic: keep calling until the backend presents two newer serials.
    serials = [first.serial_number]
    calls = 0
    async with asyncio.timeout(60):
        while len(set(serials)) < 3:
            assert await asyncio.to_thread(_call, egress) == (200, "backend")
            calls += 1
            current = await asyncio.to_thread(_peer, ingress, ca_file, client)
            current.verify_directly_issued_by(root)
            serials.append(current.serial_number)
    assert calls > 0
    assert len(set(serials)) == 3


async def _proxy_config(api_port: int, data: Path) -> None:
    """`meshplane proxy-config vn-backend` shows the SDS secrets and the mTLS listener."""
    # Signed as the data dir's administrator, as every meshplane command is by default.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["MESHPLANE_DATA_DIR"] = str(data)

    def run(*args: str, output: str = "json") -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "meshplane.cli.main", "proxy-config", "vn-backend", *args]
        argv += ["--server", f"http://127.0.0.1:{api_port}", "-o", output]
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=60, env=env, check=False
        )
        assert done.returncode == 0, done.stderr
        return done

    secrets = (await asyncio.to_thread(run, "secrets")).stdout
    assert "PRIVATE KEY" not in secrets
    shown = json.loads(secrets)
    assert shown["key"] == "mesh/demos/virtualNode/vn-backend#backend-0"
    assert [(s["name"], s["kind"], s["sans"]) for s in shown["secrets"]] == [
        ("spiffe://meshplane.local", "trust", []),
        (BACKEND_ID, "certificate", [BACKEND_ID]),
    ]
    listeners = json.loads((await asyncio.to_thread(run, "listeners")).stdout)["listeners"]
    chains = {
        (listener["direction"], chain["name"], chain["tls"], chain["mode"])
        for listener in listeners
        for chain in listener["chains"]
    }
    assert chains == {
        ("INBOUND", "http_80", "mTLS", "STRICT"),
        ("OUTBOUND", "http", "plaintext", "DISABLED"),
    }
    as_yaml = (await asyncio.to_thread(run, "secrets", output="yaml")).stdout
    assert "PRIVATE KEY" not in as_yaml
    # The same document as YAML (serials move on: certificates here live 3 s).
    again = yaml.safe_load(as_yaml)
    assert [(s["name"], s["kind"], s["sans"]) for s in again["secrets"]] == [
        (s["name"], s["kind"], s["sans"]) for s in shown["secrets"]
    ]
    assert again["key"] == shown["key"]

    # Envoy's own view, read by the control plane from the sidecar's admin socket.
    for output, load in (("json", json.loads), ("yaml", yaml.safe_load)):
        text = (await asyncio.to_thread(run, "--envoy", output=output)).stdout
        assert "PRIVATE KEY" not in text
        dump = load(text)
        assert dump["key"] == "mesh/demos/virtualNode/vn-backend#backend-0"
        configs = {c["@type"].rsplit(".", 1)[-1]: c for c in dump["configDump"]["configs"]}
        active = configs["SecretsConfigDump"]["dynamic_active_secrets"]
        served = {s["name"]: s["secret"] for s in active}
        assert sorted(served) == ["spiffe://meshplane.local", BACKEND_ID]
        assert served[BACKEND_ID]["tls_certificate"]["private_key"] == "[redacted]"
        listeners = configs["ListenersConfigDump"]["dynamic_listeners"]
        assert len(listeners) == 2


def test_turning_on_automatic_mtls_on_a_running_mesh_converges_without_gate_timeouts(
    app_port: int, tmp_path: Path
) -> None:
    """Tagging a live plaintext mesh STRICT re-secures its clusters in place: every proxy
    syncs without a make-before-break step waiting out its ACK timeout, and calls succeed."""
    config = settings.load(environ={}, data_dir=tmp_path / "data", api_port=0, xds_port=0)
    ingress, egress = _free_port(), _free_port()

    async def scenario() -> None:
        async with app.running(app.build(config)) as plane:
            svc = plane.services.resources
            mesh = svc.create(kinds.MESH, "demos", "demos", {})
            svc.create(kinds.VIRTUAL_NODE, "demos", "vn-backend", _node("backend"))
            provider = {"provider": {"virtualNode": {"virtualNodeName": "vn-backend"}}}
            svc.create(kinds.VIRTUAL_SERVICE, "demos", "vs-backend", provider)
            svc.create(kinds.VIRTUAL_NODE, "demos", "vn-frontend", _node("fe", ["vs-backend"]))
            with _two_sidecars(plane, tmp_path, app_port, ingress, egress):
                for key in KEYS:
                    await _synced(plane, key)
                assert await asyncio.to_thread(_call, egress) == (200, "backend")
                plane.services.tagging.tag(
                    mesh["metadata"]["arn"], [{"key": "meshplane.dev/mtls", "value": "STRICT"}]
                )
                await _converged(plane)
                status = {k: plane.ads.status.node(k) for k in KEYS}
                assert {k: s.gate_timeouts for k, s in status.items() if s} == dict.fromkeys(
                    KEYS, 0
                )
                assert await asyncio.to_thread(_call, egress) == (200, "backend")
                with pytest.raises((ConnectionError, http.client.HTTPException)):
                    _plain(ingress)

    asyncio.run(scenario())


MISMATCH_MESH = """
apiVersion: v1
kind: Namespace
metadata: {name: demos, labels: {mesh: demos}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: Mesh
metadata:
  name: demos
  annotations: {"meshplane.dev/mtls": STRICT}
spec:
  namespaceSelector: {matchLabels: {mesh: demos}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: vn-backend, namespace: demos}
spec:
  awsName: vn-backend
  podSelector: {matchLabels: {app: backend}}
  listeners:
    - portMapping: {port: 80, protocol: http}
  serviceDiscovery: {dns: {hostname: backend}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualService
metadata: {name: vs-backend, namespace: demos}
spec:
  awsName: vs-backend
  provider: {virtualNode: {virtualNodeRef: {name: vn-backend}}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: vn-frontend, namespace: demos}
spec:
  awsName: vn-frontend
  podSelector: {matchLabels: {app: frontend}}
  listeners:
    - portMapping: {port: 80, protocol: http}
  serviceDiscovery: {dns: {hostname: frontend}}
  backends:
    - virtualService:
        virtualServiceRef: {name: vs-backend}
        clientPolicy:
          tls:
            certificate:
              sds: {secretName: "spiffe://example.org/mesh/demos/virtualNode/vn-frontend"}
            validation:
              trust: {sds: {secretName: "spiffe://example.org"}}
              subjectAlternativeNames: {match: {exact: ["%s"]}}
"""
DOMAIN_BACKEND = "spiffe://example.org/mesh/demos/virtualNode/vn-backend"


def _cli(api_port: int, data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """One `meshplane` command against the in-process plane, signed as its administrator."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["MESHPLANE_DATA_DIR"] = str(data)
    argv = [sys.executable, "-m", "meshplane.cli.main", *args]
    argv += ["--server", f"http://127.0.0.1:{api_port}"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env, check=False)


def _refused(egress: int) -> int:
    """The status the frontend's sidecar answers when its TLS call cannot be made."""
    try:
        return _call(egress)[0]
    except urllib.error.HTTPError as error:
        return error.code


def test_a_san_mismatch_fails_the_calls_and_proxy_status_and_describe_say_why(
    app_port: int, tmp_path: Path
) -> None:
    """A client policy accepting another SAN than the backend's SPIFFE ID (trust domain
    example.org, mTLS from the Mesh annotation): calls fail with 503, proxy-status of both
    proxies and describe of both nodes name both SANs; the right SAN makes calls succeed."""
    data = tmp_path / "data"
    config = settings.load(
        environ={}, data_dir=data, api_port=0, xds_port=0, trust_domain="example.org"
    )
    ingress, egress = _free_port(), _free_port()
    wrong = "spiffe://example.org/mesh/demos/virtualNode/vn-payments"
    why = (
        "mesh/demos/virtualNode/vn-frontend: calls to vn-backend port 80 fail: the client "
        f"policy accepts SAN {wrong} but vn-backend's certificate carries {DOMAIN_BACKEND}"
    )

    async def scenario() -> None:
        async with app.running(app.build(config)) as plane:
            applied = plane.front_door.apply([("mesh.yaml", MISMATCH_MESH % wrong)], None)
            assert [o.action for o in applied] == ["created"] * 5
            with _two_sidecars(plane, tmp_path, app_port, ingress, egress):
                await _converged(plane)
                assert await asyncio.to_thread(_refused, egress) == 503
                status = await asyncio.to_thread(
                    _cli, plane.api_port, data, "proxy-status", "-o", "json"
                )
                notes = {p["key"]: p["warnings"] for p in json.loads(status.stdout)["proxies"]}
                assert notes == {KEYS[0]: [why], KEYS[1]: [why]}
                for node in ("vn-backend", "vn-frontend"):
                    page = await asyncio.to_thread(
                        _cli, plane.api_port, data, "describe", "vn", node, "-n", "demos"
                    )
                    assert page.returncode == 0, page.stderr
                    lines = page.stdout.splitlines()
                    assert "    Reason:                SubjectAlternativeNameMismatch" in lines
                    assert f"    Message:               {why}" in lines

                plane.front_door.apply([("mesh.yaml", MISMATCH_MESH % DOMAIN_BACKEND)], None)
                await _converged(plane)
                assert await asyncio.to_thread(_call, egress) == (200, "backend")
                status = await asyncio.to_thread(
                    _cli, plane.api_port, data, "proxy-status", "-o", "json"
                )
                notes = {p["key"]: p["warnings"] for p in json.loads(status.stdout)["proxies"]}
                assert notes == {KEYS[0]: [], KEYS[1]: []}

    asyncio.run(scenario())


def test_a_certificate_rotation_pushes_only_secrets(tmp_path: Path) -> None:
    """Two rotations over one ADS stream: SDS is pushed each time, LDS/CDS/RDS never again."""
    config = settings.load(
        environ={}, data_dir=tmp_path / "data", api_port=0, xds_port=0, cert_ttl=2
    )
    node_id = "mesh/demos/virtualNode/vn-backend"
    key = f"{node_id}#r0"

    async def scenario() -> None:
        async with app.running(app.build(config)) as plane:
            svc = plane.services.resources
            tag = [{"key": "meshplane.dev/mtls", "value": "STRICT"}]
            svc.create(kinds.MESH, "demos", "demos", {}, tags=tag)
            svc.create(kinds.VIRTUAL_NODE, "demos", "vn-backend", _node("backend"))
            assert plane.services.credentials is not None
            token = plane.services.credentials.issue(node_id, "r0").token
            meta = {"ingress": {"80": _free_port()}, "egress": _free_port()}
            pushes: collections.Counter[str] = collections.Counter()
            serials: list[int] = []
            async with FakeAdsClient(
                plane.xds_port, node_id, "r0", credential=token, metadata=meta
            ) as sidecar:
                await sidecar.request(types.CLUSTER)
                await sidecar.request(types.LISTENER)
                subscribed = False
                async with asyncio.timeout(30):
                    while len(set(serials)) < 3:
                        response = await sidecar.receive()
                        pushes[response.type_url] += 1
                        await sidecar.ack(response)
                        if response.type_url == types.SECRET:
                            serials.append(_served_serial(response, BACKEND_ID))
                        if not subscribed and pushes[types.LISTENER] and pushes[types.CLUSTER]:
                            subscribed = True
                            snapshot = plane.cache.snapshot(key)
                            assert snapshot is not None
                            for child in (types.ROUTE, types.SECRET):
                                await sidecar.request(child, sorted(snapshot.resources(child)))
            assert len(set(serials)) == 3
            assert {t.rsplit(".", 1)[-1]: n for t, n in pushes.items()} == {
                "Listener": 1,
                "Cluster": 1,
                "RouteConfiguration": 1,
                "Secret": len(serials),
            }

    asyncio.run(scenario())


def _served_serial(response: discovery_pb2.DiscoveryResponse, name: str) -> int:
    """The serial number of the certificate secret ``name`` in an SDS response."""
    for packed in response.resources:
        secret = secret_pb2.Secret()
        packed.Unpack(secret)
        if secret.name == name:
            chain = secret.tls_certificate.certificate_chain.inline_bytes
            return x509.load_pem_x509_certificate(chain).serial_number
    raise AssertionError(f"no secret {name} in the response")


PCA_A = "arn:aws:acm-pca:us-west-2:111122223333:certificate-authority/a"
PCA_B = "arn:aws:acm-pca:us-west-2:111122223333:certificate-authority/b"
ACM_BACKEND = "arn:aws:acm:us-west-2:111122223333:certificate/backend"


def _acm_caller(pca: str) -> dict[str, object]:
    spec = _node("fe", ["vs-backend"])
    trust = {"acm": {"certificateAuthorityArns": [pca]}}
    spec["backendDefaults"] = {"clientPolicy": {"tls": {"validation": {"trust": trust}}}}
    return spec


def test_two_pca_arns_are_two_trust_roots_between_real_envoys(
    app_port: int, tmp_path: Path
) -> None:
    """The backend's ACM certificate comes from PCA B's CA: a caller trusting PCA A refuses
    it (503), the same caller trusting PCA B calls it (200); the CAs are distinct roots."""
    data = tmp_path / "data"
    authorities.install(data / "ca", PCA_A, system_clock)
    authorities.install(data / "ca", PCA_B, system_clock, certificates=[ACM_BACKEND])
    config = settings.load(environ={}, data_dir=data, api_port=0, xds_port=0)
    ingress, egress = _free_port(), _free_port()

    async def scenario() -> None:
        async with app.running(app.build(config)) as plane:
            svc = plane.services.resources
            svc.create(kinds.MESH, "demos", "demos", {})
            backend_spec = _node("backend")
            backend_spec["listeners"] = [
                {
                    "portMapping": {"port": 80, "protocol": "http"},
                    "tls": {
                        "mode": "STRICT",
                        "certificate": {"acm": {"certificateArn": ACM_BACKEND}},
                    },
                }
            ]
            svc.create(kinds.VIRTUAL_NODE, "demos", "vn-backend", backend_spec)
            provider = {"provider": {"virtualNode": {"virtualNodeName": "vn-backend"}}}
            svc.create(kinds.VIRTUAL_SERVICE, "demos", "vs-backend", provider)
            svc.create(kinds.VIRTUAL_NODE, "demos", "vn-frontend", _acm_caller(PCA_A))
            with _two_sidecars(plane, tmp_path, app_port, ingress, egress):
                await _converged(plane)
                assert await asyncio.to_thread(_refused, egress) == 503
                svc.update(kinds.VIRTUAL_NODE, "demos", "vn-frontend", _acm_caller(PCA_B))
                await _converged(plane)
                assert await asyncio.to_thread(_call, egress) == (200, "backend")

    asyncio.run(scenario())
    roots = [
        x509.load_pem_x509_certificate(
            (authorities.directory_of(data / "ca", arn) / "ca.pem").read_bytes()
        )
        for arn in (PCA_A, PCA_B)
    ]
    builtin = x509.load_pem_x509_certificate((data / "ca" / "ca.pem").read_bytes())
    assert len({root.fingerprint(hashes.SHA256()) for root in [*roots, builtin]}) == 3
