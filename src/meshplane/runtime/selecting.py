"""Which VirtualNode a workload belongs to: the sidecar injector's podSelector rule, locally.

App Mesh's injector (``appmesh-controller.md`` §2.1) looked at the VirtualNodes
in the pod's namespace whose ``podSelector`` matches the pod's labels: none
means the pod is not in the mesh (no sidecar), more than one is refused, and a
matching node whose mesh is not yet known is treated as not found. A
workload's labels play the pod's part here. The node id given to the sidecar
is the injector's ``APPMESH_RESOURCE_ARN`` short form,
``mesh/<mesh>/virtualNode/<awsName>``.

A workload with no command (a gateway, see :mod:`meshplane.runtime.workloads`)
is matched the same way against the VirtualGateways of its namespace, and its
Envoy serves ``mesh/<mesh>/virtualGateway/<awsName>``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from meshplane.model import naming, selectors
from meshplane.runtime.workloads import Workload

VIRTUAL_NODE = "virtualNode"
VIRTUAL_GATEWAY = "virtualGateway"


class SelectionError(Exception):
    """A workload cannot be given a sidecar (yet); the message says why."""


@dataclasses.dataclass(frozen=True)
class VirtualNodeView:
    """What the runtime needs to know of a VirtualNode manifest object."""

    namespace: str
    name: str
    """The Kubernetes name."""
    aws_name: str
    """The App Mesh name (``spec.awsName``), used in the node id and the API."""
    mesh: str | None
    """The App Mesh mesh name; None while the namespace belongs to no Mesh."""
    pod_selector: Mapping[str, Any] | None
    listener_ports: tuple[int, ...]
    kind: str = VIRTUAL_NODE
    """``virtualNode``, or ``virtualGateway`` for a VirtualGateway object."""
    tcp_backends: tuple[str, ...] = ()
    """The App Mesh names of its backends that are TCP virtual services."""
    dns_hostname: str | None = None
    """``spec.serviceDiscovery.dns.hostname``, if the node is discovered by DNS."""


@dataclasses.dataclass(frozen=True)
class Binding:
    """A workload's place in the mesh: the node its replicas' sidecars serve."""

    mesh: str
    virtual_node: str
    """The App Mesh name of the virtual node (or gateway) served."""
    listener_ports: tuple[int, ...]
    kind: str = VIRTUAL_NODE
    tcp_backends: tuple[str, ...] = ()
    """TCP backends' virtual service names: each gets a loopback port on the sidecar."""
    dns_hostname: str | None = None
    """The node's DNS service-discovery hostname (``--isolation netns`` resolves it)."""

    @property
    def node_id(self) -> str:
        """The Envoy node id App Mesh's injector would set."""
        return naming.node_id(self.mesh, self.kind, self.virtual_node)

    @property
    def is_gateway(self) -> bool:
        """The Envoy is a VirtualGateway's: no app behind it, no endpoints to register."""
        return self.kind == VIRTUAL_GATEWAY


def selecting(workload: Workload, nodes: Iterable[VirtualNodeView]) -> list[VirtualNodeView]:
    """The nodes of the workload's kind (gateway or not) in its namespace selecting it, by name."""
    kind = VIRTUAL_GATEWAY if workload.is_gateway else VIRTUAL_NODE
    here = [node for node in nodes if node.namespace == workload.namespace and node.kind == kind]
    found = selectors.selecting(here, lambda node: node.pod_selector, workload.labels)
    return sorted(found, key=lambda node: node.name)


def bind(workload: Workload, nodes: Iterable[VirtualNodeView]) -> Binding | None:
    """The workload's Binding; None if no node selects it; SelectionError if ambiguous/pending."""
    found = selecting(workload, nodes)
    what = "VirtualGateway" if workload.is_gateway else "VirtualNode"
    if not found and workload.is_gateway:
        raise SelectionError(
            f"workload {workload.namespace}/{workload.name} has no command, so it runs a "
            "gateway, but no VirtualGateway's podSelector selects its labels yet"
        )
    if not found:
        return None
    if len(found) > 1:
        names = ", ".join(node.name for node in found)
        raise SelectionError(
            f"workload {workload.namespace}/{workload.name}: "
            f"found multiple matching {what}s: {names}"
        )
    node = found[0]
    if node.mesh is None:
        raise SelectionError(
            f"workload {workload.namespace}/{workload.name}: {what} {node.name} "
            f"belongs to no mesh yet (does a Mesh's namespaceSelector match namespace "
            f"{node.namespace}'s labels?)"
        )
    return Binding(
        node.mesh,
        node.aws_name,
        node.listener_ports,
        node.kind,
        node.tcp_backends,
        node.dns_hostname,
    )
