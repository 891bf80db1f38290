"""``meshplane analyze`` without ``-f``: the same rules, over a running control plane's meshes.

Everything is read over the signed API, as any client would (names go into paths as they
are, as in the client's other calls): the App Mesh REST API for
the resources (whoever created them — manifests, boto3, the console), ``/meshplane/v1``
for what only meshplane knows. Findings, with the codes of :mod:`meshplane.cli.analyzing`:

* the route rules (``weights-zero``, ``route-shadowed``, ``route-overlap``) on every
  virtual router's routes (:func:`meshplane.model.routefindings.route_specs`, the rules
  ``analyze -f`` runs);
* ``dangling-ref`` (error): a route target, a virtual service's provider or a
  virtual node's backend that names a resource the mesh does not have;
* ``not-active`` (error): a manifest object whose condition is not True, with its message;
* the translator's warnings every connected proxy reports (``untranslated`` …), once each;
* ``unselected-node`` (warning), live: in a mesh where something has announced itself as
  one of its virtual nodes, each virtual node nothing has announced itself as. A node is
  announced when an Envoy connects as it (the proxies this control plane lists: connected
  ones and the recently disconnected it remembers) or an instance is registered for it
  (``meshplane up`` registers every replica of a workload that selects the node; the
  registrations are in the store, so every replica of an HA plane sees them). Like ``-f``
  mode, which reports it only with a ``workloads.yaml``, a mesh with no announcement at
  all — a plane that holds configuration and runs nothing yet — gets none: there is no
  runtime to compare with.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from meshplane import client
from meshplane.model import naming, references
from meshplane.model.kinds import ResourceKey
from meshplane.model.routefindings import ERROR, WARNING, Finding, route_specs

API = "/v20190125/meshes"
OBJECT_KINDS = (
    "meshes",
    "virtualnodes",
    "virtualservices",
    "virtualrouters",
    "virtualgateways",
    "gatewayroutes",
)


def _pages(plane: client.MeshplaneClient, path: str, key: str, name: str) -> list[str]:
    """Every ``name`` of a paginated App Mesh list."""
    names: list[str] = []
    token: str | None = None
    while True:
        answer = plane.call("GET", path, query={"nextToken": token} if token else None)
        names += [str(item[name]) for item in answer[key]]
        token = answer.get("nextToken")
        if not token:
            return names


def read(plane: client.MeshplaneClient, mesh: str | None = None) -> list[Finding]:
    """Every finding for ``mesh`` (None: every mesh) of the control plane behind ``plane``."""
    meshes = _pages(plane, API, "meshes", "meshName")
    if mesh is not None:
        if mesh not in meshes:
            raise LookupError(f'mesh "{mesh}" not found; meshes: {", ".join(meshes) or "none"}')
        meshes = [mesh]
    proxies: list[dict[str, Any]] = plane.call("GET", "/meshplane/v1/proxies")["proxies"]
    findings: list[Finding] = []
    for name in meshes:
        findings += _mesh(plane, name, _connected(proxies, name))
    findings += _not_active(plane, meshes)
    findings += _proxy_warnings(proxies, meshes)
    return findings


def _connected(proxies: list[dict[str, Any]], mesh: str) -> set[str]:
    """The virtual nodes of ``mesh`` an Envoy connected as (now or recently)."""
    refs = (naming.parse_node_id(str(proxy.get("nodeId", ""))) for proxy in proxies)
    return {ref.name for ref in refs if ref and ref.mesh == mesh and ref.kind == "virtualNode"}


def _unselected(
    plane: client.MeshplaneClient, mesh: str, nodes: set[str], connected: set[str]
) -> Iterator[Finding]:
    """Nodes nothing announced itself as, when something in ``mesh`` did (module docstring)."""
    announced = (connected | set(plane.endpoints(mesh))) & nodes
    if not announced:
        return
    for node in sorted(nodes - announced):
        yield Finding(
            WARNING,
            "unselected-node",
            f"virtualnode/{node}",
            "no Envoy has connected as it and no replica is registered for it, while "
            f"{len(announced)} other node(s) of mesh {mesh} run: no workload selects it, so it "
            "gets no endpoints and its callers get 503",
        )


def _mesh(plane: client.MeshplaneClient, mesh: str, connected: set[str]) -> list[Finding]:
    base = f"{API}/{mesh}"
    nodes = set(_pages(plane, f"{base}/virtualNodes", "virtualNodes", "virtualNodeName"))
    services = set(
        _pages(plane, f"{base}/virtualServices", "virtualServices", "virtualServiceName")
    )
    routers = _pages(plane, f"{base}/virtualRouters", "virtualRouters", "virtualRouterName")
    specs: dict[str, dict[str, Any]] = {}
    for router in routers:
        at = f"{base}/virtualRouter/{router}/routes"
        specs[router] = {
            route: plane.call("GET", f"{at}/{route}")["spec"]
            for route in _pages(plane, at, "routes", "routeName")
        }
    findings = list(route_specs(specs))
    known = {"virtualNode": nodes, "virtualRouter": set(routers), "virtualService": services}
    for router, routes in sorted(specs.items()):
        for name, spec in sorted(routes.items()):
            for missing in _missing(mesh, "route", name, spec, known):
                findings.append(
                    _dangling(f"route/{router}/{name}", f"its target {missing.name}", mesh)
                )
    for service in sorted(services):
        spec = plane.call("GET", f"{base}/virtualServices/{service}")["spec"]
        for missing in _missing(mesh, "virtualService", service, spec, known):
            what = f"its provider {missing.kind} {missing.name}"
            findings.append(_dangling(f"virtualservice/{service}", what, mesh))
    for node in sorted(nodes):
        spec = plane.call("GET", f"{base}/virtualNodes/{node}")["spec"]
        for backend in spec.get("backends") or []:
            named = (backend.get("virtualService") or {}).get("virtualServiceName")
            if named is not None and named not in services:
                findings.append(
                    _dangling(f"virtualnode/{node}", f"its backend virtualService {named}", mesh)
                )
    findings += _unselected(plane, mesh, nodes, connected)
    return findings


def _dangling(resource: str, what: str, mesh: str) -> Finding:
    return Finding(
        ERROR,
        "dangling-ref",
        resource,
        f"{what} does not exist in mesh {mesh}: calls through it fail",
    )


def _missing(
    mesh: str, kind: str, name: str, spec: dict[str, Any], known: dict[str, set[str]]
) -> Iterator[ResourceKey]:
    """What ``spec`` must name to work (:func:`meshplane.model.references.of`) and is missing."""
    for reference in references.of(ResourceKey(kind, mesh, "", name), spec):
        if reference.target.name not in known[reference.target.kind]:
            yield reference.target


def _not_active(plane: client.MeshplaneClient, meshes: list[str]) -> Iterator[Finding]:
    """Manifest objects (of these meshes) whose condition is not True."""
    for kind in OBJECT_KINDS:
        try:
            items = plane.call("GET", f"/meshplane/v1/objects/{kind}")["items"]
        except client.ControlPlaneError as error:
            if error.status == 404:  # no manifest front door on this control plane
                return
            raise
        for item in items:
            spec = item.get("spec") or {}
            mesh = item["metadata"]["name"] if kind == "meshes" else None
            mesh = mesh or (spec.get("meshRef") or {}).get("name")
            if mesh is not None and mesh not in meshes:
                continue
            singular = str(item["kind"]).lower()
            for condition in (item.get("status") or {}).get("conditions") or []:
                if condition.get("status") != "True" and condition.get("message"):
                    yield Finding(
                        ERROR,
                        "not-active",
                        f"{singular}/{item['metadata']['name']}",
                        str(condition["message"]),
                    )


def _proxy_warnings(proxies: list[dict[str, Any]], meshes: list[str]) -> list[Finding]:
    """The translator's warnings, as the connected proxies of these meshes report them."""
    found: set[Finding] = set()
    for proxy in proxies:
        parts = str(proxy.get("nodeId", "")).split("/")  # mesh/<mesh>/<kind>/<name>
        if len(parts) < 2 or parts[1] not in meshes:
            continue
        for warning in proxy.get("diagnostics") or []:
            found.add(Finding(WARNING, warning["code"], warning["resource"], warning["message"]))
    return sorted(found)
