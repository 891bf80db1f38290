"""Every replica knows every principal: they live in Secret meshplane-principals (real API server).

Two ``meshplane k8s`` replicas with SigV4 on: the second adopts the first one's
administrator; a principal created through one replica's API signs an aws-appmesh-envoy
style ADS stream on the other, and once deleted through the other it is refused by both.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from pathlib import Path

import grpc
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from meshplane.auth import streams
from meshplane.client.meshplane import MeshplaneClient
from meshplane.client.transport import Signer, Transport
from meshplane.envoy import resources as envoy_resources
from meshplane.testing import FakeAdsClient

from . import cluster as k8s
from . import replicas
from .test_xds_identity_k8s import _mesh_and_nodes

DEADLINE = 60.0
HANG_GUARD = 60.0
SECRET = "meshplane-principals"


def _admin(replica: replicas.Replica) -> MeshplaneClient:
    """The replica's ``/meshplane/v1`` signed as the administrator of its data dir."""
    signer = Signer.from_file(replica.workdir / "data" / "credentials", "us-west-2")
    return MeshplaneClient(Transport(replica.url, signer=signer))


def _signed(replica: replicas.Replica, key_id: str, secret: str) -> list[tuple[str, str]]:
    """The call metadata the aws-appmesh-envoy bootstrap sends: a SigV4 signature (appmesh)."""
    request = AWSRequest(
        method="POST",
        url=f"https://127.0.0.1:{replica.xds_tls_port}{streams.ADS_PATH}",
        data=b"",
        headers={"x-amz-content-sha256": hashlib.sha256(b"").hexdigest()},
    )
    SigV4Auth(Credentials(key_id, secret), "appmesh", "us-west-2").add_auth(request)
    return [(k.lower(), v) for k, v in request.headers.items() if k.lower() != "host"]


def _stream(replica: replicas.Replica, node: str, key_id: str, secret: str) -> str:
    """Open a signed stream and read the first response: its type, or the refusal's code."""

    async def first() -> str:
        client = FakeAdsClient(
            replica.xds_tls_port,
            node,
            call_metadata=_signed(replica, key_id, secret),
            root_certificates=replica.ca_file.read_bytes(),
            server_name="127.0.0.1",
        )
        async with client as stream:
            await stream.request(envoy_resources.CLUSTER)
            response = await asyncio.wait_for(stream.receive(), HANG_GUARD)
            return str(response.type_url)

    try:
        return asyncio.run(first())
    except grpc.aio.AioRpcError as error:
        if "is starting" in str(error.details()):
            return "starting"
        return str(error.code().name)


def _stored(cluster: k8s.Cluster) -> dict[str, str]:
    """The Secret's principals: name → access key id."""
    secret = cluster.kubectl_json("get", "secret", SECRET, "-n", "default")
    assert sorted(secret["data"]) == ["principals.json"]
    listed = json.loads(base64.b64decode(secret["data"]["principals.json"]))["principals"]
    return {p["name"]: p["accessKeyId"] for p in listed}


def test_a_principal_created_on_one_replica_signs_on_the_other_until_deleted(
    cluster: k8s.Cluster, namespace: str, tmp_path: Path
) -> None:
    """Shared at start; made via A: B serves its signed stream; deleted via B: A refuses it."""
    replicas.install_crds(cluster)
    cluster.kubectl("delete", "secret", SECRET, "-n", "default", "--ignore-not-found")
    first = replicas.Replica(
        cluster, tmp_path / "a", xds_identity=True, auth="sigv4", register_webhooks=False
    )
    second = None
    try:
        second = replicas.Replica(
            cluster, tmp_path / "b", xds_identity=True, auth="sigv4", register_webhooks=False
        )
        a_credentials = (first.workdir / "data" / "credentials").read_text()
        assert (second.workdir / "data" / "credentials").read_text() == a_credentials
        admin_key = a_credentials.split("aws_access_key_id = ")[1].split("\n")[0]
        assert _stored(cluster) == {"meshplane": admin_key}

        node_a, _ = _mesh_and_nodes(cluster, namespace)
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "appmesh:StreamAggregatedResources",
                    "Resource": f"arn:aws:appmesh:us-west-2:123456789012:mesh/mesh-{namespace}/*",
                }
            ],
        }
        created = _admin(first).create_credentials("envoy", policy)
        key_id, secret = created["accessKeyId"], created["secretAccessKey"]
        assert _stored(cluster) == {"meshplane": admin_key, "envoy": key_id}
        assert k8s.poll(
            lambda: _stream(second, node_a, key_id, secret) == envoy_resources.CLUSTER,
            DEADLINE,
            "the second replica serving the principal made on the first",
        )
        listed = [c["name"] for c in _admin(second).credentials()]
        assert listed == ["meshplane", "envoy"]

        _admin(second).delete_credentials("envoy")
        assert _stored(cluster) == {"meshplane": admin_key}
        assert k8s.poll(
            lambda: _stream(first, node_a, key_id, secret) == "UNAUTHENTICATED",
            DEADLINE,
            "the first replica refusing the principal deleted on the second",
        )
        assert _stream(second, node_a, key_id, secret) == "UNAUTHENTICATED"
    finally:
        if second is not None:
            second.stop()
        first.stop()
        cluster.kubectl("delete", "secret", SECRET, "-n", "default", "--ignore-not-found")
