"""SigV4 on an ADS stream, as the aws-appmesh-envoy image's bootstrap signs it.

That image's Envoy puts ``envoy.grpc_credentials.aws_iam`` call credentials on its
Google gRPC ADS channel: for every stream it signs a bodiless request ``POST
https://<host><ADS path>`` (service ``appmesh``, its region) and sends the signed headers
(``authorization``, ``x-amz-date``, ``x-amz-content-sha256`` and a session token if any)
as gRPC metadata. The ``host`` it signed is the authority it dialled, which gRPC does
not hand to the server, so it is not in the metadata: the server tries each name its
xDS certificate covers, the only names a TLS client could have dialled.

The signature is then checked by :func:`meshplane.auth.signatures.verify` (botocore's
canonicalisation, the served region, a 5-minute window) against the principals of the
data dir, and the principal's policy must allow :data:`XDS_ACTION` on the virtual
node's (or gateway's) ARN — the action App Mesh's own IAM policies grant to Envoy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from meshplane.auth import actions, errors, policies, signatures
from meshplane.auth.principals import Principal
from meshplane.model import naming

XDS_ACTION = actions.XDS_STREAM
"""What a principal must be allowed on a node's ARN to stream its configuration."""
ADS_PATH = "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
_MISMATCH = "The request signature we calculated does not match"


def is_signed(metadata: Mapping[str, str]) -> bool:
    """Whether the stream carries a SigV4 ``authorization`` entry."""
    return metadata.get("authorization", "").startswith(signatures.ALGORITHM + " ")


def node_arn(node_id: str, region: str, account: str) -> str | None:
    """The served region's and account's ARN of ``mesh/M/virtualNode/N`` (or its ARN form)."""
    ref = naming.parse_node_id(node_id)
    if ref is None:
        return None
    return f"arn:aws:appmesh:{region}:{account}:mesh/{ref.mesh}/{ref.kind}/{ref.name}"


def verify_stream(
    metadata: Mapping[str, str],
    node_id: str,
    *,
    hosts: Sequence[str],
    region: str,
    account: str,
    now: float,
    principal_for: Callable[[str], Principal | None],
) -> Principal:
    """The principal that signed the stream for ``node_id``, or an AuthError.

    ``hosts`` are the ``host[:port]`` values a client may have signed (the xDS
    certificate's names with the TLS port). UnrecognizedClient/InvalidSignature mean
    no valid credential; AccessDenied a valid one whose policy does not allow the node.
    """

    def secret_for(key_id: str) -> str | None:
        found = principal_for(key_id)
        return None if found is None else found.secret_access_key

    if not hosts:
        raise errors.InvalidSignatureException(
            "this xDS server accepts no signed streams (no TLS names are configured)"
        )
    mismatch: errors.AuthError | None = None
    key_id = ""
    for host in hosts:
        try:
            key_id = signatures.verify(
                method="POST",
                url=f"https://{host}{ADS_PATH}",
                headers=[*metadata.items(), ("host", host)],
                body=b"",
                region=region,
                now=now,
                secret_for=secret_for,
            )
        except errors.InvalidSignatureException as error:
            if not str(error).startswith(_MISMATCH):
                raise
            mismatch = error
            continue
        break
    else:
        assert mismatch is not None
        raise errors.InvalidSignatureException(
            f"{mismatch} (signed for host {' or '.join(hosts)}, path {ADS_PATH})"
        )
    principal = principal_for(key_id)
    if principal is None:  # deleted between the two lookups
        raise errors.UnrecognizedClientException(f"access key {key_id} was just deleted")
    resource = node_arn(node_id, region, account)
    if resource is None:
        raise errors.AccessDeniedException(
            f"{node_id!r} is not a node id (mesh/<mesh>/virtualNode/<name>)"
        )
    decision = principal.policy.decide(XDS_ACTION, resource)
    if decision is not policies.Decision.ALLOW:
        raise errors.AccessDeniedException(
            f"User: arn:aws:iam::{account}:user/{principal.name} is not authorized to "
            f"perform: {XDS_ACTION} on resource: {resource} ({decision.value})"
        )
    return principal
