"""VirtualNode and VirtualGateway objects as the runtime sees them, from the control plane or files.

VirtualGateways are read the same way: a gateway workload (no command) binds
to the one whose ``podSelector`` selects it.

The runtime needs, per VirtualNode object: its namespace, podSelector,
listener ports, App Mesh name and mesh, and which of its backends are TCP
services (each gets a loopback port announced to the app; a VirtualService is
TCP when its provider, router or node, has a ``tcp`` listener). Two sources
give these:

* the control plane's stored objects (``to_document`` form: ``spec.awsName``
  defaulted, ``spec.meshRef`` designated, ``status.virtualNodeARN`` once the
  App Mesh twin exists) — the authoritative source;
* the raw YAML in the directory given to ``meshplane up`` — a fallback while
  the control plane has no manifest endpoint. It applies the admission
  webhook's two rules that matter here itself: ``awsName`` defaults to
  ``<name>_<namespace>``, and the mesh is the one Mesh whose
  ``namespaceSelector`` matches the namespace's labels.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from meshplane.model import naming, selectors
from meshplane.runtime import selecting, workloads


def _listener_ports(spec: Mapping[str, Any]) -> tuple[int, ...]:
    ports = []
    for listener in spec.get("listeners") or []:
        port = (listener.get("portMapping") or {}).get("port")
        if isinstance(port, int):
            ports.append(port)
    return tuple(ports)


_KINDS = {"VirtualNode": selecting.VIRTUAL_NODE, "VirtualGateway": selecting.VIRTUAL_GATEWAY}
"""Manifest kind → the node kind of its ARN and node id."""


def _from_arn(arn: str, kind: str) -> tuple[str, str] | None:
    """(mesh, name) out of ``arn:…:mesh/<mesh>/<kind>/<name>``."""
    ref = naming.parse_node_id(arn)
    if ref is None or ref.kind != kind:
        return None
    return ref.mesh, ref.name


def _mesh_for_namespace(
    namespace: str, namespaces: Mapping[str, Mapping[str, str]], meshes: list[dict[str, Any]]
) -> str | None:
    """The awsName of the one Mesh selecting ``namespace`` (None if none or several do)."""
    labels = namespaces.get(namespace, {})
    chosen = selectors.meshes_for(
        meshes, lambda mesh: (mesh.get("spec") or {}).get("namespaceSelector"), labels
    )
    found = [(mesh.get("spec") or {}).get("awsName") or mesh["metadata"]["name"] for mesh in chosen]
    return found[0] if len(found) == 1 else None


def _protocols(spec: Mapping[str, Any]) -> set[str]:
    return {
        str((listener.get("portMapping") or {}).get("protocol") or "")
        for listener in spec.get("listeners") or []
        if isinstance(listener, Mapping)
    }


def _ref(ref: Any, namespace: str) -> tuple[str, str] | None:
    """(namespace, name) of a ``…Ref`` (its namespace defaults to the referrer's)."""
    if not isinstance(ref, Mapping) or not ref.get("name"):
        return None
    return str(ref.get("namespace") or namespace), str(ref["name"])


def _tcp_services(documents: list[Mapping[str, Any]], default_namespace: str) -> dict[Any, str]:
    """(namespace, name) and ARN name of every TCP VirtualService → its App Mesh name."""
    protocols: dict[tuple[str, tuple[str, str]], set[str]] = {}
    for doc in documents:
        if doc.get("kind") in ("VirtualRouter", "VirtualNode"):
            metadata = doc.get("metadata") or {}
            where = (str(metadata.get("namespace") or default_namespace), str(metadata["name"]))
            protocols[(str(doc["kind"]), where)] = _protocols(doc.get("spec") or {})
    found: dict[Any, str] = {}
    for doc in documents:
        if doc.get("kind") != "VirtualService":
            continue
        metadata, spec = doc.get("metadata") or {}, doc.get("spec") or {}
        namespace = str(metadata.get("namespace") or default_namespace)
        name = str(metadata["name"])
        provider = spec.get("provider") or {}
        router = _ref((provider.get("virtualRouter") or {}).get("virtualRouterRef"), namespace)
        node = _ref((provider.get("virtualNode") or {}).get("virtualNodeRef"), namespace)
        provided = (
            protocols.get(("VirtualRouter", router), set())
            if router
            else protocols.get(("VirtualNode", node), set())
            if node
            else set()
        )
        if "tcp" in provided:
            aws_name = str(
                spec.get("awsName") or naming.default_aws_name("VirtualService", name, namespace)
            )
            found[(namespace, name)] = aws_name
            found[aws_name] = aws_name
    return found


def _tcp_backends(
    spec: Mapping[str, Any], namespace: str, tcp: Mapping[Any, str]
) -> tuple[str, ...]:
    """The App Mesh names of the node's backends that are TCP services, sorted."""
    found = set()
    for backend in spec.get("backends") or []:
        service = (backend or {}).get("virtualService") or {}
        ref = _ref(service.get("virtualServiceRef"), namespace)
        arn = str(service.get("virtualServiceARN") or "")
        key: Any = ref if ref is not None else arn.rpartition("/virtualService/")[2]
        if key in tcp:
            found.add(tcp[key])
    return tuple(sorted(found))


def views(
    documents: Iterable[Mapping[str, Any]], default_namespace: str = "default"
) -> list[selecting.VirtualNodeView]:
    """Every VirtualNode and VirtualGateway among ``documents``, its mesh resolved when possible."""
    documents = [doc for doc in documents if isinstance(doc, Mapping)]
    namespaces = {
        doc["metadata"]["name"]: dict(doc["metadata"].get("labels") or {})
        for doc in documents
        if doc.get("kind") == "Namespace" and isinstance(doc.get("metadata"), Mapping)
    }
    meshes = [dict(doc) for doc in documents if doc.get("kind") == "Mesh"]
    tcp = _tcp_services(
        [d for d in documents if isinstance(d.get("metadata"), Mapping)], default_namespace
    )
    mesh_names = {
        mesh["metadata"]["name"]: (mesh.get("spec") or {}).get("awsName")
        or mesh["metadata"]["name"]
        for mesh in meshes
    }
    found = []
    for doc in documents:
        kind = _KINDS.get(str(doc.get("kind")))
        if kind is None or not isinstance(doc.get("metadata"), Mapping):
            continue
        metadata, spec = doc["metadata"], doc.get("spec") or {}
        name = str(metadata["name"])
        namespace = str(metadata.get("namespace") or default_namespace)
        default = naming.default_aws_name(str(doc["kind"]), name, namespace)
        aws_name = str(spec.get("awsName") or default)
        twin = _from_arn(str((doc.get("status") or {}).get(f"{kind}ARN") or ""), kind)
        mesh_ref = (spec.get("meshRef") or {}).get("name")
        mesh: str | None
        if twin is not None:
            mesh, aws_name = twin
        elif mesh_ref:
            mesh = mesh_names.get(mesh_ref, mesh_ref)
        else:
            mesh = _mesh_for_namespace(namespace, namespaces, meshes)
        found.append(
            selecting.VirtualNodeView(
                namespace=namespace,
                name=name,
                aws_name=aws_name,
                mesh=mesh,
                pod_selector=spec.get("podSelector"),
                listener_ports=_listener_ports(spec),
                kind=kind,
                tcp_backends=_tcp_backends(spec, namespace, tcp),
                dns_hostname=((spec.get("serviceDiscovery") or {}).get("dns") or {}).get(
                    "hostname"
                ),
            )
        )
    return sorted(found, key=lambda view: (view.kind, view.namespace, view.name))


def read_directory(
    path: Path, default_namespace: str = "default"
) -> list[selecting.VirtualNodeView]:
    """The VirtualNodes declared in the manifests under ``path`` (a file or a directory).

    Skips the workloads file and any document that is not a mapping; YAML
    errors propagate as :class:`yaml.YAMLError` naming the file.
    """
    files = (
        sorted(p for p in path.iterdir() if p.suffix in {".yaml", ".yml"})
        if path.is_dir()
        else [path]
    )
    documents: list[Mapping[str, Any]] = []
    for file in files:
        if file.name == workloads.FILE_NAME:
            continue
        documents.extend(doc for doc in yaml.safe_load_all(file.read_text(encoding="utf-8")) if doc)
    return views(documents, default_namespace)
