"""What one proxy was sent, summarized for operators (``meshplane proxy-config``).

``proxy-status`` says whether an Envoy runs its config; this says what that config
is, in the terms an operator checks: each listener's address, port and filter chains
with their protocol and TLS mode (``STRICT``, ``PERMISSIVE``, ``mTLS`` when client
certificates are required, ``plaintext``), route configurations and their virtual
hosts, clusters with their discovery type and upstream TLS, endpoints, and secrets
with their SANs and expiry — never a private key.
"""

from __future__ import annotations

from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2, tls_pb2

from meshplane.envoy import resources as envoy_resources
from meshplane.pki import authority
from meshplane.xds.snapshot import Snapshot

SECTIONS = ("listeners", "routes", "clusters", "endpoints", "secrets")


def _filter_protocol(chain: listener_pb2.FilterChain) -> str:
    names = [f.name for f in chain.filters]
    if "envoy.filters.network.http_connection_manager" in names:
        return "http"
    if "envoy.filters.network.tcp_proxy" in names:
        return "tcp"
    return ",".join(names)


def _downstream(chain: listener_pb2.FilterChain) -> tls_pb2.DownstreamTlsContext | None:
    if not chain.HasField("transport_socket"):
        return None
    context = tls_pb2.DownstreamTlsContext()
    chain.transport_socket.typed_config.Unpack(context)
    return context


def _sds_names(common: tls_pb2.CommonTlsContext) -> list[str]:
    names = [c.name for c in common.tls_certificate_sds_secret_configs]
    if common.HasField("validation_context_sds_secret_config"):
        names.append(common.validation_context_sds_secret_config.name)
    if common.HasField("combined_validation_context"):
        names.append(common.combined_validation_context.validation_context_sds_secret_config.name)
    return names


def _listener(listener: listener_pb2.Listener) -> dict[str, Any]:
    chains = []
    by_port: dict[int, set[str]] = {}
    for chain in listener.filter_chains:
        match = chain.filter_chain_match
        port = match.destination_port.value if match.HasField("destination_port") else 0
        context = _downstream(chain)
        if context is None:
            tls = "plaintext"
        elif context.require_client_certificate.value:
            tls = "mTLS"
        else:
            tls = "TLS"
        by_port.setdefault(port, set()).add(tls)
        chains.append(
            {
                "name": chain.name,
                "destinationPort": port or None,
                "transportProtocol": match.transport_protocol or None,
                "protocol": _filter_protocol(chain),
                "tls": tls,
                "secrets": _sds_names(context.common_tls_context) if context else [],
            }
        )
    for entry in chains:
        # One port with a TLS and a plaintext chain is App Mesh's PERMISSIVE.
        modes = by_port[entry["destinationPort"] or 0]
        entry["mode"] = (
            "PERMISSIVE"
            if "plaintext" in modes and len(modes) > 1
            else ("DISABLED" if entry["tls"] == "plaintext" else "STRICT")
        )
    address = listener.address.socket_address
    return {
        "name": listener.name,
        "address": address.address,
        "port": address.port_value,
        "direction": "INBOUND" if listener.traffic_direction == 1 else "OUTBOUND",
        "chains": chains,
    }


def _route(config: route_pb2.RouteConfiguration) -> dict[str, Any]:
    return {
        "name": config.name,
        "virtualHosts": [
            {"name": host.name, "domains": list(host.domains), "routes": len(host.routes)}
            for host in config.virtual_hosts
        ],
    }


def _cluster(cluster: cluster_pb2.Cluster) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "name": cluster.name,
        "type": cluster_pb2.Cluster.DiscoveryType.Name(cluster.type)
        if cluster.HasField("type")
        else cluster.cluster_type.name,
        "tls": None,
    }
    if cluster.HasField("transport_socket"):
        context = tls_pb2.UpstreamTlsContext()
        cluster.transport_socket.typed_config.Unpack(context)
        common = context.common_tls_context
        validation = common.validation_context
        if common.HasField("combined_validation_context"):
            validation = common.combined_validation_context.default_validation_context
        summary["tls"] = {
            "clientCertificate": bool(
                common.tls_certificates or common.tls_certificate_sds_secret_configs
            ),
            "validated": bool(
                common.HasField("validation_context")
                or common.HasField("validation_context_sds_secret_config")
                or common.HasField("combined_validation_context")
            ),
            "sans": [
                m.matcher.exact or m.matcher.prefix
                for m in validation.match_typed_subject_alt_names
            ],
            "secrets": _sds_names(common),
        }
    return summary


def _endpoints(assignment: endpoint_pb2.ClusterLoadAssignment) -> dict[str, Any]:
    addresses = [
        f"{lb.endpoint.address.socket_address.address}:"
        f"{lb.endpoint.address.socket_address.port_value}"
        for group in assignment.endpoints
        for lb in group.lb_endpoints
    ]
    return {"cluster": assignment.cluster_name, "addresses": addresses}


def _secret(secret: secret_pb2.Secret) -> dict[str, Any]:
    if secret.HasField("tls_certificate"):
        chain = authority.describe(secret.tls_certificate.certificate_chain.inline_bytes)
        leaf = chain[0] if chain else {}
        return {
            "name": secret.name,
            "kind": "certificate",
            "sans": leaf.get("sans", []),
            "serial": leaf.get("serial"),
            "notAfter": leaf.get("notAfter"),
        }
    bundle = authority.describe(secret.validation_context.trusted_ca.inline_bytes)
    return {
        "name": secret.name,
        "kind": "trust",
        "sans": [],
        "serial": bundle[0]["serial"] if bundle else None,
        "notAfter": bundle[0]["notAfter"] if bundle else None,
        "authorities": [entry["subject"] for entry in bundle],
    }


def summarize(snapshot: Snapshot) -> dict[str, list[dict[str, Any]]]:
    """Every section of a proxy's snapshot, each sorted by name."""

    def decoded(type_url: str) -> list[Any]:
        found = snapshot.resources(type_url)
        return [found[name].decode() for name in sorted(found)]

    return {
        "listeners": [_listener(x) for x in decoded(envoy_resources.LISTENER)],
        "routes": [_route(x) for x in decoded(envoy_resources.ROUTE)],
        "clusters": [_cluster(x) for x in decoded(envoy_resources.CLUSTER)],
        "endpoints": [_endpoints(x) for x in decoded(envoy_resources.ENDPOINT)],
        "secrets": [_secret(x) for x in decoded(envoy_resources.SECRET)],
    }
