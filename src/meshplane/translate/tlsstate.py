"""A virtual node's or gateway's *effective* TLS, as ``meshplane describe`` shows it.

A spec says what was asked; what a sidecar runs also depends on the mesh
(automatic mTLS), on the target's listener (a caller without an applying client
policy follows the server's mode) and on what meshplane serves in place of ACM.
This answers, per listener, the mode and where it comes from, the certificate's
source and the validation's trust and SANs; per backend, the client policy and,
per target listener, how it is called. The decisions are made by the very
functions translation uses (:mod:`meshplane.translate.tls`), so describe cannot
disagree with what Envoy is sent; the problems are the translation's own TLS
warnings, as conditions with stable reasons.

Pure: ``file_sans`` reads a certificate file's SANs when the caller can (the
control plane, for files on its machine), else nothing is known about files.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from envoy.extensions.transport_sockets.tls.v3 import tls_pb2

from meshplane.model import certnames, extensions, kinds, naming
from meshplane.model import specs_generated as g
from meshplane.model.snapshot import MeshSnapshot
from meshplane.translate import building, diagnostics, plan, specs, tls
from meshplane.translate.identity import DEFAULT_TRUST_DOMAIN, NodeIdentity

FileSans = tls.FileSans
BUILT_IN_CA = "built-in CA"

CONDITIONS = {
    "tls-acm-builtin-ca": ("TLSFromACM", "True", "AcmServedByBuiltInCA"),
    "tls-san-mismatch": ("TLSPeersVerified", "False", "SubjectAlternativeNameMismatch"),
    "tls-certificate-missing": ("TLSApplied", "False", "CertificateMissing"),
    "tls-trust-missing": ("TLSApplied", "False", "TrustMissing"),
    "tls-identity-not-own": ("TLSApplied", "False", "IdentityNotOwn"),
    "tls-policy-conflict": ("TLSApplied", "False", "ClientPolicyConflict"),
    "tls-no-ca": ("TLSApplied", "False", "NoBuiltInCA"),
}
"""Translation warning code → the condition (type, status, reason) describe shows for it."""


def _ignore(code: str, message: str) -> None:
    """Warnings are the translation's to give (:func:`_warnings`); not repeated per target."""
    del code, message


def _no_files(path: str) -> tuple[str, ...] | None:
    del path
    return None


def state(
    snapshot: MeshSnapshot,
    kind: str,
    name: str,
    *,
    domain: str = DEFAULT_TRUST_DOMAIN,
    file_sans: FileSans = _no_files,
) -> dict[str, Any] | None:
    """The effective TLS of one virtual node or gateway; ``None`` if the mesh lacks it."""
    identity = NodeIdentity(snapshot.name, kind, name, trust_domain=domain)
    automatic = extensions.mtls_of(snapshot.mesh.extensions)
    if kind == kinds.VIRTUAL_NODE.key:
        node = snapshot.virtual_nodes.get(name)
        if node is None:
            return None
        hostname = building.discovery_name(node.spec)
        served = [
            _listener(entry, identity, automatic, hostname, file_sans)
            for entry in specs.listeners(node.spec)
        ]
        backends = _node_backends(snapshot, identity, node.spec, automatic, file_sans)
    else:
        gateway = snapshot.virtual_gateways.get(name)
        if gateway is None:
            return None
        served = [
            _listener(entry, identity, None, None, file_sans)
            for entry in specs.listeners(gateway.spec)
        ]
        backends = _gateway_backends(snapshot, identity, gateway.spec, automatic, file_sans)
    warnings = _warnings(snapshot, identity, file_sans)
    return {
        "identity": tls.spiffe_id(snapshot.name, kind, name, domain),
        "automaticMtls": automatic,
        "listeners": served,
        "backends": backends,
        "conditions": conditions(warnings),
    }


def conditions(warnings: Iterable[diagnostics.Warning]) -> list[dict[str, str]]:
    """One condition per type, its messages joined, in first-seen order."""
    found: dict[str, dict[str, str]] = {}
    for code, message in [(w.code, w.message) for w in warnings if w.code in CONDITIONS]:
        condition_type, status, reason = CONDITIONS[code]
        current = found.get(condition_type)
        if current is None:
            found[condition_type] = {
                "type": condition_type,
                "status": status,
                "reason": reason,
                "message": message,
            }
        elif message not in current["message"]:
            current["message"] += f"; {message}"
    return list(found.values())


# -- listeners -----------------------------------------------------------------------------


def _listener(
    listener: specs.Listener,
    identity: NodeIdentity,
    automatic: str | None,
    hostname: str | None,
    file_sans: FileSans,
) -> dict[str, Any]:
    domain = identity.trust_domain
    own = tls.spiffe_id(identity.mesh, identity.kind, identity.name, domain)
    auto = None
    if automatic is not None:
        auto = (automatic, own, f"{tls.mesh_identities(domain)}{identity.mesh}/")
    problems: list[str] = []
    server = tls.server_tls(
        listener.tls,
        own=own,
        hostname=hostname,
        auto=auto,
        secrets={},
        warn=lambda code, _message: problems.append(code),
        domain=domain,
    )
    entry: dict[str, Any] = {"port": listener.port, "protocol": listener.protocol}
    if listener.tls is None and auto is not None:
        entry.update(
            mode=automatic,
            source="automatic mTLS (mesh tag meshplane.dev/mtls)",
            certificate={
                "source": "sds",
                "secretName": own,
                "servedBy": BUILT_IN_CA,
                "sans": [own],
            },
            validation={
                "trust": {
                    "source": "sds",
                    "secretName": tls.bundle_name(domain),
                    "servedBy": BUILT_IN_CA,
                },
                "subjectAlternativeNames": [f"{tls.mesh_identities(domain)}{identity.mesh}/*"],
            },
            mutual=True,
        )
        return entry
    if listener.tls is None:
        entry.update(
            mode="DISABLED", source="no tls", certificate=None, validation=None, mutual=False
        )
        return entry
    spec_tls = listener.tls
    entry.update(
        mode=spec_tls.mode,
        source="listener tls",
        certificate=_certificate(spec_tls.certificate, hostname, file_sans),
        validation=_validation(spec_tls.validation),
        mutual=isinstance(server, tls.ServerTls)
        and server.context.require_client_certificate.value,
    )
    if server is False:
        entry["skipped"] = f"listener skipped ({', '.join(problems)})"
    return entry


def _certificate(
    certificate: tls.Certificate, hostname: str | None, file_sans: FileSans
) -> dict[str, Any] | None:
    if certificate.file is not None:
        sans = file_sans(certificate.file.certificate_chain)
        return {
            "source": "file",
            "certificateChain": certificate.file.certificate_chain,
            "servedBy": "file",
            "sans": list(sans) if sans is not None else None,
        }
    if certificate.sds is not None:
        name = certificate.sds.secret_name
        return {
            "source": "sds",
            "secretName": name,
            "servedBy": BUILT_IN_CA,
            "sans": list(_issued(name, ())),
        }
    acm = getattr(certificate, "acm", None)
    if acm is not None:
        extra = (hostname,) if hostname else ()
        return {
            "source": "acm",
            "certificateArn": acm.certificate_arn,
            "servedBy": BUILT_IN_CA,
            "sans": list(_issued(acm.certificate_arn, extra)),
        }
    return None


def _issued(name: str, extra: tuple[str, ...]) -> tuple[str, ...]:
    """The SANs the built-in CA gives a certificate for ``name`` (what the target presents)."""
    return tuple(value for _, value in certnames.issued_sans(name, extra))


Validation = g.ListenerTlsValidationContext | g.VirtualGatewayListenerTlsValidationContext
ClientValidation = g.TlsValidationContext | g.VirtualGatewayTlsValidationContext


def _validation(validation: Validation | ClientValidation | None) -> dict[str, Any] | None:
    if validation is None:
        return None
    trust = validation.trust
    found: dict[str, Any]
    if trust.file is not None:
        found = {"source": "file", "certificateChain": trust.file.certificate_chain}
    elif trust.sds is not None:
        found = {"source": "sds", "secretName": trust.sds.secret_name, "servedBy": BUILT_IN_CA}
    elif (acm := getattr(trust, "acm", None)) is not None:
        arns = list(acm.certificate_authority_arns)
        found = {"source": "acm", "certificateAuthorityArns": arns, "servedBy": BUILT_IN_CA}
    else:
        found = {"source": None}
    sans = validation.subject_alternative_names
    return {
        "trust": found,
        "subjectAlternativeNames": list(sans.match.exact) if sans is not None else [],
    }


# -- backends ------------------------------------------------------------------------------


def _node_backends(
    snapshot: MeshSnapshot,
    identity: NodeIdentity,
    spec: g.VirtualNodeSpec,
    automatic: str | None,
    file_sans: FileSans,
) -> list[dict[str, Any]]:
    defaults = spec.backend_defaults
    default_policy = building.policy_tls(defaults.client_policy if defaults else None)
    found = []
    for entry in spec.backends or ():
        service = entry.virtual_service
        if service is None:
            continue
        own = building.policy_tls(service.client_policy)
        policy, origin = (
            (own, "backend") if own is not None else (default_policy, "backendDefaults")
        )
        found.append(
            _backend(
                snapshot,
                identity,
                service.virtual_service_name,
                policy,
                origin if policy is not None else None,
                automatic,
                file_sans,
            )
        )
    return found


def _gateway_backends(
    snapshot: MeshSnapshot,
    identity: NodeIdentity,
    spec: g.VirtualGatewaySpec,
    automatic: str | None,
    file_sans: FileSans,
) -> list[dict[str, Any]]:
    defaults = spec.backend_defaults
    policy = building.policy_tls(defaults.client_policy if defaults else None)
    services: list[str] = []
    for route in snapshot.gateway_routes.get(identity.name, {}).values():
        for body in (route.spec.http_route, route.spec.http2_route, route.spec.grpc_route):
            if body is None or body.action.target.virtual_service is None:
                continue
            name = body.action.target.virtual_service.virtual_service_name
            if name not in services:
                services.append(name)
    return [
        _backend(
            snapshot,
            identity,
            name,
            policy,
            "backendDefaults" if policy else None,
            automatic,
            file_sans,
        )
        for name in sorted(services)
    ]


def _backend(
    snapshot: MeshSnapshot,
    identity: NodeIdentity,
    service: str,
    policy: tls.ClientTls | None,
    origin: str | None,
    automatic: str | None,
    file_sans: FileSans,
) -> dict[str, Any]:
    found: dict[str, Any] = {"virtualService": service, "clientPolicy": origin}
    if policy is not None:
        found.update(
            enforce=policy.enforce is not False,
            ports=list(policy.ports or ()),
            certificate=_client_certificate(policy.certificate),
            validation=_validation(policy.validation),
        )
    egress = plan.plan_egress(snapshot, [service], [])
    found["targets"] = [
        _target(snapshot, identity, target, policy, automatic, file_sans)
        for target in egress.targets
    ]
    return found


def _client_certificate(certificate: tls.Certificate | None) -> dict[str, Any] | None:
    if certificate is None:
        return None
    if certificate.file is not None:
        return {"source": "file", "certificateChain": certificate.file.certificate_chain}
    if certificate.sds is not None:
        return {"source": "sds", "secretName": certificate.sds.secret_name, "servedBy": BUILT_IN_CA}
    return None


def _target(
    snapshot: MeshSnapshot,
    identity: NodeIdentity,
    target: plan.Target,
    policy: tls.ClientTls | None,
    automatic: str | None,
    file_sans: FileSans,
) -> dict[str, Any]:
    domain = identity.trust_domain
    node = snapshot.virtual_nodes[target.node]
    listener = next(e for e in specs.listeners(node.spec) if e.port == target.port)
    upstream = tls.Upstream(
        port=target.port,
        tls=listener.tls,
        hostname=building.discovery_name(node.spec),
        identity=tls.spiffe_id(snapshot.name, kinds.VIRTUAL_NODE.key, target.node, domain),
    )
    own = tls.spiffe_id(identity.mesh, identity.kind, identity.name, domain)
    context = tls.client_tls(
        policy,
        upstream,
        own=own,
        auto=own if automatic is not None else None,
        secrets={},
        warn=_ignore,
        domain=domain,
    )
    if tls.applies(policy, target.port):
        decided = "client policy"
    elif listener.tls is not None:
        decided = "target listener tls"
    elif automatic is not None:
        decided = "automatic mTLS"
    else:
        decided = "no tls"
    presented = tls.presented_sans(
        upstream.tls,
        hostname=upstream.hostname,
        identity=upstream.identity if automatic is not None else None,
    )
    presented_from = "built-in CA" if presented is not None else None
    if (
        presented is None
        and listener.tls is not None
        and listener.tls.mode != "DISABLED"
        and listener.tls.certificate.file is not None
    ):
        presented = file_sans(listener.tls.certificate.file.certificate_chain)
        presented_from = "file" if presented is not None else None
    expected = tls.expected_sans(policy, target.port)
    return {
        "virtualNode": target.node,
        "port": target.port,
        "tls": _mode(context),
        "decidedBy": decided,
        "expectedSans": list(expected) or _checked(context),
        "presentedSans": list(presented) if presented is not None else None,
        "presentedFrom": presented_from,
        "sanMismatch": tls.san_mismatch(expected, presented),
    }


def _mode(context: tls_pb2.UpstreamTlsContext | None) -> str:
    if context is None:
        return "plaintext"
    common = context.common_tls_context
    client = bool(common.tls_certificates) or bool(common.tls_certificate_sds_secret_configs)
    return "mTLS" if client else "TLS"


def _checked(context: tls_pb2.UpstreamTlsContext | None) -> list[str]:
    """The SANs the caller's Envoy checks when no policy names any (a DNS name, a SPIFFE ID)."""
    if context is None:
        return []
    common = context.common_tls_context
    matchers = list(common.validation_context.match_typed_subject_alt_names) + list(
        common.combined_validation_context.default_validation_context.match_typed_subject_alt_names
    )
    return sorted({m.matcher.exact or f"{m.matcher.prefix}*" for m in matchers})


# -- problems ------------------------------------------------------------------------------


def _warnings(
    snapshot: MeshSnapshot, identity: NodeIdentity, file_sans: FileSans
) -> list[diagnostics.Warning]:
    """The proxy's own TLS warnings, and those callers' translations record about it."""
    built = building.build(snapshot, identity, file_sans=file_sans)
    own = [w for w in built.warnings if w.code in CONDITIONS]
    if identity.kind != kinds.VIRTUAL_NODE.key:
        return own
    node_id = naming.node_id(identity.mesh, identity.kind, identity.name)
    for caller in _callers_with_sans(snapshot, identity.name):
        other = NodeIdentity(
            snapshot.name, kinds.VIRTUAL_NODE.key, caller, trust_domain=identity.trust_domain
        )
        own += [
            w
            for w in building.build(snapshot, other, file_sans=file_sans).warnings
            if w.code == "tls-san-mismatch" and w.resource == node_id and w not in own
        ]
    return own


def _provides(snapshot: MeshSnapshot, service: str, name: str) -> bool:
    """Whether virtual service ``service`` sends to virtual node ``name`` (directly or routed)."""
    found = snapshot.virtual_services.get(service)
    provider = found.spec.provider if found is not None else None
    if provider is None:
        return False
    if provider.virtual_node is not None:
        return provider.virtual_node.virtual_node_name == name
    if provider.virtual_router is None:
        return False
    for route in snapshot.routes.get(provider.virtual_router.virtual_router_name, {}).values():
        body = specs.route_body(route.spec)
        if body is not None and any(
            target.virtual_node == name for target in body[1].action.weighted_targets
        ):
            return True
    return False


def _callers_with_sans(snapshot: MeshSnapshot, name: str) -> list[str]:
    """Other virtual nodes calling ``name`` with client policies naming SANs (may mismatch)."""
    found = []
    for caller, node in sorted(snapshot.virtual_nodes.items()):
        if caller == name or not any(
            entry.virtual_service is not None
            and _provides(snapshot, entry.virtual_service.virtual_service_name, name)
            for entry in node.spec.backends or ()
        ):
            continue
        policies = [
            node.spec.backend_defaults.client_policy if node.spec.backend_defaults else None
        ]
        policies += [
            entry.virtual_service.client_policy
            for entry in node.spec.backends or ()
            if entry.virtual_service is not None
        ]
        if any(
            (found_tls := building.policy_tls(p)) is not None
            and found_tls.validation.subject_alternative_names is not None
            for p in policies
        ):
            found.append(caller)
    return found
