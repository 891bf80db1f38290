"""`describe` of a Cloud Map VirtualNode says what meshplane's emulation cannot do."""

from __future__ import annotations

from meshplane.cli import describing
from meshplane.translate import cloudmap


def _doc(discovery: dict[str, object]) -> dict[str, object]:
    return {
        "apiVersion": "appmesh.k8s.aws/v1beta2",
        "kind": "VirtualNode",
        "metadata": {
            "name": "colorapp-blue",
            "namespace": "demos",
            "creationTimestamp": "2026-12-01T10:00:00Z",
            "generation": 1,
            "uid": "u",
        },
        "spec": {"serviceDiscovery": discovery},
        "status": {},
    }


def test_a_cloud_map_node_page_carries_the_cloudmap_emulated_warning() -> None:
    """The Warnings section names the code, the node, its service and namespace."""
    page = describing.describe(
        _doc({"awsCloudMap": {"namespaceName": "demo.local", "serviceName": "colorapp"}}), [], 0.0
    )
    assert page.splitlines()[-3:] == [
        "Warnings:",
        "  cloudmap-emulated: virtualnode/colorapp-blue: spec.serviceDiscovery.awsCloudMap "
        f"(service colorapp in namespace demo.local) {cloudmap.EMULATED}",
        "Events:  <none>",
    ]


def test_a_dns_node_page_has_no_warnings_section() -> None:
    """Nothing to warn about for DNS discovery."""
    page = describing.describe(_doc({"dns": {"hostname": "blue.demos"}}), [], 0.0)
    assert "Warnings:" not in page
