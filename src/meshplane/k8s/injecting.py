"""The sidecar injector: what appmesh-controller's ``/mutate-v1-pod`` webhook did to a pod.

A pure function from (pod, its namespace's labels, the VirtualNodes and
VirtualGateways of the catalog, the injector's configuration) to a
:class:`Decision`: leave the pod alone, refuse it with the real controller's
message, or patch it (``appmesh-controller.md`` §2, ``k8s-mode.md`` §1):

* the mode is the namespace label ``appmesh.k8s.aws/sidecarInjectorWebhook``,
  overridden by the pod annotation of the same key; ``enabled`` without a match
  refuses the pod, ``disabled`` skips it, anything else injects matches only;
* the VirtualNode (or VirtualGateway) is the one in the pod's namespace whose
  ``podSelector`` matches the pod's labels; one whose ``meshRef`` is still
  unset counts as no match, several matches refuse the pod; so do a namespace
  labelled for a mesh that does not exist and a match that is not Active
  (:mod:`meshplane.k8s.refusals` words every refusal with what to fix);
* a VirtualNode pod gains the ``proxyinit`` init container (the ``APPMESH_*``
  iptables contract) and the ``envoy`` container (uid 1337, admin 9901, ready on
  ``/ready``), whose Envoy is upstream Envoy bootstrapped for meshplane's xDS
  with node id ``mesh/<mesh>/virtualNode/<vn>`` (App Mesh's
  ``APPMESH_RESOURCE_ARN``);
* a VirtualGateway pod's own ``envoy`` container gets the sidecar image (unless
  ``virtualGatewaySkipImageOverride``), the bootstrap and the same env.

A virtual node's Envoy announces ``{"meshplane": {"interception": "iptables"}}``: it
sits behind proxyinit's rules, so it gets App Mesh's intercepted layout (0.0.0.0:15000
and :15001 with original-destination chains). With ``xds_identity`` the pod also gets
a projected service-account token (audience ``meshplane``, :data:`TOKEN_EXPIRATION_S`)
and meshplane's CA, and its bootstrap dials the TLS xDS port with gRPC call
credentials that send the token file as ``authorization: Bearer`` on every stream
(Envoy's ``file_based_metadata``; the file is read again at each reconnect, so the
kubelet's refreshes are picked up). With ``native_sidecars`` (Kubernetes ≥ 1.29)
Envoy is an init container with ``restartPolicy: Always`` and a startup probe on
``/ready``, so the app starts only once its Envoy is ready.

Injection is idempotent: an existing ``envoy`` container or ``proxyinit`` init
container is kept as it is.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from meshplane import __version__
from meshplane.envoy import bootstrapping
from meshplane.k8s import refusals
from meshplane.manifests.catalog import Catalog
from meshplane.manifests.objects import ManifestObject
from meshplane.model import naming, selectors

PREFIX = "appmesh.k8s.aws/"
INJECT = f"{PREFIX}sidecarInjectorWebhook"
ENVOY = "envoy"
PROXY_INIT = "proxyinit"
ENVOY_UID = 1337
INGRESS_PORT = 15000
EGRESS_PORT = 15001

NO_MATCH = "sidecarInject enabled but no matching VirtualNode or VirtualGateway found"
SEVERAL_NODES = "found multiple matching VirtualNodes for pod"
SEVERAL_GATEWAYS = "found multiple matching VirtualGateways for pod"
BOTH = "found matching VirtualNode and VirtualGateway for pod, expecting only one"

JsonPatch = list[dict[str, Any]]

TOKEN_VOLUME = "meshplane-token"
TOKEN_DIR = "/var/run/secrets/meshplane"
TOKEN_FILE = "token"
TOKEN_AUDIENCE = "meshplane"
TOKEN_EXPIRATION_S = 3600
"""An hour; the kubelet refreshes the file at 80 %. A stream is checked again at every resync
with the token it opened with, so once that expires the sidecar is disconnected and reconnects
with the refreshed file: the shortest lifetime (600 s) would cycle every stream every ~10 min."""
CA_VOLUME = "meshplane-xds-ca"
CA_DIR = "/var/run/secrets/meshplane-ca"
CA_FILE = "ca.pem"
CA_ANNOTATION = "meshplane.dev/xds-ca"
"""The pod annotation holding meshplane's CA; a downward-API volume makes it a file."""
AWS_IMAGE_CA = "/etc/pki/tls/cert.pem"
"""Where the aws-appmesh-envoy image reads the roots it trusts for its management server."""
INTERCEPTED = {"meshplane": {"bind": "0.0.0.0", "interception": "iptables"}}
"""A virtual node's sidecar metadata: it serves the pod IP, behind proxyinit's iptables."""


@dataclasses.dataclass(frozen=True)
class InjectorConfig:
    """The injector's flags; names and defaults follow the appmesh-controller chart."""

    sidecar_image: str = "envoyproxy/envoy:v1.40.0"
    init_image: str = (
        "840364872350.dkr.ecr.us-west-2.amazonaws.com/aws-appmesh-proxy-route-manager:v7-prod"
    )
    region: str = "us-west-2"
    log_level: str = "info"
    admin_port: int = 9901
    admin_access_log: str = "/tmp/envoy_admin_access.log"
    ignored_ips: str = "169.254.169.254"
    cpu_request: str = "10m"
    memory_request: str = "32Mi"
    cpu_limit: str = ""
    memory_limit: str = ""
    prestop_delay_s: int = 20
    xds_host: str = "meshplane-xds.appmesh-system.svc"
    """Where injected Envoys reach meshplane's ADS (the chart's xDS Service)."""
    xds_port: int = 15010
    fs_group: bool = True
    """fsGroup 1337 for pods without one (the controller's IAM-for-service-accounts default)."""
    xds_identity: bool = False
    """Give the sidecar its pod's service-account token and dial xDS over TLS with it."""
    xds_tls_port: int = 15012
    """meshplane's ADS over TLS, where sidecars with call credentials connect."""
    xds_ca_pem: str = ""
    """The CA that signs the xDS server certificate (mounted into injected pods)."""
    native_sidecars: bool = False
    """Envoy as a native sidecar (init container, restartPolicy Always): Kubernetes >= 1.29."""


@dataclasses.dataclass(frozen=True)
class Decision:
    """The webhook's answer for one pod."""

    allowed: bool
    message: str = ""
    patch: tuple[dict[str, Any], ...] = ()


def inject(
    pod: Mapping[str, Any],
    namespace: str,
    namespace_labels: Mapping[str, str],
    catalog: Catalog,
    config: InjectorConfig,
) -> Decision:
    """Decide and build the pod's mutation (``namespace`` is the admission request's)."""
    metadata = pod.get("metadata") or {}
    annotations: dict[str, str] = dict(metadata.get("annotations") or {})
    labels: dict[str, str] = dict(metadata.get("labels") or {})
    mode = annotations.get(INJECT, namespace_labels.get(INJECT, "")).lower()
    if mode == "disabled":
        return Decision(True)
    selecting_nodes = _selecting(catalog.of_kind("VirtualNode", namespace), labels)
    selecting_gateways = _selecting(catalog.of_kind("VirtualGateway", namespace), labels)
    nodes = _members(selecting_nodes)
    gateways = _members(selecting_gateways)
    if len(nodes) > 1:
        return Decision(False, refusals.several(SEVERAL_NODES, "VirtualNode", nodes, labels))
    if len(gateways) > 1:
        return Decision(
            False, refusals.several(SEVERAL_GATEWAYS, "VirtualGateway", gateways, labels)
        )
    if nodes and gateways:
        return Decision(False, refusals.both(BOTH, nodes[0], gateways[0]))
    if mode == "enabled" or selecting_nodes or selecting_gateways:
        missing = refusals.missing_mesh(namespace, namespace_labels, catalog)
        if missing is not None:
            return Decision(False, missing)
    if not nodes and not gateways:
        return Decision(False, NO_MATCH) if mode == "enabled" else Decision(True)
    member = nodes[0] if nodes else gateways[0]
    inactive = refusals.not_active(member)
    if inactive is not None:
        return Decision(False, inactive)
    if nodes:
        return Decision(True, patch=tuple(_node_patch(pod, member, catalog, config)))
    return Decision(True, patch=tuple(_gateway_patch(pod, member, catalog, config)))


def _selecting(candidates: list[ManifestObject], labels: Mapping[str, str]) -> list[ManifestObject]:
    """The objects (not being deleted) whose ``podSelector`` selects the pod."""
    return [
        c
        for c in candidates
        if not c.deleting and selectors.selects(c.spec.get("podSelector"), labels)
    ]


def _members(selecting: list[ManifestObject]) -> list[ManifestObject]:
    """Those in a mesh: one without a meshRef is not a member yet (the controller's rule)."""
    return [c for c in selecting if c.spec.get("meshRef") is not None]


def resource_name(member: ManifestObject, catalog: Catalog) -> str:
    """``mesh/<mesh awsName>/<virtualNode|virtualGateway>/<awsName>``: the node id."""
    mesh_name = member.spec["meshRef"]["name"]
    mesh = catalog.get("Mesh", "", mesh_name)
    mesh_aws = (mesh.spec.get("awsName") if mesh else None) or mesh_name
    owner = (mesh.spec.get("meshOwner") if mesh else None) or ""
    if owner:
        mesh_aws = f"{mesh_aws}@{owner}"
    kind = "virtualNode" if member.kind == "VirtualNode" else "virtualGateway"
    name = member.spec.get("awsName") or naming.default_aws_name(
        member.kind, member.name, member.namespace
    )
    return f"mesh/{mesh_aws}/{kind}/{name}"


def _resources(annotations: Mapping[str, str], config: InjectorConfig) -> dict[str, Any]:
    requests = {
        "cpu": annotations.get(f"{PREFIX}cpuRequest", config.cpu_request),
        "memory": annotations.get(f"{PREFIX}memoryRequest", config.memory_request),
    }
    limits = {
        "cpu": annotations.get(f"{PREFIX}cpuLimit", config.cpu_limit),
        "memory": annotations.get(f"{PREFIX}memoryLimit", config.memory_limit),
    }
    found: dict[str, Any] = {"requests": {k: v for k, v in requests.items() if v}}
    if any(limits.values()):
        found["limits"] = {k: v for k, v in limits.items() if v}
    return found


def _env(name: str, value: str) -> dict[str, Any]:
    return {"name": name, "value": value}


def _annotation_env(annotations: Mapping[str, str]) -> list[dict[str, Any]]:
    """``sidecarEnv`` ("K=V, K2=V2") then ``sidecarEnvJson`` (a list of flat objects)."""
    found: list[dict[str, Any]] = []
    for pair in annotations.get(f"{PREFIX}sidecarEnv", "").split(","):
        key, sep, value = pair.strip().partition("=")
        if sep and key.strip():
            found.append(_env(key.strip(), value.strip()))
    raw = annotations.get(f"{PREFIX}sidecarEnvJson", "")
    if raw:
        try:
            listed = json.loads(raw)
        except ValueError:
            listed = []
        for entry in listed if isinstance(listed, list) else []:
            if isinstance(entry, dict):
                found += [_env(str(k), str(v)) for k, v in entry.items()]
    return found


def _controller_env(
    arn: str, annotations: Mapping[str, str], config: InjectorConfig
) -> list[dict[str, Any]]:
    preview = "1" if annotations.get(f"{PREFIX}preview", "").lower() == "enabled" else "0"
    return [
        _env("APPMESH_RESOURCE_ARN", arn),
        _env("APPMESH_VIRTUAL_NODE_NAME", arn),
        _env("AWS_REGION", config.region),
        _env("ENVOY_LOG_LEVEL", config.log_level),
        _env("ENVOY_ADMIN_ACCESS_PORT", str(config.admin_port)),
        _env("ENVOY_ADMIN_ACCESS_LOG_FILE", config.admin_access_log),
        _env("ENVOY_ADMIN_ACCESS_ENABLE_IPV6", "false"),
        _env("APPMESH_PREVIEW", preview),
        _env("APPMESH_DUALSTACK_ENDPOINT", "0"),
        _env("APPMESH_FIPS_ENDPOINT", "0"),
        _env("APPMESH_PLATFORM_APP_MESH_CONTROLLER_VERSION", f"meshplane-{__version__}"),
        {
            "name": "APPMESH_PLATFORM_K8S_POD_UID",
            "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}},
        },
    ]


def _sidecar_env(
    arn: str, annotations: Mapping[str, str], config: InjectorConfig
) -> list[dict[str, Any]]:
    """Annotation env first; the controller's keys cannot be overridden by it."""
    ours = _controller_env(arn, annotations, config)
    taken = {entry["name"] for entry in ours}
    return [e for e in _annotation_env(annotations) if e["name"] not in taken] + ours


def envoy_args(
    arn: str,
    config: InjectorConfig,
    log_level: str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> list[str]:
    """Envoy's argv after the binary: meshplane's bootstrap inline, for node ``arn``.

    ``metadata`` is the node metadata (default: bind 0.0.0.0, the gateway's shape).
    """
    config_dict = bootstrapping.bootstrap(
        node_id=arn,
        cluster=arn,
        xds_host=config.xds_host,
        xds_port=config.xds_port,
        admin_address="0.0.0.0",
        admin_port=config.admin_port,
        # A pod's Envoy takes the traffic iptables redirects from every interface.
        metadata=metadata if metadata is not None else {"meshplane": {"bind": "0.0.0.0"}},
    )
    if config.xds_identity:
        config_dict = with_token_credentials(
            config_dict,
            f"{config.xds_host}:{config.xds_tls_port}",
            ca_file=f"{CA_DIR}/{CA_FILE}",
            token_file=f"{TOKEN_DIR}/{TOKEN_FILE}",
        )
    argv = bootstrapping.command(
        config_dict, binary=Path(ENVOY), log_level=log_level or config.log_level
    )
    return argv[1:]


_FILE_METADATA = "envoy.grpc_credentials.file_based_metadata"


def with_token_credentials(
    config: Mapping[str, Any], target: str, *, ca_file: str, token_file: str
) -> dict[str, Any]:
    """``config`` with its ADS stream over TLS to ``target``, sending ``token_file``.

    Envoy's Google gRPC client with ``file_based_metadata`` call credentials reads the
    file at every new stream and sends ``authorization: Bearer <contents>``; gRPC sends
    call credentials over TLS only, so the channel trusts ``ca_file`` (meshplane's CA).
    The static xDS cluster is then unused and left out.
    """
    result: dict[str, Any] = json.loads(json.dumps(config))
    service = {
        "google_grpc": {
            "target_uri": target,
            "stat_prefix": "ads",
            "credentials_factory_name": _FILE_METADATA,
            "channel_credentials": {"ssl_credentials": {"root_certs": {"filename": ca_file}}},
            "call_credentials": [
                {
                    "from_plugin": {
                        "name": _FILE_METADATA,
                        "typed_config": {
                            "@type": "type.googleapis.com/"
                            "envoy.config.grpc_credential.v3.FileBasedMetadataConfig",
                            "secret_data": {"filename": token_file},
                            "header_prefix": "Bearer ",
                        },
                    }
                }
            ],
        }
    }
    result["dynamic_resources"]["ads_config"]["grpc_services"] = [service]
    result["static_resources"]["clusters"] = [
        c for c in result["static_resources"]["clusters"] if c["name"] != bootstrapping.XDS_CLUSTER
    ]
    return result


def _envoy_container(
    arn: str, annotations: Mapping[str, str], config: InjectorConfig
) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": ENVOY,
        "image": config.sidecar_image,
        "command": [ENVOY],
        "args": envoy_args(arn, config, metadata=INTERCEPTED),
        "securityContext": {"runAsUser": ENVOY_UID},
        "ports": [{"containerPort": config.admin_port, "name": "stats", "protocol": "TCP"}],
        "env": _sidecar_env(arn, annotations, config),
        "resources": _resources(annotations, config),
        "lifecycle": {
            "preStop": {"exec": {"command": ["sh", "-c", f"sleep {config.prestop_delay_s}"]}}
        },
        "readinessProbe": _readiness(config),
    }
    if _aws_image(config):
        # App Mesh's image writes its own bootstrap (its agent reads APPMESH_*): it keeps
        # TLS and SigV4 on the stream, so point it at the TLS port and mount the CA where
        # it reads its roots. Its AWS credentials must be a meshplane principal's.
        del container["command"], container["args"]
        container["env"].append(
            _env("APPMESH_XDS_ENDPOINT", f"{config.xds_host}:{config.xds_tls_port}")
        )
    if _mounted(config):
        container["volumeMounts"] = _mounts(config)
    if config.native_sidecars:
        # Kubernetes starts the app containers once this one's startup probe passed, and
        # stops it after them: no start-up race and no need for the preStop drain delay.
        container["restartPolicy"] = "Always"
        container["startupProbe"] = {
            "httpGet": {"path": "/ready", "port": config.admin_port},
            "periodSeconds": 1,
            "timeoutSeconds": 1,
            "failureThreshold": 120,
        }
        del container["lifecycle"]
    return container


def _aws_image(config: InjectorConfig) -> bool:
    """Whether the sidecar is App Mesh's own image (it reads its roots from a fixed path)."""
    return "aws-appmesh-envoy" in config.sidecar_image


def _mounted(config: InjectorConfig) -> bool:
    """Whether the pod gets the token and CA volumes (a CA to mount is needed)."""
    return bool(config.xds_ca_pem) and (config.xds_identity or _aws_image(config))


def _mounts(config: InjectorConfig) -> list[dict[str, Any]]:
    mounts = [
        {"name": TOKEN_VOLUME, "mountPath": TOKEN_DIR, "readOnly": True},
        {"name": CA_VOLUME, "mountPath": CA_DIR, "readOnly": True},
    ]
    if _aws_image(config):
        mounts.append(
            {"name": CA_VOLUME, "mountPath": AWS_IMAGE_CA, "subPath": CA_FILE, "readOnly": True}
        )
    return mounts


def _volumes() -> list[dict[str, Any]]:
    """The projected token (audience meshplane) and the CA, from the pod's own annotation."""
    return [
        {
            "name": TOKEN_VOLUME,
            "projected": {
                # 0644 like the kube-api-access volume: Envoy runs as 1337 whatever fsGroup is.
                "defaultMode": 0o644,
                "sources": [
                    {
                        "serviceAccountToken": {
                            "audience": TOKEN_AUDIENCE,
                            "expirationSeconds": TOKEN_EXPIRATION_S,
                            "path": TOKEN_FILE,
                        }
                    }
                ],
            },
        },
        {
            "name": CA_VOLUME,
            "downwardAPI": {
                "defaultMode": 0o644,
                "items": [
                    {
                        "path": CA_FILE,
                        "fieldRef": {"fieldPath": f"metadata.annotations['{CA_ANNOTATION}']"},
                    }
                ],
            },
        },
    ]


def _readiness(config: InjectorConfig) -> dict[str, Any]:
    return {
        "httpGet": {"path": "/ready", "port": config.admin_port},
        "initialDelaySeconds": 1,
        "periodSeconds": 10,
        "timeoutSeconds": 1,
        "successThreshold": 1,
        "failureThreshold": 3,
    }


def _app_ports(node: ManifestObject, annotations: Mapping[str, str]) -> str:
    if f"{PREFIX}ports" in annotations:
        return annotations[f"{PREFIX}ports"]
    ports = [str(listener["portMapping"]["port"]) for listener in node.spec.get("listeners") or []]
    return ",".join(ports)


def _proxy_init(
    node: ManifestObject, annotations: Mapping[str, str], config: InjectorConfig
) -> dict[str, Any]:
    ipv6 = "0" if annotations.get(f"{PREFIX}ipv6", "").lower() == "disabled" else "1"
    return {
        "name": PROXY_INIT,
        "image": config.init_image,
        "securityContext": {"capabilities": {"add": ["NET_ADMIN"]}},
        "resources": _resources(annotations, config),
        "env": [
            _env("APPMESH_START_ENABLED", "1"),
            _env("APPMESH_IGNORE_UID", str(ENVOY_UID)),
            _env("APPMESH_ENVOY_INGRESS_PORT", str(INGRESS_PORT)),
            _env("APPMESH_ENVOY_EGRESS_PORT", str(EGRESS_PORT)),
            _env("APPMESH_APP_PORTS", _app_ports(node, annotations)),
            _env(
                "APPMESH_EGRESS_IGNORED_IP",
                annotations.get(f"{PREFIX}egressIgnoredIPs", config.ignored_ips),
            ),
            _env(
                "APPMESH_EGRESS_IGNORED_PORTS", annotations.get(f"{PREFIX}egressIgnoredPorts", "22")
            ),
            _env("APPMESH_ENABLE_IPV6", ipv6),
        ],
    }


def _cni_mode(metadata: Mapping[str, Any], annotations: Mapping[str, str]) -> bool:
    labels = metadata.get("labels") or {}
    return (
        annotations.get(f"{PREFIX}appmeshCNI", "").lower() == "enabled"
        or "eks.amazonaws.com/fargate-profile" in labels
    )


def _node_patch(
    pod: Mapping[str, Any], node: ManifestObject, catalog: Catalog, config: InjectorConfig
) -> JsonPatch:
    metadata = pod.get("metadata") or {}
    annotations: dict[str, str] = dict(metadata.get("annotations") or {})
    spec = pod.get("spec") or {}
    arn = resource_name(node, catalog)
    patch: JsonPatch = []
    new_annotations: dict[str, str] = {}
    if _cni_mode(metadata, annotations):
        # CNI (and Fargate) pods are redirected by the CNI plugin, told by annotations.
        wanted = {
            f"{PREFIX}ports": _app_ports(node, annotations),
            f"{PREFIX}egressIgnoredIPs": config.ignored_ips,
            f"{PREFIX}egressIgnoredPorts": "22",
            f"{PREFIX}proxyEgressPort": str(EGRESS_PORT),
            f"{PREFIX}proxyIngressPort": str(INGRESS_PORT),
            f"{PREFIX}ignoredUID": str(ENVOY_UID),
            INJECT: "enabled",
        }
        new_annotations = {**wanted, **annotations}
    inits = list(spec.get("initContainers") or [])
    containers = list(spec.get("containers") or [])
    injected = any(c.get("name") == ENVOY for c in [*inits, *containers])
    wanted_inits = list(inits)
    if not _cni_mode(metadata, annotations) and not any(c.get("name") == PROXY_INIT for c in inits):
        wanted_inits.append(_proxy_init(node, annotations, config))
    if not injected and config.native_sidecars:
        # After proxyinit: the rules are in place before Envoy (and then the app) starts.
        wanted_inits.append(_envoy_container(arn, annotations, config))
    if wanted_inits != inits:
        patch.append({"op": "add", "path": "/spec/initContainers", "value": wanted_inits})
    if not injected and not config.native_sidecars:
        patch.append(
            {
                "op": "add",
                "path": "/spec/containers",
                "value": [*containers, _envoy_container(arn, annotations, config)],
            }
        )
    if not injected and _mounted(config):
        kept = [
            v for v in spec.get("volumes") or [] if v.get("name") not in (TOKEN_VOLUME, CA_VOLUME)
        ]
        patch.append({"op": "add", "path": "/spec/volumes", "value": [*kept, *_volumes()]})
        new_annotations = {**(new_annotations or annotations), CA_ANNOTATION: config.xds_ca_pem}
    if new_annotations:
        patch.append({"op": "add", "path": "/metadata/annotations", "value": new_annotations})
    patch += _fs_group(spec, config)
    return patch


def _fs_group(spec: Mapping[str, Any], config: InjectorConfig) -> JsonPatch:
    context = dict(spec.get("securityContext") or {})
    if not config.fs_group or context.get("fsGroup") is not None:
        return []
    context["fsGroup"] = ENVOY_UID
    return [{"op": "add", "path": "/spec/securityContext", "value": context}]


def _gateway_patch(
    pod: Mapping[str, Any], gateway: ManifestObject, catalog: Catalog, config: InjectorConfig
) -> JsonPatch:
    metadata = pod.get("metadata") or {}
    annotations: dict[str, str] = dict(metadata.get("annotations") or {})
    containers = copy.deepcopy(list((pod.get("spec") or {}).get("containers") or []))
    index = next((i for i, c in enumerate(containers) if c.get("name") == ENVOY), None)
    if index is None:
        return []  # a gateway pod brings its own envoy container; without one nothing happens
    arn = resource_name(gateway, catalog)
    envoy = containers[index]
    skip = annotations.get(f"{PREFIX}virtualGatewaySkipImageOverride", "").lower() == "enabled"
    ours = _controller_env(arn, annotations, config)
    if not skip:
        envoy["image"] = config.sidecar_image
        if _aws_image(config):  # the image's own bootstrap, pointed at the TLS port
            envoy.pop("command", None)
            envoy.pop("args", None)
            ours.append(_env("APPMESH_XDS_ENDPOINT", f"{config.xds_host}:{config.xds_tls_port}"))
        else:
            envoy["command"] = [ENVOY]
            envoy["args"] = envoy_args(arn, config)
    taken = {entry["name"] for entry in ours}
    envoy["env"] = [e for e in envoy.get("env") or [] if e.get("name") not in taken] + ours
    envoy.setdefault("readinessProbe", _readiness(config))
    patch: JsonPatch = []
    if not skip and _mounted(config):
        # The same token and CA as a virtual node's sidecar: the bootstrap reads both files.
        names = (TOKEN_VOLUME, CA_VOLUME)
        mounts = [m for m in envoy.get("volumeMounts") or [] if m.get("name") not in names]
        envoy["volumeMounts"] = mounts + _mounts(config)
        spec = pod.get("spec") or {}
        kept = [v for v in spec.get("volumes") or [] if v.get("name") not in names]
        patch.append({"op": "add", "path": "/spec/volumes", "value": [*kept, *_volumes()]})
        patch.append(
            {
                "op": "add",
                "path": "/metadata/annotations",
                "value": {**annotations, CA_ANNOTATION: config.xds_ca_pem},
            }
        )
    return [{"op": "add", "path": "/spec/containers", "value": containers}, *patch]
