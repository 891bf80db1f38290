"""aws-appmesh-envoy's ADS form: TLS with meshplane's CA, SigV4-signed streams (service appmesh)."""

from __future__ import annotations

import asyncio
import hashlib
import socket
from pathlib import Path

import grpc
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from xds_configs import weighted

from meshplane.auth import streams
from meshplane.auth.principals import Principals
from meshplane.envoy import CLUSTER, LISTENER
from meshplane.kit.clock import system_clock
from meshplane.pki import authority
from meshplane.service.proxycredentials import ProxyCredentials, load_key
from meshplane.sync.admission import SigV4Admission, TokenAdmission
from meshplane.testing import ControlPlane, FakeAdsClient, names_of
from meshplane.xds import AdsServer, ResourceEncoder, SnapshotCache, StatusBoard, node_key

REGION = "us-west-2"
ACCOUNT = "123456789012"
HOST = "meshplane-xds.appmesh-system.svc"
NODE_A = "mesh/demos/virtualNode/vn-a"
NODE_B = "mesh/demos/virtualNode/vn-b"
WAIT = 10.0


def _signed(key: str, secret: str, host: str) -> list[tuple[str, str]]:
    """The metadata Envoy's aws_iam call credentials sent: the signed headers but :authority."""
    request = AWSRequest(
        method="POST",
        url=f"https://{host}{streams.ADS_PATH}",
        data=b"",
        headers={"x-amz-content-sha256": hashlib.sha256(b"").hexdigest()},
    )
    SigV4Auth(Credentials(key, secret), "appmesh", REGION).add_auth(request)
    return [(k.lower(), v) for k, v in request.headers.items() if k.lower() != "host"]


async def _outcomes(tmp_path: Path) -> tuple[list[object], int]:
    principals = Principals(tmp_path, system_clock)
    envoy_a = principals.create(
        "envoy-a",
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "appmesh:StreamAggregatedResources",
                    "Resource": f"arn:aws:appmesh:{REGION}:{ACCOUNT}:{NODE_A}",
                }
            ],
        },
    )
    ca = authority.load_or_create(tmp_path / "ca", system_clock)
    issued = ca.issue(HOST, 3600)
    cache = SnapshotCache()
    for node in (NODE_A, NODE_B):
        snapshot = weighted(15000, {"blue": 9001}, {"blue": 100}, ResourceEncoder())
        cache.set_snapshot(node_key(node), snapshot)
    board = StatusBoard(system_clock)
    tokens = TokenAdmission(ProxyCredentials(load_key(tmp_path), system_clock, 60), board)
    admission = SigV4Admission(
        principals, board, tokens, region=REGION, account=ACCOUNT, clock=system_clock
    )
    server = AdsServer(cache, callbacks=board, authenticator=admission)
    server.serve_tls("127.0.0.1", 0, issued.chain_pem, issued.key_pem)
    await server.start("127.0.0.1", 0)
    assert server.tls_port is not None
    host = f"{HOST}:{server.tls_port}"
    admission.hosts = (host,)
    key, secret = envoy_a.access_key_id, envoy_a.secret_access_key
    cases = [
        (NODE_A, _signed(key, secret, host)),
        (NODE_A, _signed(key, "wrong" + secret[5:], host)),
        (NODE_A, _signed("AKIAUNKNOWNUNKNOWN00", secret, host)),
        (NODE_A, _signed(key, secret, f"elsewhere.example:{server.tls_port}")),
        (NODE_B, _signed(key, secret, host)),
    ]
    outcomes: list[object] = []
    try:
        async with asyncio.timeout(WAIT):
            for node, metadata in cases:
                client = FakeAdsClient(
                    server.tls_port,
                    node,
                    call_metadata=metadata,
                    root_certificates=ca.bundle_pem,
                    server_name=HOST,
                )
                async with client as proxy:
                    await proxy.request(CLUSTER)
                    if metadata is cases[0][1]:
                        outcomes.append(sorted(names_of(await proxy.receive())))
                    else:
                        outcomes.append(await proxy.ended())
    finally:
        await server.stop(0)
    return outcomes, server.tls_port


def test_signed_streams_are_served_by_policy_and_bad_signatures_refused(tmp_path: Path) -> None:
    """Signed as aws_iam did: served; bad signature UNAUTHENTICATED; node not allowed: DENIED."""
    outcomes, port = asyncio.run(_outcomes(tmp_path))
    mismatch = (
        "The request signature we calculated does not match the signature you provided. "
        "Check your AWS Secret Access Key and signing method. "
        f"(signed for host {HOST}:{port}, path {streams.ADS_PATH})"
    )
    unauthenticated = grpc.StatusCode.UNAUTHENTICATED
    assert outcomes[0] == ["blue"]
    assert outcomes[1] == (unauthenticated, f"{NODE_A}: {mismatch}")
    code, details = outcomes[2]
    assert code == unauthenticated
    assert str(details).startswith(
        f"{NODE_A}: The security token included in the request is invalid: "
        "access key AKIAUNKNOWNUNKNOWN00 is not known"
    )
    assert outcomes[3] == (unauthenticated, f"{NODE_A}: {mismatch}")
    assert outcomes[4] == (
        grpc.StatusCode.PERMISSION_DENIED,
        f"User: arn:aws:iam::{ACCOUNT}:user/envoy-a is not authorized to perform: "
        f"appmesh:StreamAggregatedResources on resource: "
        f"arn:aws:appmesh:{REGION}:{ACCOUNT}:{NODE_B} (no statement allows it)",
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_serve_with_a_tls_port_serves_a_signed_stream_its_node_config(tmp_path: Path) -> None:
    """MESHPLANE_XDS_TLS_PORT: an ECS task's aws-appmesh-envoy form gets its node's listeners."""
    principals = Principals(tmp_path, system_clock)
    envoy_a = principals.create(
        "envoy-a",
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "appmesh:StreamAggregatedResources",
                    "Resource": f"arn:aws:appmesh:{REGION}:{ACCOUNT}:mesh/demos/*",
                }
            ],
        },
    )
    port = _free_port()
    with ControlPlane(tmp_path, xds_tls_port=port, xds_tls_names=("meshplane.local",)) as plane:
        appmesh = plane.appmesh()
        appmesh.create_mesh(meshName="demos")
        appmesh.create_virtual_node(
            meshName="demos",
            virtualNodeName="vn-a",
            spec={
                "listeners": [{"portMapping": {"port": 80, "protocol": "http"}}],
                "serviceDiscovery": {"dns": {"hostname": "vn-a.local"}},
            },
        )
        metadata = _signed(
            envoy_a.access_key_id, envoy_a.secret_access_key, f"meshplane.local:{port}"
        )
        ca = (tmp_path / "ca" / "ca.pem").read_bytes()

        async def first_listeners() -> list[str]:
            client = FakeAdsClient(
                port,
                NODE_A,
                call_metadata=metadata,
                root_certificates=ca,
                server_name="meshplane.local",
            )
            async with asyncio.timeout(WAIT), client as proxy:
                await proxy.request(LISTENER)
                return sorted(names_of(await proxy.receive()))

        assert asyncio.run(first_listeners()) == [
            "lds_egress_127.0.0.1_15001",
            "lds_ingress_127.0.0.1_15000",
        ]
