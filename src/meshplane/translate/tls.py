"""Transport security: App Mesh's listener TLS and client policies as Envoy TLS contexts.

App Mesh's rules (``appmesh-controller.md`` §3.6), applied exactly:

- a listener's ``tls`` is a downstream TLS context on its filter chain: STRICT
  only TLS, PERMISSIVE TLS and plaintext on one port (``tls_inspector`` picks
  the chain by transport protocol), DISABLED plaintext; a ``validation`` makes
  it mutual (client certificates required and checked against the trust and
  the SANs);
- a caller's enforced client policy whose ``ports`` include the target port
  (a backend's own, else ``backendDefaults``) drives the caller's upstream TLS
  context; without one the server's mode decides: STRICT or PERMISSIVE servers
  are called over TLS, validated against the built-in CA for an ACM
  certificate and not validated for a file or SDS one;
- with no SANs a client checks the server's service-discovery name.

meshplane adds what App Mesh had no way to do off AWS, always visibly:
``sds`` secrets and ACM references are served by the control plane from its
built-in CA (an ACM reference with a warning), and a mesh's
``meshplane.dev/mtls`` tag gives every listener without its own ``tls``
mutual TLS with one SPIFFE ID per virtual node. A setting that cannot be
honoured skips the listener (no plaintext in its place) and says why.

The translator stays pure: it names the secrets it needs
(:class:`SecretRequest`); the sync stage has them issued and served over SDS.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, MutableMapping
from typing import Literal

from envoy.config.core.v3 import base_pb2, config_source_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, secret_pb2, tls_pb2
from envoy.type.matcher.v3 import string_pb2

from meshplane.model import certnames
from meshplane.model import specs_generated as g
from meshplane.translate.identity import DEFAULT_TRUST_DOMAIN

TRANSPORT_SOCKET = "envoy.transport_sockets.tls"
TLS_INSPECTOR = "envoy.filters.listener.tls_inspector"
TRUST_DOMAIN = DEFAULT_TRUST_DOMAIN
"""The default SPIFFE trust domain of the built-in CA's identities (``--trust-domain``)."""
TRUST_BUNDLE = f"spiffe://{TRUST_DOMAIN}"
"""The secret name of the built-in CA bundle (SPIRE's name for a trust domain's bundle)."""
MESH_IDENTITIES = f"{TRUST_BUNDLE}/mesh/"
"""Automatic mTLS's identities: a spec may name its own as an SDS secret, no other."""


def bundle_name(domain: str = TRUST_DOMAIN) -> str:
    """The SDS secret name of a trust domain's CA bundle: ``spiffe://<domain>``."""
    return f"spiffe://{domain}"


def mesh_identities(domain: str = TRUST_DOMAIN) -> str:
    """The prefix of every automatic-mTLS identity in a trust domain."""
    return f"{bundle_name(domain)}/mesh/"


ListenerTls = g.ListenerTls | g.VirtualGatewayListenerTls
ClientTls = g.ClientPolicyTls | g.VirtualGatewayClientPolicyTls
Warn = Callable[[str, str], None]
"""Records a warning: (code, message)."""


@dataclasses.dataclass(frozen=True, order=True)
class SecretRequest:
    """A secret one sidecar's config names, to be served over SDS by the control plane."""

    name: str
    kind: Literal["certificate", "trust"]
    """``certificate``: a key and a leaf certificate; ``trust``: the CA bundle."""
    dns_names: tuple[str, ...] = ()
    """DNS SANs beyond what the name gives (an ACM certificate's service-discovery name)."""
    authorities: tuple[str, ...] = ()
    """A trust's ACM Private CA ARNs: each one's own CA when it has one (else the built-in)."""


FileSans = Callable[[str], tuple[str, ...] | None]
"""A certificate file's path → its leaf's SANs, or ``None`` when it cannot be read."""

Secrets = MutableMapping[str, SecretRequest]
"""Secret name → request, gathered while translating one sidecar."""


@dataclasses.dataclass(frozen=True)
class ServerTls:
    """How one listener accepts connections: ``STRICT`` or ``PERMISSIVE`` with this context."""

    mode: str
    context: tls_pb2.DownstreamTlsContext


def spiffe_id(mesh: str, kind: str, name: str, domain: str = TRUST_DOMAIN) -> str:
    """The SPIFFE ID automatic mTLS gives a virtual node or gateway."""
    return f"{mesh_identities(domain)}{mesh}/{kind}/{name}"


def socket(
    context: tls_pb2.DownstreamTlsContext | tls_pb2.UpstreamTlsContext,
) -> base_pb2.TransportSocket:
    """The TLS transport socket carrying ``context``."""
    transport = base_pb2.TransportSocket(name=TRANSPORT_SOCKET)
    transport.typed_config.Pack(context)
    return transport


# -- the server side -----------------------------------------------------------------------


def server_tls(
    tls: ListenerTls | None,
    *,
    own: str,
    hostname: str | None,
    auto: tuple[str, str, str] | None,
    secrets: Secrets,
    warn: Warn,
    domain: str = TRUST_DOMAIN,
) -> ServerTls | Literal[False] | None:
    """A listener's TLS: a context, ``None`` for plaintext, ``False`` when it must be skipped.

    ``own`` is the sidecar's SPIFFE ID; ``auto`` is (mode, own SPIFFE ID, accepted
    SAN prefix) under the mesh's automatic mTLS, applied only when the listener has no
    ``tls`` of its own.
    """
    if tls is None:
        if auto is None:
            return None
        mode, identity, peers = auto
        context = tls_pb2.DownstreamTlsContext()
        context.require_client_certificate.value = True
        common = context.common_tls_context
        common.tls_certificate_sds_secret_configs.append(_sds(identity))
        secrets[identity] = SecretRequest(identity, "certificate")
        bundle = bundle_name(domain)
        _trust_sds(common, bundle, [_san(common_pb2.SubjectAltNameMatcher.URI, prefix=peers)])
        secrets[bundle] = SecretRequest(bundle, "trust")
        return ServerTls(mode, context)
    if tls.mode == "DISABLED":
        return None
    context = tls_pb2.DownstreamTlsContext()
    common = context.common_tls_context
    # Secrets are kept only if the listener is: Envoy never asks for a skipped one's, and
    # the proxy would never count as synced.
    needed: dict[str, SecretRequest] = {}
    found = _certificate(
        common,
        tls.certificate,
        own=own,
        hostname=hostname,
        secrets=needed,
        warn=warn,
        domain=domain,
    )
    if found == "missing":
        warn("tls-certificate-missing", "listener tls has no certificate; listener skipped")
    if found != "ok":
        return False
    if tls.validation is not None:
        trust = tls.validation.trust
        names = _exact_sans(tls.validation.subject_alternative_names)
        if not _trust(common, trust.file, trust.sds, None, names, needed, warn):
            warn("tls-trust-missing", "listener tls validation has no trust; listener skipped")
            return False
        context.require_client_certificate.value = True
    secrets.update(needed)
    return ServerTls(tls.mode, context)


# -- the client side -----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Upstream:
    """What a caller knows of one target listener when it decides how to call it."""

    port: int
    tls: ListenerTls | None
    """The target listener's own ``tls``."""
    hostname: str | None
    """The target's service-discovery name (DNS hostname, or Cloud Map ``service.namespace``)."""
    identity: str
    """The target's SPIFFE ID under automatic mTLS."""


def applies(policy: ClientTls | None, port: int) -> bool:
    """Whether an (enforced, by default) client policy covers a target port."""
    if policy is None or policy.enforce is False:
        return False
    return not policy.ports or port in policy.ports


def client_tls(
    policy: ClientTls | None,
    upstream: Upstream,
    *,
    own: str,
    auto: str | None,
    secrets: Secrets,
    warn: Warn,
    domain: str = TRUST_DOMAIN,
) -> tls_pb2.UpstreamTlsContext | None:
    """The caller's TLS context toward one target listener, or ``None`` for plaintext.

    ``own`` is the caller's SPIFFE ID; ``auto`` is it too when the mesh has automatic mTLS.
    """
    context = tls_pb2.UpstreamTlsContext()
    common = context.common_tls_context
    if policy is not None and applies(policy, upstream.port):
        if policy.certificate is not None:
            certificate = policy.certificate
            _certificate(
                common,
                certificate,
                own=own,
                hostname=None,
                secrets=secrets,
                warn=warn,
                domain=domain,
            )
        trust = policy.validation.trust
        names = _exact_sans(policy.validation.subject_alternative_names)
        if not names and upstream.hostname:
            names = [_san(common_pb2.SubjectAltNameMatcher.DNS, exact=upstream.hostname)]
        acm = trust.acm.certificate_authority_arns if trust.acm is not None else None
        if not _trust(common, trust.file, trust.sds, acm, names, secrets, warn):
            # The model requires one trust; never fall back to an unvalidated call.
            warn("tls-trust-missing", "client policy tls validation has no trust; TLS unvalidated")
        return context
    server = upstream.tls
    if server is not None:
        if server.mode == "DISABLED":
            return None
        if server.certificate.acm is not None:
            # App Mesh validates an ACM server certificate against its root CA: the built-in one.
            names = (
                [_san(common_pb2.SubjectAltNameMatcher.DNS, exact=upstream.hostname)]
                if upstream.hostname
                else []
            )
            _trust_sds(common, bundle_name(domain), names)
            secrets[bundle_name(domain)] = SecretRequest(bundle_name(domain), "trust")
        return context
    if auto is None:
        return None
    common.tls_certificate_sds_secret_configs.append(_sds(auto))
    secrets[auto] = SecretRequest(auto, "certificate")
    exact = [_san(common_pb2.SubjectAltNameMatcher.URI, exact=upstream.identity)]
    _trust_sds(common, bundle_name(domain), exact)
    secrets[bundle_name(domain)] = SecretRequest(bundle_name(domain), "trust")
    return context


def presented_sans(
    server: ListenerTls | None, *, hostname: str | None, identity: str | None
) -> tuple[str, ...] | None:
    """The SANs of the certificate a target listener presents, when translation knows them.

    Known statically for what the built-in CA issues: an ``sds`` secret (its name), an
    ``acm`` certificate (the target's service-discovery name) and automatic mTLS's
    ``identity`` (``None`` when the mesh has none). ``None`` otherwise: plaintext, or a
    ``file`` certificate, which only the target's Envoy reads.
    """
    if server is None:
        return (identity,) if identity is not None else None
    if server.mode == "DISABLED":
        return None
    certificate = server.certificate
    if certificate.sds is not None:
        return tuple(value for _, value in certnames.issued_sans(certificate.sds.secret_name))
    if certificate.acm is not None:
        extra = (hostname,) if hostname else ()
        arn = certificate.acm.certificate_arn
        return tuple(value for _, value in certnames.issued_sans(arn, extra))
    return None


def expected_sans(policy: ClientTls | None, port: int) -> tuple[str, ...]:
    """The ``match.exact`` SANs an applying client policy demands of the target (may be none)."""
    if policy is None or not applies(policy, port):
        return ()
    sans = policy.validation.subject_alternative_names
    return tuple(sans.match.exact) if sans is not None else ()


def san_mismatch(expected: Iterable[str], presented: Iterable[str] | None) -> bool:
    """Whether a client demanding ``expected`` SANs must refuse a certificate with ``presented``."""
    wanted = set(expected)
    if not wanted or presented is None:
        return False
    return not wanted & set(presented)


def mismatch_message(
    caller: str, node: str, port: int, expected: Iterable[str], presented: Iterable[str]
) -> str:
    """The sentence of a ``tls-san-mismatch`` warning: who calls whom, and both SANs."""
    return (
        f"{caller}: calls to {node} port {port} fail: the client policy accepts SAN "
        f"{', '.join(expected)} but {node}'s certificate carries "
        f"{', '.join(presented) or 'no SAN'}"
    )


# -- secrets the control plane serves -----------------------------------------------------


def certificate_secret(name: str, chain_pem: bytes, key_pem: bytes) -> secret_pb2.Secret:
    """An SDS secret holding a leaf certificate (with its chain) and its private key."""
    secret = secret_pb2.Secret(name=name)
    secret.tls_certificate.certificate_chain.inline_bytes = chain_pem
    secret.tls_certificate.private_key.inline_bytes = key_pem
    return secret


def trust_secret(name: str, bundle_pem: bytes) -> secret_pb2.Secret:
    """An SDS secret holding a validation context: the CA bundle to trust."""
    secret = secret_pb2.Secret(name=name)
    secret.validation_context.trusted_ca.inline_bytes = bundle_pem
    return secret


# -- pieces --------------------------------------------------------------------------------

Certificate = (
    g.ListenerTlsCertificate
    | g.VirtualGatewayListenerTlsCertificate
    | g.ClientTlsCertificate
    | g.VirtualGatewayClientTlsCertificate
)
FileTrust = g.TlsValidationContextFileTrust | g.VirtualGatewayTlsValidationContextFileTrust
SdsTrust = g.TlsValidationContextSdsTrust | g.VirtualGatewayTlsValidationContextSdsTrust


def _certificate(
    common: tls_pb2.CommonTlsContext,
    certificate: Certificate,
    *,
    own: str,
    hostname: str | None,
    secrets: Secrets,
    warn: Warn,
    domain: str,
) -> Literal["ok", "missing", "refused"]:
    """Put the certificate (file, SDS or ACM) on the context.

    ``missing`` when it names none; ``refused`` (with a warning) for an SDS name that
    is another sidecar's automatic-mTLS identity: the CA issues whatever a secret name
    says, so without this any spec could borrow another node's identity.
    """
    if certificate.file is not None:
        pair = common.tls_certificates.add()
        pair.certificate_chain.filename = certificate.file.certificate_chain
        pair.private_key.filename = certificate.file.private_key
        return "ok"
    if certificate.sds is not None:
        name = certificate.sds.secret_name
        if name.startswith(mesh_identities(domain)) and name != own:
            warn(
                "tls-identity-not-own",
                f"SDS secret {name} is another proxy's identity (this one is {own}); not issued",
            )
            return "refused"
        common.tls_certificate_sds_secret_configs.append(_sds(name))
        secrets[name] = SecretRequest(name, "certificate")
        return "ok"
    acm = getattr(certificate, "acm", None)
    if acm is not None:
        arn = acm.certificate_arn
        common.tls_certificate_sds_secret_configs.append(_sds(arn))
        secrets[arn] = SecretRequest(arn, "certificate", (hostname,) if hostname else ())
        warn(
            "tls-acm-builtin-ca",
            f"ACM certificate {arn} is unreachable off AWS; served by meshplane's built-in CA"
            + (f" for {hostname}" if hostname else "")
            + " (or by the CA imported for it with `meshplane ca import --certificate`)",
        )
        return "ok"
    return "missing"


def _trust(
    common: tls_pb2.CommonTlsContext,
    file: FileTrust | None,
    sds: SdsTrust | None,
    acm: Iterable[str] | None,
    names: list[common_pb2.SubjectAltNameMatcher],
    secrets: Secrets,
    warn: Warn,
) -> bool:
    """Validate the peer against a trust file, an SDS trust or ACM PCAs; False if none."""
    if file is not None:
        validation = common.validation_context
        validation.trusted_ca.filename = file.certificate_chain
        validation.match_typed_subject_alt_names.extend(names)
        return True
    if sds is not None:
        _trust_sds(common, sds.secret_name, names)
        secrets[sds.secret_name] = SecretRequest(sds.secret_name, "trust")
        return True
    arns = list(acm or ())
    if arns:
        # Every referenced PCA is served under the first ARN's name: the CA imported for an
        # ARN (pki.authorities), else the built-in CA.
        _trust_sds(common, arns[0], names)
        secrets[arns[0]] = SecretRequest(arns[0], "trust", authorities=tuple(arns))
        warn(
            "tls-acm-builtin-ca",
            f"ACM PCA {', '.join(arns)} is unreachable off AWS; "
            "peers are validated against meshplane's built-in CA "
            "(or against the CA imported for that ARN with `meshplane ca import`)",
        )
        return True
    return False


def _trust_sds(
    common: tls_pb2.CommonTlsContext, name: str, names: list[common_pb2.SubjectAltNameMatcher]
) -> None:
    """Validate against the SDS secret ``name``, checking ``names`` when there are any."""
    if not names:
        common.validation_context_sds_secret_config.CopyFrom(_sds(name))
        return
    combined = common.combined_validation_context
    combined.default_validation_context.match_typed_subject_alt_names.extend(names)
    combined.validation_context_sds_secret_config.CopyFrom(_sds(name))


def _exact_sans(sans: g.SubjectAlternativeNames | None) -> list[common_pb2.SubjectAltNameMatcher]:
    """App Mesh's ``match.exact`` SANs: each one accepted as a DNS or a URI SAN."""
    exact = sans.match.exact if sans is not None else ()
    return [
        _san(san_type, exact=value)
        for value in exact
        for san_type in (common_pb2.SubjectAltNameMatcher.DNS, common_pb2.SubjectAltNameMatcher.URI)
    ]


def _san(
    san_type: common_pb2.SubjectAltNameMatcher.SanType.ValueType,
    *,
    exact: str | None = None,
    prefix: str | None = None,
) -> common_pb2.SubjectAltNameMatcher:
    """One typed SAN matcher (exact, or a prefix for automatic mTLS's mesh members)."""
    matcher = (
        string_pb2.StringMatcher(exact=exact)
        if exact is not None
        else string_pb2.StringMatcher(prefix=prefix or "")
    )
    return common_pb2.SubjectAltNameMatcher(san_type=san_type, matcher=matcher)


def _sds(name: str) -> secret_pb2.SdsSecretConfig:
    """A secret fetched over the ADS stream."""
    config = secret_pb2.SdsSecretConfig(name=name)
    config.sds_config.ads.SetInParent()
    config.sds_config.resource_api_version = config_source_pb2.V3
    return config
