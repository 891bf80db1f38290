"""Cloud Map discovery, emulated: a node's instances are the registrations of its service.

App Mesh resolved a ``serviceDiscovery.awsCloudMap`` node by asking Cloud Map for the
healthy instances of ``(namespaceName, serviceName)`` whose attributes match **all** of
the node's ``attributes`` (``appmesh-controller.md`` §3.3), and pushed them over EDS.
The instances were whatever had registered there; on Kubernetes the controller
registered each Ready pod a Cloud Map node's ``podSelector`` selects, with the pod's
labels, the node's own attributes and a few of its own (§1.7) as instance attributes.

meshplane has no Cloud Map. The registrations it holds (the local runtime's replicas,
the Ready pods ``meshplane k8s`` sees) play its part: every endpoint registered for a
virtual node of the mesh that names the same Cloud Map namespace and service is an
instance of that service, and its attributes are, with the controller's precedence:

1. the registered attributes (the workload's or pod's labels);
2. the registering node's ``awsCloudMap.attributes``;
3. ``AWS_INSTANCE_IPV4`` (or ``AWS_INSTANCE_IPV6``) = its address, ``AWS_INSTANCE_PORT`` =
   its port, ``appmesh.k8s.aws/mesh`` and ``appmesh.k8s.aws/virtualNode`` = the mesh and the
   registering node's App Mesh names.

So two nodes sharing one service and told apart by attributes (``color: blue|red``) get
only their own replicas, a node with no attributes gets all of them, and a node that
selects no workload at all (a caller-side view, as in the cross-cluster walkthrough)
gets whatever matches. Matching is exact string equality per key, as Cloud Map's
``DiscoverInstances`` query parameters are; an ``IPv4_ONLY`` or ``IPv6_ONLY`` preference keeps
the instances of that address family only. Pure: a function of the snapshot.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from meshplane.model import specs_generated as g
from meshplane.model.snapshot import Endpoint, MeshSnapshot, Typed

MESH_ATTRIBUTE = "appmesh.k8s.aws/mesh"
NODE_ATTRIBUTE = "appmesh.k8s.aws/virtualNode"
IPV4 = "AWS_INSTANCE_IPV4"
IPV6 = "AWS_INSTANCE_IPV6"
PORT = "AWS_INSTANCE_PORT"
ONLY = {"IPv4_ONLY": 4, "IPv6_ONLY": 6}
"""An ``ipPreference`` (the node's, else the mesh's) that keeps one address family's instances;
the *_PREFERRED ones keep both, as Envoy then tries either."""

EMULATED = (
    "is emulated by meshplane: its instances are the endpoints registered for this mesh's "
    "VirtualNodes naming the same Cloud Map namespace and service (local replicas, Ready "
    "pods); instances registered in AWS Cloud Map by anything else, Cloud Map health checks "
    "and the namespace's DNS records are not available"
)
"""What cannot be reproduced, said at apply and in the sidecar's proxy-status notes."""


def service_of(spec: g.VirtualNodeSpec) -> g.AwsCloudMapServiceDiscovery | None:
    """The node's Cloud Map discovery block, if it has one."""
    discovery = spec.service_discovery
    return discovery.aws_cloud_map if discovery is not None else None


def instance_attributes(
    mesh: str, node: str, cloud_map: g.AwsCloudMapServiceDiscovery, endpoint: Endpoint
) -> dict[str, str]:
    """The attributes Cloud Map would hold for ``endpoint``, registered for ``node``."""
    found = dict(endpoint.attributes)
    found.update((a.key, a.value) for a in cloud_map.attributes or ())
    family = IPV6 if ipaddress.ip_address(endpoint.address).version == 6 else IPV4
    found[family] = endpoint.address
    found[PORT] = str(endpoint.port)
    found[MESH_ATTRIBUTE] = mesh
    found[NODE_ATTRIBUTE] = node
    return found


def attributes_match(wanted: Mapping[str, str], attributes: Mapping[str, str]) -> bool:
    """Whether an instance's ``attributes`` hold every wanted key with the wanted value."""
    return all(attributes.get(key) == value for key, value in wanted.items())


def instances(snapshot: MeshSnapshot, target: Typed[g.VirtualNodeSpec]) -> tuple[Endpoint, ...]:
    """The instances of ``target``'s Cloud Map service matching its attributes, sorted.

    ``target`` must use Cloud Map discovery. Walking the mesh's nodes makes a caller
    depend on all of them (a node joining the service changes its instances), and on the
    endpoints of each node in the service.
    """
    own = service_of(target.spec)
    if own is None:
        raise ValueError(f"VirtualNode {target.name} does not use Cloud Map")
    wanted = {a.key: a.value for a in own.attributes or ()}
    service = (own.namespace_name, own.service_name)
    mesh_discovery = snapshot.mesh.spec.service_discovery
    preference = own.ip_preference or (
        mesh_discovery.ip_preference if mesh_discovery is not None else None
    )
    family = ONLY.get(preference or "")
    found: set[Endpoint] = set()
    for name in sorted(snapshot.virtual_nodes):
        node = snapshot.virtual_nodes[name]
        cloud_map = service_of(node.spec)
        if cloud_map is None or (cloud_map.namespace_name, cloud_map.service_name) != service:
            continue
        for endpoint in snapshot.endpoints.get(name, ()):
            if family is not None and ipaddress.ip_address(endpoint.address).version != family:
                continue
            attributes = instance_attributes(snapshot.name, name, cloud_map, endpoint)
            if attributes_match(wanted, attributes):
                found.add(endpoint)
    return tuple(sorted(found))


def manifest_note(singular: str, name: str, spec: Mapping[str, object]) -> str | None:
    """The emulation sentence for a VirtualNode manifest (``apply``, ``describe``), or None."""
    discovery = spec.get("serviceDiscovery")
    cloud_map = discovery.get("awsCloudMap") if isinstance(discovery, Mapping) else None
    if not isinstance(cloud_map, Mapping):
        return None
    return (
        f"{singular}/{name}: spec.serviceDiscovery.awsCloudMap (service "
        f"{cloud_map.get('serviceName')} in namespace {cloud_map.get('namespaceName')}) "
        f"{EMULATED}"
    )


def note(node: str, cloud_map: g.AwsCloudMapServiceDiscovery) -> str:
    """The emulation sentence for one node's sidecar (its proxy-status notes)."""
    return (
        f"VirtualNode {node}: Cloud Map service {cloud_map.service_name} in namespace "
        f"{cloud_map.namespace_name} {EMULATED}"
    )
