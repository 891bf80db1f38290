"""`meshplane describe virtualnode` shows the effective TLS: modes, sources, trust, SANs."""

from __future__ import annotations

import pytest

from .live import Cli

pytestmark = pytest.mark.integration

MESH = """
apiVersion: v1
kind: Namespace
metadata: {name: demos, labels: {mesh: demos}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: Mesh
metadata:
  name: demos
  annotations: {%s}
spec:
  namespaceSelector: {matchLabels: {mesh: demos}}
"""

NODES = """
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: vn-backend, namespace: demos}
spec:
  awsName: vn-backend
  podSelector: {matchLabels: {app: backend}}
  listeners:
    - portMapping: {port: 8080, protocol: http}
      tls:
        mode: STRICT
        certificate: {sds: {secretName: "spiffe://meshplane.local/backend"}}
        validation:
          trust: {sds: {secretName: "spiffe://meshplane.local"}}
  serviceDiscovery: {dns: {hostname: backend.demos}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: vn-shop, namespace: demos}
spec:
  awsName: vn-shop
  podSelector: {matchLabels: {app: shop}}
  listeners:
    - portMapping: {port: 8443, protocol: http}
      tls:
        mode: PERMISSIVE
        certificate:
          acm: {certificateARN: "arn:aws:acm:us-west-2:123456789012:certificate/shop"}
  serviceDiscovery: {dns: {hostname: shop.demos}}
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
metadata: {name: vn-front, namespace: demos}
spec:
  awsName: vn-front
  podSelector: {matchLabels: {app: front}}
  listeners:
    - portMapping: {port: 80, protocol: http}
  serviceDiscovery: {dns: {hostname: front.demos}}
  backends:
    - virtualService:
        virtualServiceRef: {name: vs-backend}
        clientPolicy:
          tls:
            ports: [8080]
            certificate: {sds: {secretName: "spiffe://meshplane.local/front"}}
            validation:
              trust: {sds: {secretName: "spiffe://meshplane.local"}}
              subjectAlternativeNames: {match: {exact: ["spiffe://meshplane.local/payments"]}}
"""

MISMATCH = (
    "mesh/demos/virtualNode/vn-front: calls to vn-backend port 8080 fail: the client policy "
    "accepts SAN spiffe://meshplane.local/payments but vn-backend's certificate carries "
    "spiffe://meshplane.local/backend"
)


def _apply(cli: Cli, text: str) -> None:
    result = cli("apply", "-f", "-", stdin=text)
    assert result.code == 0, result.err


def _block(page: str, start: str, end: str) -> list[str]:
    lines = page.splitlines()
    first = lines.index(start)
    last = next(i for i in range(first + 1, len(lines)) if lines[i].startswith(end))
    return lines[first:last]


def test_describe_shows_listener_and_backend_tls_and_the_san_mismatch(cli: Cli) -> None:
    """Caller and backend pages name mode, certificate source, trust, SANs and the mismatch."""
    _apply(cli, MESH % "" + "---\n" + NODES)
    front = cli.ok("describe", "virtualnode", "vn-front", "-n", "demos")
    assert _block(front, "TLS:", "Events:") == [
        "TLS:",
        "  Identity:        spiffe://meshplane.local/mesh/demos/virtualNode/vn-front",
        "  Automatic mTLS:  <none>",
        "  Listeners:",
        "    80/http:  DISABLED (no tls)",
        "  Backends:",
        "    vs-backend:  client policy from backend (enforced, ports 8080)",
        "      Certificate:  sds spiffe://meshplane.local/front (served by the built-in CA)",
        "      Validation:   trust sds spiffe://meshplane.local (served by the built-in CA); "
        "SANs spiffe://meshplane.local/payments",
        "      -> vn-backend port 8080:  mTLS (client policy); checks "
        "spiffe://meshplane.local/payments; it presents spiffe://meshplane.local/backend"
        "  SAN MISMATCH",
    ]
    conditions = _block(front, "  Conditions:", "TLS:")
    assert conditions[-4:] == [
        "    Type:                  TLSPeersVerified",
        "    Status:                False",
        "    Reason:                SubjectAlternativeNameMismatch",
        f"    Message:               {MISMATCH}",
    ]
    backend = cli.ok("describe", "virtualnode", "vn-backend", "-n", "demos")
    assert _block(backend, "  Listeners:", "  Backends:") == [
        "  Listeners:",
        "    8080/http:  STRICT mutual (listener tls)",
        "      Certificate:  sds spiffe://meshplane.local/backend (served by the built-in CA), "
        "SANs spiffe://meshplane.local/backend",
        "      Validation:   trust sds spiffe://meshplane.local (served by the built-in CA); "
        "any SAN",
    ]
    assert f"    Message:               {MISMATCH}" in backend.splitlines()
    shop = cli.ok("describe", "virtualnode", "vn-shop", "-n", "demos")
    assert "    8443/http:  PERMISSIVE (listener tls)" in shop.splitlines()
    assert (
        "      Certificate:  acm arn:aws:acm:us-west-2:123456789012:certificate/shop "
        "(served by the built-in CA), SANs shop.demos"
    ) in shop.splitlines()
    acm = _block(shop, "  Conditions:", "TLS:")[-4:]
    assert acm[:3] == [
        "    Type:                  TLSFromACM",
        "    Status:                True",
        "    Reason:                AcmServedByBuiltInCA",
    ]
    assert acm[3] == (
        "    Message:               mesh/demos/virtualNode/vn-shop: listener 8443: ACM "
        "certificate arn:aws:acm:us-west-2:123456789012:certificate/shop is unreachable off "
        "AWS; served by meshplane's built-in CA for shop.demos (or by the CA imported for it "
        "with `meshplane ca import --certificate`)"
    )


def test_describe_shows_automatic_mtls_from_the_mesh_annotation(cli: Cli) -> None:
    """The Mesh annotation meshplane.dev/mtls gives every listener mTLS, describe says so;
    removing the annotation turns it off."""
    annotated = MESH % '"meshplane.dev/mtls": STRICT'
    _apply(cli, annotated + "---\n" + NODES)
    front = cli.ok("describe", "virtualnode", "vn-front", "-n", "demos")
    identity = "spiffe://meshplane.local/mesh/demos/virtualNode/vn-front"
    assert _block(front, "TLS:", "  Backends:") == [
        "TLS:",
        f"  Identity:        {identity}",
        "  Automatic mTLS:  STRICT",
        "  Listeners:",
        "    80/http:  STRICT mutual (automatic mTLS (mesh tag meshplane.dev/mtls))",
        f"      Certificate:  sds {identity} (served by the built-in CA), SANs {identity}",
        "      Validation:   trust sds spiffe://meshplane.local (served by the built-in CA); "
        "SANs spiffe://meshplane.local/mesh/demos/*",
    ]
    _apply(cli, MESH % "")  # the annotation removed: its tag goes, mTLS is off again
    again = cli.ok("describe", "virtualnode", "vn-front", "-n", "demos")
    assert "  Automatic mTLS:  <none>" in again.splitlines()
    assert "    80/http:  DISABLED (no tls)" in again.splitlines()
