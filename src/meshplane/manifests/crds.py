"""The ``appmesh.k8s.aws/v1beta2`` kinds and the two core ``v1`` kinds meshplane accepts.

Field names, requiredness, enums and ranges follow the v1beta2 CRDs of
aws-app-mesh-controller-for-k8s (``appmesh-controller.md`` §1.2), stated in
:mod:`meshplane.manifests.schema`'s node types. Rules that span several fields
(one route type, prefix xor path, …) are the webhooks' and live in
:mod:`meshplane.manifests.admission`.
"""

from __future__ import annotations

import dataclasses

from meshplane.manifests.schema import (
    ANY_OBJECT,
    BOOLEAN,
    INTEGER,
    STRING,
    ListOf,
    MapOf,
    Node,
    Struct,
    integer,
    string,
    struct,
)

GROUP = "appmesh.k8s.aws"
API_VERSION = f"{GROUP}/v1beta2"

# --- shared building blocks (types.go) -------------------------------------------------

_LABELS = MapOf(STRING)
_SELECTOR = struct(
    matchLabels=_LABELS,
    matchExpressions=ListOf(
        struct(
            ("key", "operator"),
            key=STRING,
            operator=string("In", "NotIn", "Exists", "DoesNotExist"),
            values=ListOf(STRING),
        )
    ),
)
_DURATION = struct(("unit", "value"), unit=string("s", "ms"), value=integer(0))
_PORT = integer(1, 65535)
_ROUTE_PORT = integer(0)
_PROTOCOLS = ("grpc", "http", "http2", "tcp")
_PORT_MAPPING = struct(("port", "protocol"), port=_PORT, protocol=string(*_PROTOCOLS))
_MATCH_STRING = string(low=1, high=255)
_HEADER_MATCH = struct(
    exact=_MATCH_STRING,
    prefix=_MATCH_STRING,
    range=struct(("start", "end"), start=INTEGER, end=INTEGER),
    regex=_MATCH_STRING,
    suffix=_MATCH_STRING,
)
_HEADERS = ListOf(
    struct(("name",), name=string(low=1, high=50), match=_HEADER_MATCH, invert=BOOLEAN), 1, 10
)
"""Header matches of HTTP routes, and gRPC metadata matches (the same shape)."""
_PATH_MATCH = struct(exact=_MATCH_STRING, regex=_MATCH_STRING)
_QUERY = ListOf(struct(("name",), name=STRING, match=struct(exact=STRING)), 1, 10)
_HTTP_TIMEOUT = struct(perRequest=_DURATION, idle=_DURATION)
_NAMED_REF = struct(("name",), name=STRING, namespace=STRING)
_MESH_REF = struct(("name", "uid"), name=STRING, uid=STRING)
_SAN = struct(("match",), match=struct(("exact",), exact=ListOf(STRING)))
_CHAIN = string(low=1, high=255)
_FILE_CERT = struct(("certificateChain", "privateKey"), certificateChain=_CHAIN, privateKey=_CHAIN)
_SDS = struct(("secretName",), secretName=STRING)
_TRUST = struct(
    acm=struct(("certificateAuthorityARNs",), certificateAuthorityARNs=ListOf(STRING, 1, 3)),
    file=struct(("certificateChain",), certificateChain=_CHAIN),
    sds=_SDS,
)
_CLIENT_POLICY = struct(
    tls=struct(
        ("validation",),
        enforce=BOOLEAN,
        ports=ListOf(_PORT),
        validation=struct(("trust",), trust=_TRUST, subjectAlternativeNames=_SAN),
        certificate=struct(file=_FILE_CERT, sds=_SDS),
    )
)
_HEALTH_CHECK = struct(
    ("healthyThreshold", "intervalMillis", "protocol", "timeoutMillis", "unhealthyThreshold"),
    healthyThreshold=integer(2, 10),
    intervalMillis=integer(5000, 300000),
    path=STRING,
    port=_PORT,
    protocol=string(*_PROTOCOLS),
    timeoutMillis=integer(2000, 60000),
    unhealthyThreshold=integer(2, 10),
)
_LOGGING = struct(
    accessLog=struct(
        file=struct(
            ("path",),
            path=string(low=1, high=255),
            format=struct(
                json=ListOf(struct(("key", "value"), key=string(low=1), value=string(low=1))),
                text=STRING,
            ),
        )
    )
)
_LISTENER_TLS_CERT = struct(
    acm=struct(("certificateARN",), certificateARN=STRING), file=_FILE_CERT, sds=_SDS
)
_TLS_MODE = string("DISABLED", "PERMISSIVE", "STRICT")
_MAX_CONNECTIONS = struct(("maxConnections",), maxConnections=integer(1))
_MAX_REQUESTS = struct(("maxRequests",), maxRequests=integer(1))
_HTTP_POOL = struct(("maxConnections",), maxConnections=integer(1), maxPendingRequests=integer(1))

# --- per kind ------------------------------------------------------------------------

_MESH = struct(
    awsName=STRING,
    namespaceSelector=_SELECTOR,
    egressFilter=struct(("type",), type=string("ALLOW_ALL", "DROP_ALL")),
    meshOwner=STRING,
    meshServiceDiscovery=struct(ipPreference=string("IPv6_ONLY", "IPv4_ONLY")),
)

_VIRTUAL_NODE = struct(
    awsName=STRING,
    podSelector=_SELECTOR,
    listeners=ListOf(
        struct(
            ("portMapping",),
            portMapping=_PORT_MAPPING,
            healthCheck=_HEALTH_CHECK,
            outlierDetection=struct(
                ("maxServerErrors", "interval", "baseEjectionDuration", "maxEjectionPercent"),
                maxServerErrors=integer(1),
                interval=_DURATION,
                baseEjectionDuration=_DURATION,
                maxEjectionPercent=integer(0, 100),
            ),
            connectionPool=struct(
                tcp=_MAX_CONNECTIONS, http=_HTTP_POOL, http2=_MAX_REQUESTS, grpc=_MAX_REQUESTS
            ),
            tls=struct(
                ("certificate", "mode"),
                certificate=_LISTENER_TLS_CERT,
                mode=_TLS_MODE,
                validation=struct(
                    ("trust",),
                    trust=struct(
                        file=struct(("certificateChain",), certificateChain=_CHAIN), sds=_SDS
                    ),
                    subjectAlternativeNames=_SAN,
                ),
            ),
            timeout=struct(
                tcp=struct(idle=_DURATION),
                http=_HTTP_TIMEOUT,
                http2=_HTTP_TIMEOUT,
                grpc=_HTTP_TIMEOUT,
            ),
        )
    ),
    serviceDiscovery=struct(
        awsCloudMap=struct(
            ("namespaceName", "serviceName"),
            namespaceName=string(low=1, high=1024),
            serviceName=string(low=1, high=1024),
            attributes=ListOf(
                struct(
                    ("key", "value"), key=string(low=1, high=255), value=string(low=1, high=1024)
                )
            ),
        ),
        dns=struct(
            ("hostname",), hostname=STRING, responseType=string("ENDPOINTS", "LOADBALANCER")
        ),
    ),
    backends=ListOf(
        struct(
            ("virtualService",),
            virtualService=struct(
                virtualServiceRef=_NAMED_REF, virtualServiceARN=STRING, clientPolicy=_CLIENT_POLICY
            ),
        )
    ),
    backendGroups=ListOf(_NAMED_REF),
    backendDefaults=struct(clientPolicy=_CLIENT_POLICY),
    logging=_LOGGING,
    meshRef=_MESH_REF,
)

_WEIGHTED_TARGETS = ListOf(
    struct(
        ("weight",),
        virtualNodeRef=_NAMED_REF,
        virtualNodeARN=STRING,
        weight=integer(0, 100),
        port=_ROUTE_PORT,
    ),
    1,
    10,
)
_METHOD = string("CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE")
_HTTP_RETRY_EVENTS = ListOf(
    string("server-error", "gateway-error", "client-error", "stream-error"), 1, 25
)
_TCP_RETRY_EVENTS = ListOf(string("connection-error"), 1, 1)


def _retry_policy(**events: Node) -> Struct:
    """A route's retryPolicy; gRPC routes add their own event list first."""
    return struct(
        ("maxRetries", "perRetryTimeout"),
        **events,
        httpRetryEvents=_HTTP_RETRY_EVENTS,
        tcpRetryEvents=_TCP_RETRY_EVENTS,
        maxRetries=integer(0),
        perRetryTimeout=_DURATION,
    )


_HTTP_ROUTE = struct(
    ("match", "action"),
    match=struct(
        headers=_HEADERS,
        method=_METHOD,
        prefix=STRING,
        scheme=string("http", "https"),
        path=_PATH_MATCH,
        queryParameters=_QUERY,
        port=_ROUTE_PORT,
    ),
    action=struct(("weightedTargets",), weightedTargets=_WEIGHTED_TARGETS),
    retryPolicy=_retry_policy(),
    timeout=_HTTP_TIMEOUT,
)
_GRPC_ROUTE = struct(
    ("match", "action"),
    match=struct(
        methodName=string(low=1, high=50),
        serviceName=STRING,
        metadata=_HEADERS,
        port=_ROUTE_PORT,
    ),
    action=struct(("weightedTargets",), weightedTargets=_WEIGHTED_TARGETS),
    retryPolicy=_retry_policy(
        grpcRetryEvents=ListOf(
            string(
                "cancelled", "deadline-exceeded", "internal", "resource-exhausted", "unavailable"
            ),
            1,
            5,
        )
    ),
    timeout=_HTTP_TIMEOUT,
)
_VIRTUAL_ROUTER = struct(
    awsName=STRING,
    listeners=ListOf(struct(("portMapping",), portMapping=_PORT_MAPPING), 1),
    routes=ListOf(
        struct(
            ("name",),
            name=STRING,
            grpcRoute=_GRPC_ROUTE,
            httpRoute=_HTTP_ROUTE,
            http2Route=_HTTP_ROUTE,
            tcpRoute=struct(
                ("action",),
                match=struct(port=_ROUTE_PORT),
                action=struct(("weightedTargets",), weightedTargets=_WEIGHTED_TARGETS),
                timeout=struct(idle=_DURATION),
            ),
            priority=integer(0, 1000),
        )
    ),
    meshRef=_MESH_REF,
)

_VIRTUAL_SERVICE = struct(
    awsName=STRING,
    provider=struct(
        virtualNode=struct(virtualNodeRef=_NAMED_REF, virtualNodeARN=STRING),
        virtualRouter=struct(virtualRouterRef=_NAMED_REF, virtualRouterARN=STRING),
    ),
    meshRef=_MESH_REF,
)

_GW_PROTOCOLS = ("grpc", "http", "http2")
_VIRTUAL_GATEWAY = struct(
    awsName=STRING,
    namespaceSelector=_SELECTOR,
    podSelector=_SELECTOR,
    gatewayRouteSelector=_SELECTOR,
    listeners=ListOf(
        struct(
            ("portMapping",),
            portMapping=struct(("port", "protocol"), port=_PORT, protocol=string(*_GW_PROTOCOLS)),
            healthCheck=struct(
                tuple(_HEALTH_CHECK.required),
                **{**_HEALTH_CHECK.fields, "protocol": string(*_GW_PROTOCOLS)},
            ),
            connectionPool=struct(http=_HTTP_POOL, http2=_MAX_REQUESTS, grpc=_MAX_REQUESTS),
            tls=struct(
                ("certificate", "mode"),
                certificate=_LISTENER_TLS_CERT,
                mode=_TLS_MODE,
                validation=struct(("trust",), trust=_TRUST, subjectAlternativeNames=_SAN),
            ),
        )
    ),
    logging=_LOGGING,
    backendDefaults=struct(clientPolicy=_CLIENT_POLICY),
    meshRef=_MESH_REF,
)

_GR_TARGET = struct(
    ("virtualService",),
    virtualService=struct(virtualServiceRef=_NAMED_REF, virtualServiceARN=STRING),
    port=_ROUTE_PORT,
)
_HOSTNAME_MATCH = struct(exact=string(low=1, high=253), suffix=string(low=1, high=253))
_HOSTNAME_REWRITE = struct(defaultTargetHostname=string("ENABLED", "DISABLED"))
_HTTP_GATEWAY_ROUTE = struct(
    ("match", "action"),
    match=struct(
        prefix=STRING,
        path=_PATH_MATCH,
        queryParameters=_QUERY,
        method=_METHOD,
        hostname=_HOSTNAME_MATCH,
        headers=_HEADERS,
        port=_ROUTE_PORT,
    ),
    action=struct(
        ("target",),
        target=_GR_TARGET,
        rewrite=struct(
            prefix=struct(
                defaultPrefix=string("ENABLED", "DISABLED"), value=string(low=1, high=255)
            ),
            path=struct(exact=string(low=1, high=255)),
            hostname=_HOSTNAME_REWRITE,
        ),
    ),
)
_GATEWAY_ROUTE = struct(
    awsName=STRING,
    priority=integer(0, 1000),
    grpcRoute=struct(
        ("match", "action"),
        match=struct(
            serviceName=STRING,
            hostname=_HOSTNAME_MATCH,
            metadata=_HEADERS,
            port=_ROUTE_PORT,
        ),
        action=struct(("target",), target=_GR_TARGET, rewrite=struct(hostname=_HOSTNAME_REWRITE)),
    ),
    httpRoute=_HTTP_GATEWAY_ROUTE,
    http2Route=_HTTP_GATEWAY_ROUTE,
    virtualGatewayRef=struct(("name", "uid"), name=STRING, namespace=STRING, uid=STRING),
    meshRef=_MESH_REF,
)

_BACKEND_GROUP = struct(virtualservices=ListOf(_NAMED_REF), meshRef=_MESH_REF)

# Plain v1 Service: meshplane keeps it for its name (the VS's DNS identity) and ports.
_SERVICE = Struct(
    {
        "ports": ListOf(
            Struct(
                {"name": STRING, "port": _PORT, "protocol": string("TCP", "UDP", "SCTP")},
                frozenset({"port"}),
                open=True,
            )
        ),
        "selector": _LABELS,
    },
    open=True,
)
_NAMESPACE = ANY_OBJECT

METADATA = Struct(
    {
        "name": string(low=1, high=253),
        "namespace": STRING,
        "labels": _LABELS,
        "annotations": _LABELS,
    },
    frozenset({"name"}),
    open=True,  # uid, generation, creationTimestamp… from `get -o yaml` are ignored
)


@dataclasses.dataclass(frozen=True)
class KindInfo:
    """What meshplane knows about one accepted kind."""

    kind: str
    api_version: str
    plural: str
    short_names: tuple[str, ...]
    namespaced: bool
    spec: Node
    aws_title: str | None
    """The App Mesh resource it twins (``VirtualNode``), or ``None`` for kinds with no twin."""

    @property
    def singular(self) -> str:
        """Lower-case kind: ``virtualnode``."""
        return self.kind.lower()

    @property
    def qualified(self) -> str:
        """The ``singular.group`` of apply output lines: ``virtualnode.appmesh.k8s.aws``."""
        group = self.api_version.rpartition("/")[0]
        return f"{self.singular}.{group}" if group else self.singular

    @property
    def resource(self) -> str:
        """The ``plural.group`` kubectl prints, e.g. ``virtualnodes.appmesh.k8s.aws``."""
        group = self.api_version.rpartition("/")[0]
        return f"{self.plural}.{group}" if group else self.plural


def _appmesh(
    kind: str, plural: str, shorts: tuple[str, ...], spec: Node, twin: bool = True
) -> KindInfo:
    return KindInfo(kind, API_VERSION, plural, shorts, kind != "Mesh", spec, kind if twin else None)


ALL: tuple[KindInfo, ...] = (
    KindInfo("Namespace", "v1", "namespaces", ("ns",), False, _NAMESPACE, None),
    KindInfo("Service", "v1", "services", ("svc",), True, _SERVICE, None),
    _appmesh("Mesh", "meshes", (), _MESH),
    _appmesh("VirtualNode", "virtualnodes", ("vn",), _VIRTUAL_NODE),
    _appmesh("VirtualRouter", "virtualrouters", ("vr",), _VIRTUAL_ROUTER),
    _appmesh("VirtualService", "virtualservices", ("vs",), _VIRTUAL_SERVICE),
    _appmesh("VirtualGateway", "virtualgateways", ("vg",), _VIRTUAL_GATEWAY),
    _appmesh("GatewayRoute", "gatewayroutes", ("gr",), _GATEWAY_ROUTE),
    _appmesh("BackendGroup", "backendgroups", ("bg",), _BACKEND_GROUP, twin=False),
)
BY_KIND: dict[str, KindInfo] = {info.kind: info for info in ALL}

# What users run instead of the kinds meshplane refuses, for the refusal message.
INSTEAD: dict[str, str] = {
    "Deployment": "meshplane does not run workloads from manifests: its local runtime supervises "
    "them, and a VirtualNode's podSelector matches their labels",
    "Pod": "meshplane does not run workloads from manifests: its local runtime supervises them, "
    "and a VirtualNode's podSelector matches their labels",
    "Ingress": "use a VirtualGateway with GatewayRoutes",
    "ConfigMap": "configure meshplane with its MESHPLANE_* settings",
    "Secret": "point the listener's tls.certificate.file at certificate files",
}


def lookup(name: str) -> KindInfo | None:
    """Resolve a CLI kind word: kind, singular, plural, short name or ``plural.group``."""
    word = name.lower()
    for info in ALL:
        names = {info.singular, info.plural, info.resource, *info.short_names}
        if word in names:
            return info
    return None


def accepted_kinds() -> str:
    """The accepted kinds, for messages."""
    return ", ".join(info.kind for info in ALL)
