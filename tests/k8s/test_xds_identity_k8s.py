"""Injected sidecars prove who they are with their pod's service-account token (real API server).

The pod is created through meshplane's injector (so its shape is the mutated pod the API
server stored), its token is minted by the API server's TokenRequest bound to that pod,
and ``meshplane k8s`` checks it with a real TokenReview.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from meshplane.auth import streams
from meshplane.auth.principals import Principals
from meshplane.envoy import binary, bootstrapping
from meshplane.envoy import resources as envoy_resources
from meshplane.kit.clock import system_clock
from meshplane.testing import FakeAdsClient

from . import cluster as k8s
from . import replicas, tokens

DEADLINE = 60.0
HANG_GUARD = 60.0
"""Bounds an await that must complete (a hang is then a failure, not a stuck run)."""


@pytest.fixture
def replica(cluster: k8s.Cluster, tmp_path: Path) -> Iterator[replicas.Replica]:
    """A replica with pod-token identity, the auto (native) layout and a 1 s resync."""
    replicas.install_crds(cluster)
    running = replicas.Replica(
        cluster, tmp_path / "replica", xds_identity=True, sidecar_layout="auto", resync=1.0
    )
    try:
        replicas.wait_for_webhooks(cluster)
        yield running
    finally:
        running.stop()


def _mesh_and_nodes(cluster: k8s.Cluster, namespace: str) -> tuple[str, str]:
    """A mesh selecting ``namespace`` and nodes vn-a (port 8080) and vn-b; their node ids."""
    mesh = f"mesh-{namespace}"
    cluster.kubectl(
        "label",
        "namespace",
        namespace,
        f"mesh={mesh}",
        "appmesh.k8s.aws/sidecarInjectorWebhook=enabled",
    )
    documents: list[dict[str, Any]] = [
        {
            "apiVersion": "appmesh.k8s.aws/v1beta2",
            "kind": "Mesh",
            "metadata": {"name": mesh},
            "spec": {"namespaceSelector": {"matchLabels": {"mesh": mesh}}},
        }
    ]
    for name, port in (("vn-a", 8080), ("vn-b", 9090)):
        documents.append(
            {
                "apiVersion": "appmesh.k8s.aws/v1beta2",
                "kind": "VirtualNode",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {
                    "awsName": name,
                    "podSelector": {"matchLabels": {"app": name}},
                    "listeners": [{"portMapping": {"port": port, "protocol": "http"}}],
                    "serviceDiscovery": {"dns": {"hostname": f"{name}.{namespace}.svc"}},
                },
            }
        )
    cluster.apply(*documents)

    def active() -> bool:
        found = cluster.kubectl_json("get", "virtualnodes", "-n", namespace)["items"]
        return (
            len(found) == 2
            and all(
                c["type"] == "VirtualNodeActive" and c["status"] == "True"
                for n in found
                for c in (n.get("status") or {}).get("conditions") or []
            )
            and all((n.get("status") or {}).get("conditions") for n in found)
        )

    k8s.poll(active, DEADLINE, "both virtual nodes Active")
    return f"mesh/{mesh}/virtualNode/vn-a", f"mesh/{mesh}/virtualNode/vn-b"


def _pod(cluster: k8s.Cluster, namespace: str, name: str, app: str) -> dict[str, Any]:
    """Create a Pod through the injector (service account ``default``); the stored object."""
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": {"app": app}},
            "spec": {
                "serviceAccountName": "default",
                "containers": [{"name": "app", "image": "registry.invalid/echo:1"}],
            },
        }
    )
    found: dict[str, Any] = cluster.kubectl_json("get", "pod", name, "-n", namespace)
    return found


def _token(
    cluster: k8s.Cluster, namespace: str, pod: str | None, audience: str = "meshplane"
) -> str:
    """A TokenRequest token of ``default``, bound to ``pod`` unless None."""
    args = ["create", "token", "default", "-n", namespace, "--audience", audience]
    if pod is not None:
        args += ["--bound-object-kind", "Pod", "--bound-object-name", pod]
    return cluster.kubectl(*args).stdout.strip()


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env") or []}


def _bootstrap(container: dict[str, Any]) -> dict[str, Any]:
    args = container["args"]
    found: dict[str, Any] = json.loads(args[args.index("--config-yaml") + 1])
    return found


def test_the_injected_pod_is_a_native_sidecar_with_token_ca_and_intercepted_metadata(
    cluster: k8s.Cluster, replica: replicas.Replica, namespace: str
) -> None:
    """On 1.37: proxyinit then envoy (restartPolicy Always, startup probe), token + CA volumes."""
    node_a, _ = _mesh_and_nodes(cluster, namespace)
    pod = _pod(cluster, namespace, "a-1", "vn-a")
    spec = pod["spec"]
    assert [c["name"] for c in spec["containers"]] == ["app"]
    proxyinit, envoy = spec["initContainers"]
    assert proxyinit["name"] == "proxyinit"
    assert _env(proxyinit) == {
        "APPMESH_START_ENABLED": "1",
        "APPMESH_IGNORE_UID": "1337",
        "APPMESH_ENVOY_INGRESS_PORT": "15000",
        "APPMESH_ENVOY_EGRESS_PORT": "15001",
        "APPMESH_APP_PORTS": "8080",
        "APPMESH_EGRESS_IGNORED_IP": "169.254.169.254",
        "APPMESH_EGRESS_IGNORED_PORTS": "22",
        "APPMESH_ENABLE_IPV6": "1",
    }
    assert envoy["name"] == "envoy"
    assert envoy["restartPolicy"] == "Always"
    assert envoy["startupProbe"]["httpGet"] == {"path": "/ready", "port": 9901, "scheme": "HTTP"}
    assert envoy["readinessProbe"]["httpGet"] == {"path": "/ready", "port": 9901, "scheme": "HTTP"}
    assert "lifecycle" not in envoy
    assert _env(envoy)["APPMESH_RESOURCE_ARN"] == node_a
    assert envoy["volumeMounts"] == [
        {"name": "meshplane-token", "mountPath": "/var/run/secrets/meshplane", "readOnly": True},
        {
            "name": "meshplane-xds-ca",
            "mountPath": "/var/run/secrets/meshplane-ca",
            "readOnly": True,
        },
    ]
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["meshplane-token"]["projected"]["sources"] == [
        {
            "serviceAccountToken": {
                "audience": "meshplane",
                "expirationSeconds": 3600,
                "path": "token",
            }
        }
    ]
    assert volumes["meshplane-xds-ca"]["downwardAPI"]["items"] == [
        {
            "path": "ca.pem",
            "fieldRef": {
                "apiVersion": "v1",
                "fieldPath": "metadata.annotations['meshplane.dev/xds-ca']",
            },
        }
    ]
    assert pod["metadata"]["annotations"]["meshplane.dev/xds-ca"] == replica.ca_file.read_text()
    bootstrap = _bootstrap(envoy)
    assert bootstrap["node"]["metadata"] == {
        "meshplane": {"bind": "0.0.0.0", "interception": "iptables"}
    }
    (service,) = bootstrap["dynamic_resources"]["ads_config"]["grpc_services"]
    google = service["google_grpc"]
    assert google["target_uri"] == f"127.0.0.1:{replica.xds_tls_port}"
    assert google["channel_credentials"] == {
        "ssl_credentials": {"root_certs": {"filename": "/var/run/secrets/meshplane-ca/ca.pem"}}
    }
    plugin = google["call_credentials"][0]["from_plugin"]["typed_config"]
    assert plugin["secret_data"] == {"filename": "/var/run/secrets/meshplane/token"}
    assert plugin["header_prefix"] == "Bearer "


def _client(replica: replicas.Replica, node: str, token: str | None) -> FakeAdsClient:
    metadata = [("authorization", f"Bearer {token}")] if token is not None else []
    return FakeAdsClient(
        replica.xds_tls_port,
        node,
        call_metadata=metadata,
        root_certificates=replica.ca_file.read_bytes(),
        server_name="127.0.0.1",
    )


async def _refusal(replica: replicas.Replica, node: str, token: str | None) -> tuple[Any, str]:
    async with _client(replica, node, token) as client:
        await client.request(envoy_resources.CLUSTER)
        return await asyncio.wait_for(client.ended(), HANG_GUARD)


async def _admitted_then_revoked(
    replica: replicas.Replica, node: str, token: str, delete: Any
) -> tuple[str, tuple[Any, str]]:
    """Open a stream, read its first response, run ``delete``, then how the stream ended."""
    async with _client(replica, node, token) as client:
        await client.request(envoy_resources.CLUSTER)
        first = await asyncio.wait_for(client.receive(), HANG_GUARD)
        await asyncio.to_thread(delete)
        return first.type_url, await asyncio.wait_for(client.until_ended(), HANG_GUARD)


def test_pod_tokens_admit_only_their_node_and_a_deleted_pod_is_disconnected(
    cluster: k8s.Cluster, replica: replicas.Replica, namespace: str
) -> None:
    """Own node in; other node PERMISSION_DENIED; bad tokens UNAUTHENTICATED; pod deleted: ends."""
    node_a, node_b = _mesh_and_nodes(cluster, namespace)
    _pod(cluster, namespace, "a-1", "vn-a")
    token = _token(cluster, namespace, "a-1")
    unauthenticated = grpc.StatusCode.UNAUTHENTICATED

    code, details = asyncio.run(_refusal(replica, node_b, token))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert details == f"pod {namespace}/a-1 was injected for {node_a}, not for {node_b}"

    code, details = asyncio.run(_refusal(replica, node_a, None))
    assert code == unauthenticated
    assert details.startswith(f"{node_a}: no service-account token (authorization: Bearer")

    code, details = asyncio.run(_refusal(replica, node_a, "not-a-token"))
    assert code == unauthenticated
    assert details.startswith(f"{node_a}: the service-account token was refused by the API server")

    code, details = asyncio.run(
        _refusal(replica, node_a, _token(cluster, namespace, "a-1", "other"))
    )
    assert code == unauthenticated
    assert details.startswith(f"{node_a}: the service-account token was refused by the API server")

    code, details = asyncio.run(_refusal(replica, node_a, _token(cluster, namespace, None)))
    assert code == unauthenticated
    assert details == (
        f"{node_a}: the token of system:serviceaccount:{namespace}:default is not a pod's "
        "projected token; the sidecar must send its pod's token (audience meshplane)"
    )

    def delete() -> None:
        cluster.kubectl("delete", "pod", "a-1", "-n", namespace, "--wait=false")

    type_url, (code, details) = asyncio.run(_admitted_then_revoked(replica, node_a, token, delete))
    assert type_url == envoy_resources.CLUSTER
    assert code == unauthenticated
    assert details in (
        f"{node_a}: pod {namespace}/a-1 no longer exists",
        # The API server may refuse the bound token first, once its pod is gone.
        f"{node_a}: the service-account token was refused by the API server: "
        "[invalid bearer token, service account token has been invalidated]",
    )


def test_a_real_envoy_with_the_injected_bootstrap_is_served_until_its_pod_is_deleted(
    cluster: k8s.Cluster, replica: replicas.Replica, namespace: str, tmp_path: Path
) -> None:
    """Envoy runs the pod's own bootstrap (token file, CA): ACKed; pod deleted → disconnected."""
    node_a, _ = _mesh_and_nodes(cluster, namespace)
    pod = _pod(cluster, namespace, "a-2", "vn-a")
    (envoy_container,) = [c for c in pod["spec"]["initContainers"] if c["name"] == "envoy"]
    bootstrap = _bootstrap(envoy_container)
    ca = tmp_path / "ca.pem"
    ca.write_text(pod["metadata"]["annotations"]["meshplane.dev/xds-ca"])
    token = tmp_path / "token"
    token.write_text(_token(cluster, namespace, "a-2"))  # kubelet writes it without a newline
    google = bootstrap["dynamic_resources"]["ads_config"]["grpc_services"][0]["google_grpc"]
    google["channel_credentials"]["ssl_credentials"]["root_certs"]["filename"] = str(ca)
    plugin = google["call_credentials"][0]["from_plugin"]["typed_config"]
    plugin["secret_data"]["filename"] = str(token)
    # Off the pod: admin on a free loopback port instead of 0.0.0.0:9901.
    bootstrap["admin"]["address"]["socket_address"] = {"address": "127.0.0.1", "port_value": 0}
    address = tmp_path / "admin.txt"
    log = tmp_path / "envoy.log"
    argv = bootstrapping.command(
        bootstrap, binary=binary.binary_path(), admin_address_path=address, log_level="info"
    )
    with log.open("wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:

        def proxy(state: str) -> bool:
            if process.poll() is not None:
                raise AssertionError(f"envoy exited:\n{log.read_text()[-3000:]}")
            return any(p["nodeId"] == node_a and p["state"] == state for p in replica.proxies())

        k8s.poll(lambda: proxy("SYNCED"), DEADLINE, "the pod's Envoy SYNCED")
        cluster.kubectl("delete", "pod", "a-2", "-n", namespace, "--wait=false")
        k8s.poll(lambda: proxy("DISCONNECTED"), DEADLINE, "the Envoy disconnected")
        assert process.poll() is None  # Envoy keeps running on its last config
        assert "gRPC config stream to" in log.read_text()
        assert "closed: 16" in log.read_text()  # UNAUTHENTICATED, then refused on reconnect
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_a_second_replica_adopts_the_first_ones_ca_from_the_secret(
    cluster: k8s.Cluster, replica: replicas.Replica, tmp_path: Path
) -> None:
    """Secret meshplane-ca holds the CA; another replica signs with the very same one."""
    secret = cluster.kubectl_json("get", "secret", "meshplane-ca", "-n", "default")
    assert sorted(secret["data"]) == ["ca-key.pem", "ca.pem"]
    other = replicas.Replica(cluster, tmp_path / "other", register_webhooks=False)
    try:
        assert other.ca_file.read_text() == replica.ca_file.read_text()
        assert (other.ca_file.parent / "ca-key.pem").read_bytes() == (
            replica.ca_file.parent / "ca-key.pem"
        ).read_bytes()
    finally:
        other.stop()


def test_an_aws_image_style_signed_stream_is_served_beside_pod_tokens(
    cluster: k8s.Cluster, namespace: str, tmp_path: Path
) -> None:
    """meshplane k8s with identity on: a SigV4-signed stream of an allowed principal is served."""
    replicas.install_crds(cluster)
    data = tmp_path / "replica" / "data"
    envoy = Principals(data, system_clock).create(
        "envoy",
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "appmesh:StreamAggregatedResources",
                    "Resource": f"arn:aws:appmesh:us-west-2:123456789012:mesh/mesh-{namespace}/*",
                }
            ],
        },
    )
    running = replicas.Replica(
        cluster, tmp_path / "replica", xds_identity=True, auth="sigv4", register_webhooks=False
    )
    try:
        node_a, _ = _mesh_and_nodes(cluster, namespace)
        host = f"127.0.0.1:{running.xds_tls_port}"
        request = AWSRequest(
            method="POST",
            url=f"https://{host}{streams.ADS_PATH}",
            data=b"",
            headers={"x-amz-content-sha256": hashlib.sha256(b"").hexdigest()},
        )
        credentials = Credentials(envoy.access_key_id, envoy.secret_access_key)
        SigV4Auth(credentials, "appmesh", "us-west-2").add_auth(request)
        metadata = [(k.lower(), v) for k, v in request.headers.items() if k.lower() != "host"]

        async def first() -> str:
            client = FakeAdsClient(
                running.xds_tls_port,
                node_a,
                call_metadata=metadata,
                root_certificates=running.ca_file.read_bytes(),
                server_name="127.0.0.1",
            )
            async with client as stream:
                await stream.request(envoy_resources.CLUSTER)
                response = await asyncio.wait_for(stream.receive(), HANG_GUARD)
                return str(response.type_url)

        def served() -> bool:
            try:
                return asyncio.run(first()) == envoy_resources.CLUSTER
            except grpc.aio.AioRpcError as error:
                if "is starting" in str(error.details()):
                    return False  # the Kubernetes side not up yet
                raise

        assert k8s.poll(served, DEADLINE, "the signed stream served")
    finally:
        running.stop()
        # It stored its principals as the shared Secret: leave none for other tests to adopt.
        cluster.kubectl(
            "delete", "secret", "meshplane-principals", "-n", "default", "--ignore-not-found"
        )


def _review(cluster: k8s.Cluster, token: str) -> dict[str, Any]:
    """A TokenReview (audience meshplane) by the API server itself: its status."""
    review = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenReview",
        "spec": {"token": token, "audiences": ["meshplane"]},
    }
    done = cluster.kubectl("create", "-o", "json", "-f", "-", stdin=json.dumps(review))
    status: dict[str, Any] = json.loads(done.stdout)["status"]
    return status


LIFE = 8
"""Seconds the short-lived token is still accepted when the test starts with it."""


def test_a_sidecar_whose_token_expires_is_disconnected_by_the_next_resync(
    cluster: k8s.Cluster, replica: replicas.Replica, namespace: str
) -> None:
    """A pod token the API server accepts for LIFE s more: served, then ended as expired."""
    node_a, _ = _mesh_and_nodes(cluster, namespace)
    pod = _pod(cluster, namespace, "a-3", "vn-a")
    minted = _token(cluster, namespace, "a-3")
    exp = int(time.time()) - tokens.LEEWAY + LIFE
    token = tokens.expiring_at(minted, tokens.signing_key(cluster), exp)
    claims = tokens.claims(token)
    assert claims["kubernetes.io"]["pod"] == {"name": "a-3", "uid": pod["metadata"]["uid"]}
    assert claims["exp"] == exp
    accepted = _review(cluster, token)
    assert accepted["authenticated"] is True
    assert accepted["user"]["extra"]["authentication.kubernetes.io/pod-uid"] == [
        pod["metadata"]["uid"]
    ]

    async def served_then_ended() -> tuple[str, tuple[Any, str]]:
        async with _client(replica, node_a, token) as client:
            await client.request(envoy_resources.CLUSTER)
            first = await asyncio.wait_for(client.receive(), HANG_GUARD)
            return first.type_url, await asyncio.wait_for(client.until_ended(), HANG_GUARD)

    type_url, (code, details) = asyncio.run(served_then_ended())
    assert type_url == envoy_resources.CLUSTER
    refused = _review(cluster, token)
    assert refused.get("authenticated") is not True
    expired = "[invalid bearer token, service account token has expired]"
    assert refused["error"] == expired
    assert code == grpc.StatusCode.UNAUTHENTICATED
    assert (
        details == f"{node_a}: the service-account token was refused by the API server: {expired}"
    )
    assert int(time.time()) >= exp + tokens.LEEWAY  # the API server's verdict, not meshplane's


def test_a_token_whose_pod_was_recreated_under_its_name_is_disconnected(
    cluster: k8s.Cluster, replica: replicas.Replica, namespace: str
) -> None:
    """Pod deleted and created again with its name: the old pod's token no longer validates."""
    node_a, _ = _mesh_and_nodes(cluster, namespace)
    old_uid = _pod(cluster, namespace, "a-4", "vn-a")["metadata"]["uid"]
    token = _token(cluster, namespace, "a-4")
    uids: list[str] = []

    def recreate() -> None:
        cluster.kubectl("delete", "pod", "a-4", "-n", namespace, "--wait=true")
        uids.append(_pod(cluster, namespace, "a-4", "vn-a")["metadata"]["uid"])

    type_url, (code, details) = asyncio.run(
        _admitted_then_revoked(replica, node_a, token, recreate)
    )
    (new_uid,) = uids
    assert new_uid != old_uid
    mismatch = (
        f"[invalid bearer token, pod UID ({new_uid}) does not match service account pod ref "
        f"claim ({old_uid})]"
    )
    refused = f"{node_a}: the service-account token was refused by the API server: "
    assert type_url == envoy_resources.CLUSTER
    assert code == grpc.StatusCode.UNAUTHENTICATED
    assert details in (
        # A resync between the delete and the create: the pod is gone.
        f"{node_a}: pod {namespace}/a-4 no longer exists",
        f"{refused}[invalid bearer token, service account token has been invalidated]",
        # After the create: the API server compares the bound uid with the new pod's.
        f"{refused}{mismatch}",
        f"{node_a}: pod {namespace}/a-4 was replaced (another uid)",
    )
    # The API server checks the bound pod against its own cache of pods, which may still hold
    # the old one for a moment (meshplane reads the pod itself, so its check does not wait).
    status = k8s.poll(
        lambda: (found := _review(cluster, token)).get("authenticated") is not True and found,
        DEADLINE,
        "the API server refusing the recreated pod's old token",
    )
    assert status["error"] == mismatch
